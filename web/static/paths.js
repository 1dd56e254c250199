/* The path finder: autocomplete from /api/entities, ranked chains from /api/paths, drawn as a top-down
   subgraph and as readable chains with the evidence of every step. Deep-linkable: ?source=...&target=...
   Exposes window.anemiaKg = {network, nodes, edges, ready, run()}; `ready` settles when the last search has
   been drawn. */
(function () {
  "use strict";
  var K = window.AnemiaKG, el = K.el;
  var data = K.readJson("page-data");
  var form = document.getElementById("path-form");
  var source = document.getElementById("source"), target = document.getElementById("target");
  var maxHops = document.getElementById("max-hops"), allRelations = document.getElementById("all-relations");
  var message = document.getElementById("path-message");
  var list = document.querySelector("#results .path-list"), empty = document.getElementById("results-empty");
  var container = document.getElementById("graph");
  var api = window.anemiaKg = {network: null, nodes: null, edges: null, ready: Promise.resolve(), run: run};
  var graph = null, drawn = [];

  function label(id) { return data.entities[id] ? data.entities[id].label : id; }
  function labels() {
    var found = {};
    Object.keys(data.entities).forEach(function (id) { found[id] = data.entities[id].label; });
    return found;
  }

  // --- autocomplete ---------------------------------------------------------------------------------------

  function autocomplete(input, datalist) {
    var timer = null, last = null;
    input.addEventListener("input", function () {
      clearTimeout(timer);
      timer = setTimeout(function () {
        var q = input.value.trim();
        if (!q || q === last) return;
        last = q;
        fetch("/api/entities?limit=10&q=" + encodeURIComponent(q), {headers: {Accept: "application/json"}})
          .then(function (r) { return r.ok ? r.json() : {results: []}; })
          .then(function (body) {
            if (input.value.trim() !== q) return; // the user typed on meanwhile
            datalist.replaceChildren.apply(datalist, body.results.map(function (hit) {
              var also = hit.synonyms.length ? " · also " + hit.synonyms.join(", ") : "";
              return el("option", {value: hit.label, text: hit.type + also});
            }));
          })
          .catch(function () { /* no suggestions; the search itself reports errors */ });
      }, 150);
    });
  }

  autocomplete(source, document.getElementById("source-options"));
  autocomplete(target, document.getElementById("target-options"));

  // --- messages ---------------------------------------------------------------------------------------------

  function say(kind, children) {
    message.className = "message" + (kind ? " " + kind : "");
    message.replaceChildren.apply(message, children.map(function (c) {
      return typeof c === "string" ? document.createTextNode(c) : c;
    }));
  }

  function clearResults() {
    list.replaceChildren();
    empty.hidden = false;
    if (graph) { graph.network.destroy(); graph = null; }
    api.network = api.nodes = api.edges = null;
  }

  function quoted(text) { return ["'" + text + "'", "\"" + text + "\""]; }

  function showError(status, body) {
    clearResults();
    var detail = body && body.detail;
    if (status === 404 && typeof detail === "string") {
      var input = quoted(source.value.trim()).some(function (q) { return detail.indexOf(q) >= 0; }) ? source : target;
      var children = [detail.split("; did you mean")[0] + "."];
      if (body.suggestions && body.suggestions.length) {
        children.push(" Did you mean: ");
        body.suggestions.forEach(function (id, i) {
          var button = el("button", {type: "button", className: "suggestion", text: label(id)});
          button.addEventListener("click", function () { input.value = label(id); run(); });
          children.push(i ? " " : "", button);
        });
      }
      say("error", children);
    } else if (Array.isArray(detail)) {
      say("error", [detail.map(function (d) { return d.msg; }).join("; ")]);
    } else {
      say("error", ["The server could not answer (" + status + "): " + (detail || "no detail") + "."]);
    }
  }

  // --- the chains -------------------------------------------------------------------------------------------

  function chainText(path) {
    return path.nodes[0].label + path.edges.map(function (e, i) {
      return " → " + e.reading + " → " + path.nodes[i + 1].label;
    }).join("");
  }

  function step(edge, from, to) {
    var children = [
      el("p", {className: "step-head"}, [K.entityLink(data.entityUrl, from.id, from.label), " → ",
        el("span", {className: "reading", text: edge.reading}), " → ", K.entityLink(data.entityUrl, to.id, to.label)])];
    if (edge.kind === "hierarchy") {
      children.push(el("p", {className: "muted", text: from.label + " has " + to.label + " as a specific form " +
        "(the entity list's hierarchy, skos:broader): not a claim of the article, so it has no quote."}));
    } else {
      children.push(K.certainty(edge.certainty, false), K.qualifiers(edge.qualifiers, labels()),
        K.evidenceList(edge.evidence));
    }
    if (edge.alternatives && edge.alternatives.length) {
      children.push(el("details", {className: "alternatives"}, [
        el("summary", {text: "Also between these two (" + edge.alternatives.length + ")"})].concat(
        edge.alternatives.map(function (alt) {
          return K.relationBlock({claim: alt.claims.join(" "), head: [from.label + " → " + alt.reading + " → " + to.label],
            certainty: alt.certainty, qualifiers: alt.qualifiers, evidence: alt.evidence, level: 5}, labels());
        }))));
    }
    return el("li", {className: "step"}, children);
  }

  function pathItem(path, index) {
    var beliefs = path.score_inputs.edges.map(function (e) { return e.belief; }).join(" × ");
    var button = el("button", {type: "button", className: "show-path", "aria-pressed": index === 0 ? "true" : "false",
      text: "Highlight in the graph"});
    button.addEventListener("click", function () { highlight(index); });
    return el("li", {className: "path", "data-index": index}, [
      el("h3", {className: "path-title"}, ["Path " + (index + 1) + " ",
        el("span", {className: "score", text: "score " + path.score})]),
      el("p", {className: "chain", text: chainText(path)}),
      el("p", {className: "score-inputs muted", text: "score = " + beliefs + " (" + path.score_inputs.formula + ")"}),
      button,
      el("ol", {className: "steps"}, path.edges.map(function (e, i) { return step(e, path.nodes[i], path.nodes[i + 1]); }))
    ]);
  }

  // --- the subgraph -----------------------------------------------------------------------------------------

  function drawGraph(paths, ends) {
    var nodes = {}, edges = {};
    paths.forEach(function (path, p) {
      path.nodes.forEach(function (n) {
        var group = data.groups[(data.entities[n.id] || {}).group || "other"];
        var end = ends.indexOf(n.id) >= 0;
        nodes[n.id] = {id: n.id, label: n.label, shape: group.shape, color: {background: group.color, border: end ? "#1a1a1a" : group.color},
          entityGroup: (data.entities[n.id] || {}).group, size: end ? 22 : 16, borderWidth: end ? 4 : 2};
      });
      path.edges.forEach(function (e) {
        var id = e.source + "|" + e.target;
        edges[id] = edges[id] || {id: id, from: e.source, to: e.target, label: e.reading, paths: [], kind: e.kind,
          dashes: e.kind === "hierarchy" ? [2, 5] : e.certainty === "possible"};
        edges[id].paths.push(p);
      });
    });
    var options = {
      layout: {hierarchical: {enabled: true, direction: "UD", sortMethod: "directed", levelSeparation: 120,
        nodeSpacing: 190}},
      physics: {enabled: false},
      interaction: {hover: true, keyboard: {enabled: true, bindToWindow: false}},
      nodes: {font: {size: 14, color: "#1a1a1a", strokeWidth: 3, strokeColor: "#ffffff"}},
      edges: {arrows: {to: {enabled: true, scaleFactor: 0.6}}, smooth: {type: "curvedCW", roundness: 0.25},
        font: {size: 12, color: "#333333", strokeWidth: 0, background: "#ffffff", align: "horizontal"}}
    };
    if (graph) graph.network.destroy();
    graph = K.createNetwork(container, {nodes: Object.values(nodes), edges: Object.values(edges), options: options});
    graph.network.on("click", function (params) {
      if (params.nodes.length) window.location.href = K.entityHref(data.entityUrl, params.nodes[0]);
    });
    api.network = graph.network; api.nodes = graph.nodes; api.edges = graph.edges;
    return graph.ready;
  }

  function highlight(index) {
    if (!graph) return;
    var inPath = {};
    drawn[index].nodes.forEach(function (n) { inPath[n.id] = true; });
    graph.edges.update(graph.edges.get().map(function (e) {
      var on = e.paths.indexOf(index) >= 0;
      return {id: e.id, width: on ? 4 : 1, color: on ? (e.kind === "hierarchy" ? data.colors.hierarchy : "#1a1a1a")
        : "#c4c4c4", font: {color: on ? "#1a1a1a" : "#8a8a8a"}};
    }));
    graph.nodes.update(graph.nodes.get().map(function (n) { return {id: n.id, opacity: inPath[n.id] ? 1 : 0.35}; }));
    list.querySelectorAll(".show-path").forEach(function (b, i) { b.setAttribute("aria-pressed", String(i === index)); });
    list.querySelectorAll(".path").forEach(function (li, i) { li.classList.toggle("selected", i === index); });
  }

  // --- running a search ----------------------------------------------------------------------------------

  function render(body, hops) {
    drawn = body.paths;
    if (!body.paths.length) {
      clearResults();
      say("notice", ["No " + (body.relations === "causal" ? "causal " : "") + "path leads from " + body.source.label +
        " to " + body.target.label + " within " + hops + " step" + (hops === "1" ? "" : "s") + "." +
        (body.relations === "causal" ? " Try following every relation, or allow more steps." : "")]);
      return Promise.resolve();
    }
    say("", [body.paths.length + " path" + (body.paths.length === 1 ? "" : "s") + " from " + body.source.label +
      " to " + body.target.label + ", best first."]);
    empty.hidden = true;
    list.replaceChildren.apply(list, body.paths.map(pathItem));
    return drawGraph(body.paths, [body.source.id, body.target.id]).then(function () { highlight(0); });
  }

  function run() {
    var s = source.value.trim(), t = target.value.trim();
    if (!s || !t) {
      say("error", ["Give both ends of the chain: where it starts and where it ends."]);
      return Promise.resolve();
    }
    var params = new URLSearchParams({source: s, target: t});
    if (maxHops.value !== "4") params.set("max_hops", maxHops.value);
    if (allRelations.checked) params.set("relations", "all");
    history.replaceState(null, "", window.location.pathname + "?" + params.toString());
    say("", ["Searching…"]);
    api.ready = fetch("/api/paths?" + params.toString(), {headers: {Accept: "application/json"}})
      .then(function (r) {
        return r.json().catch(function () { return null; }).then(function (body) {
          return r.ok ? render(body, maxHops.value) : showError(r.status, body);
        });
      })
      .catch(function (err) { clearResults(); say("error", ["The server could not be reached: " + err.message]); });
    return api.ready;
  }

  form.addEventListener("submit", function (event) {
    event.preventDefault();
    run();
  });

  var query = new URLSearchParams(window.location.search);
  if (query.get("source")) source.value = query.get("source");
  if (query.get("target")) target.value = query.get("target");
  if (query.get("max_hops")) maxHops.value = query.get("max_hops");
  if (query.get("relations") === "all") allRelations.checked = true;
  if (source.value && target.value) run();
})();
