/* Shared by the pages: small DOM helpers, the evidence blocks (the same markup as web/templates/_macros.html)
   and a vis-network that lays itself out once, then freezes. A plain script, no build step and no modules, so
   that the static site also works when opened from the file system. */
(function () {
  "use strict";

  var QUALIFIERS = [["hedge", "hedge"], ["negation", "negation"], ["condition", "condition"],
    ["threshold", "threshold"], ["time_course", "time course"], ["frequency", "frequency"],
    ["location", "location"], ["outcome", "outcome"], ["severity", "severity"], ["population", "population"]];
  var LAYOUT_TIMEOUT_MS = 20000; // freeze anyway if the stabilisation event never comes

  function el(tag, attrs, children) {
    var node = document.createElement(tag);
    Object.keys(attrs || {}).forEach(function (key) {
      var value = attrs[key];
      if (value === null || value === undefined || value === false) return;
      if (key === "text") node.textContent = value;
      else if (key === "className") node.className = value;
      else node.setAttribute(key, value === true ? "" : String(value));
    });
    (children || []).forEach(function (child) {
      if (child === null || child === undefined) return;
      node.appendChild(typeof child === "string" ? document.createTextNode(child) : child);
    });
    return node;
  }

  function readJson(id) {
    var node = document.getElementById(id);
    return node ? JSON.parse(node.textContent) : null;
  }

  function entityHref(pattern, id) {
    return pattern.replace("{id}", encodeURIComponent(id));
  }

  function entityLink(pattern, id, label) {
    return el("a", {className: "entity-link", href: entityHref(pattern, id), text: label || id});
  }

  function reference(r) {
    if (!r.resolved) {
      return el("li", {className: "reference unresolved", "data-number": r.number,
        text: "[" + r.number + "] unresolved: not in the article's reference list"});
    }
    var meta = [r.year, r.kind].filter(function (v) { return v !== null && v !== undefined && v !== ""; });
    return el("li", {className: "reference", "data-number": r.number}, [
      el("span", {className: "ref-number", text: "[" + r.number + "]"}), " ",
      el("cite", {className: "ref-title", text: r.title || ""}), " ",
      el("span", {className: "ref-meta", text: "(" + meta.join(", ") + ")"})]);
  }

  function evidenceList(evidence) {
    return el("ul", {className: "evidence-list"}, (evidence || []).map(function (ev) {
      var refs = ev.references && ev.references.length
        ? el("ul", {className: "references"}, ev.references.map(reference))
        : el("p", {className: "no-reference", text: "No citation: the article alone."});
      return el("li", {className: "evidence"}, [
        el("blockquote", {className: "quote", text: ev.quote}),
        el("p", {className: "section", text: "Section: " + (ev.section || "answer")}),
        refs]);
    }));
  }

  function qualifiers(q, labels) {
    q = q || {};
    var items = QUALIFIERS.filter(function (pair) {
      return q[pair[0]] !== undefined && q[pair[0]] !== null;
    }).map(function (pair) {
      var value = q[pair[0]];
      if (pair[0] === "threshold") value = value.text;
      else if (pair[0] === "population") {
        value = value.map(function (id) { return (labels && labels[id]) || id; }).join(", ");
      }
      return el("div", {className: "qualifier q-" + pair[0]}, [el("dt", {text: pair[1]}), el("dd", {text: String(value)})]);
    });
    return items.length ? el("dl", {className: "qualifiers"}, items) : null;
  }

  function certainty(value, negated) {
    var children = ["certainty: " + value + (value === "possible" ? " (hedged)" : "")];
    if (negated) children.push(" · ", el("strong", {text: "negated"}), ": the article says this does not hold");
    return el("p", {className: "certainty certainty-" + value}, children);
  }

  /* One claim as an evidence block: {claim, head: [nodes], certainty, negated, qualifiers, evidence, level}. */
  function relationBlock(item, labels) {
    return el("article", {className: "relation" + (item.negated ? " negated" : ""), "data-claim": item.claim}, [
      el("h" + (item.level || 3), {className: "relation-head"}, item.head),
      item.certainty ? certainty(item.certainty, item.negated) : null,
      qualifiers(item.qualifiers, labels),
      evidenceList(item.evidence)]);
  }

  /* A vis-network drawn into container; `ready` resolves once the layout has settled and physics is off. */
  function createNetwork(container, data) {
    var nodes = new vis.DataSet(data.nodes);
    var edges = new vis.DataSet(data.edges);
    var network = new vis.Network(container, {}, data.options);
    var physics = !data.options.physics || data.options.physics.enabled !== false;
    var ready = new Promise(function (resolve) {
      var done = false;
      function freeze() {
        if (done) return;
        done = true;
        if (physics) network.setOptions({physics: false});
        resolve();
      }
      if (physics) network.once("stabilizationIterationsDone", freeze);
      else network.once("afterDrawing", freeze);
      setTimeout(freeze, physics ? LAYOUT_TIMEOUT_MS : 2000);
    });
    network.setData({nodes: nodes, edges: edges});
    return {network: network, nodes: nodes, edges: edges, ready: ready};
  }

  function setStatus(id, text) {
    var node = document.getElementById(id);
    if (node) node.textContent = text;
  }

  window.AnemiaKG = {
    el: el, readJson: readJson, entityHref: entityHref, entityLink: entityLink, reference: reference,
    evidenceList: evidenceList, qualifiers: qualifiers, certainty: certainty, relationBlock: relationBlock,
    createNetwork: createNetwork, setStatus: setStatus
  };
})();
