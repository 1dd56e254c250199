/* The explorer: the whole graph, its filters, the entity search and the evidence panel.
   Data comes embedded in the page (#graph-data): the pyvis nodes, edges and options, and the entities and
   claims with their evidence. Exposes window.anemiaKg = {network, nodes, edges, focus(id), ready}. */
(function () {
  "use strict";
  var K = window.AnemiaKG, el = K.el;
  var data = K.readJson("graph-data");
  var entities = data.entities, claims = data.claims;
  var labels = {};
  Object.keys(entities).forEach(function (id) { labels[id] = entities[id].label; });
  var g = K.createNetwork(document.getElementById("graph"), data);
  var panel = document.getElementById("panel");

  g.ready.then(function () {
    K.setStatus("graph-status", "Showing " + data.nodes.length + " entities and " + data.edges.length +
      " relations. Drag to pan, scroll or pinch to zoom, select a node or an edge for its evidence.");
  });

  // --- the panel ---------------------------------------------------------------------------------------

  function link(id) { return K.entityLink(data.entityUrl, id, labels[id]); }

  function verb(c) { return (c.negated ? "NOT " : "") + c.label; }

  function claimBlock(c, about, level) {
    var head = [c.subject === about ? labels[c.subject] : link(c.subject), " → " + verb(c) + " → ",
      c.object === about ? labels[c.object] : link(c.object)];
    return K.relationBlock({claim: c.id, head: head, certainty: c.certainty, negated: c.negated,
      qualifiers: c.qualifiers, evidence: c.evidence, level: level}, labels);
  }

  function other(c, id) { return c.subject === id ? c.object : c.subject; }

  function relationsOf(id) {
    return Object.keys(claims).map(function (cid) { return claims[cid]; }).filter(function (c) {
      return c.subject === id || c.object === id;
    }).sort(function (a, b) {
      var ka = [a.subject === id ? 0 : 1, a.predicate, labels[other(a, id)].toLowerCase(), a.id];
      var kb = [b.subject === id ? 0 : 1, b.predicate, labels[other(b, id)].toLowerCase(), b.id];
      for (var i = 0; i < ka.length; i++) { if (ka[i] !== kb[i]) return ka[i] < kb[i] ? -1 : 1; }
      return 0;
    });
  }

  function section(title, className, children) {
    return el("section", {className: className}, [el("h3", {text: title})].concat(children));
  }

  function show(children) {
    panel.replaceChildren.apply(panel, children.filter(Boolean));
    panel.scrollTop = 0;
  }

  function showNode(id) {
    var e = entities[id];
    if (!e) return;
    var related = relationsOf(id);
    show([
      el("h2", {text: e.label}),
      el("p", {className: "entity-type", text: e.typeLabel + " · " + e.groupLabel}),
      el("p", {}, [el("a", {className: "entity-link page-link", href: K.entityHref(data.entityUrl, id),
        text: "Open the page of " + e.label})]),
      e.synonyms.length ? section("Synonyms", "panel-synonyms", [el("p", {text: e.synonyms.join(", ")})]) : null,
      section("Cross-references", "panel-xrefs", e.xrefs.length ? [el("ul", {className: "xrefs"}, e.xrefs.map(function (x) {
        return el("li", {}, [el("a", {className: "xref", href: x.iri, rel: "external noopener noreferrer", text: x.id}),
          x.label ? " " + x.label : "", " ", el("span", {className: "match", text: "(" + x.match + " match)"})]);
      }))] : [el("p", {className: "muted", text: "No cross-references."})]),
      e.broader.length || e.narrower.length ? section("Hierarchy", "panel-hierarchy", [el("ul", {className: "hierarchy"},
        e.broader.map(function (b) { return el("li", {}, ["broader: ", link(b)]); }).concat(
          e.narrower.map(function (n) { return el("li", {}, ["narrower: ", link(n)]); })))]) : null,
      section("Relations (" + related.length + ")", "panel-relations", related.length
        ? related.map(function (c) { return claimBlock(c, id, 4); })
        : [el("p", {className: "muted", text: "No claim of the article involves this entity."})])
    ]);
  }

  function showEdge(edgeId) {
    var edge = g.edges.get(edgeId);
    if (!edge) return;
    if (edge.kind === "hierarchy") {
      show([el("h2", {text: labels[edge.from] + " → broader → " + labels[edge.to]}),
        el("p", {}, ["A hierarchy link of the entity list (skos:broader): ", link(edge.from), " is a specific form of ",
          link(edge.to), ". It is not a claim of the article, so it has no quote."])]);
      return;
    }
    var c = claims[edgeId];
    var pair = relationsOf(c.subject).filter(function (x) { return x.id !== c.id && other(x, c.subject) === c.object; });
    show([
      el("h2", {text: labels[c.subject] + " → " + verb(c) + " → " + labels[c.object]}),
      el("p", {}, ["Entity pages: ", link(c.subject), " · ", link(c.object)]),
      claimBlock(c, null, 3),
      pair.length ? section("Other claims between these two", "panel-relations",
        pair.map(function (x) { return claimBlock(x, null, 4); })) : null
    ]);
  }

  g.network.on("click", function (params) {
    if (params.nodes.length) showNode(params.nodes[0]);
    else if (params.edges.length) showEdge(params.edges[0]);
  });

  // --- filters -----------------------------------------------------------------------------------------

  var form = document.getElementById("filters");
  var allPredicates = form.querySelectorAll("input[name=predicate]").length;

  function checked(name) {
    var found = {};
    form.querySelectorAll("input[name=" + name + "]:checked").forEach(function (i) { found[i.value] = true; });
    return found;
  }

  function edgeMatches(e, reference, certainty) {
    if (reference === "all" && certainty === "all") return true;
    if (e.kind !== "claim") return false; // a hierarchy link is neither cited nor hedged
    if (certainty !== "all" && e.certainty !== certainty) return false;
    if (reference === "all") return true;
    if (reference === "article-only") return e.citations.length === 0;
    if (reference === "unresolved") {
      return e.citations.some(function (n) { return data.unresolved.indexOf(n) >= 0; });
    }
    return e.citations.indexOf(Number(reference)) >= 0;
  }

  function applyFilters() {
    var types = checked("type"), predicates = checked("predicate");
    var reference = form.elements.reference.value, certainty = form.elements.certainty.value;
    var edgeFilter = Object.keys(predicates).length !== allPredicates || reference !== "all" || certainty !== "all";
    var degree = {}, shownEdges = 0, shownNodes = 0;
    var edgeUpdates = g.edges.get().map(function (e) {
      var show = types[g.nodes.get(e.from).group] && types[g.nodes.get(e.to).group] && predicates[e.predicate] &&
        edgeMatches(e, reference, certainty);
      if (show) { degree[e.from] = true; degree[e.to] = true; shownEdges++; }
      return {id: e.id, hidden: !show};
    });
    var nodeUpdates = g.nodes.get().map(function (n) {
      var show = !!types[n.group] && (!edgeFilter || !!degree[n.id]);
      if (show) shownNodes++;
      return {id: n.id, hidden: !show};
    });
    g.nodes.update(nodeUpdates);
    g.edges.update(edgeUpdates);
    K.setStatus("filter-status", "Showing " + shownNodes + " of " + nodeUpdates.length + " entities and " +
      shownEdges + " of " + edgeUpdates.length + " relations.");
  }

  function resetFilters() {
    form.reset();
    applyFilters();
  }

  form.addEventListener("change", applyFilters);
  form.addEventListener("submit", function (event) { event.preventDefault(); });
  form.addEventListener("reset", function () { setTimeout(applyFilters, 0); });

  // --- search and focus ----------------------------------------------------------------------------------

  function norm(text) { return String(text).toLowerCase().replace(/\s+/g, " ").trim(); }

  var names = {}; // normalised label, synonym or id -> [entity ids]
  Object.keys(entities).forEach(function (id) {
    var e = entities[id];
    [e.label, id, id.replace(/_/g, " ")].concat(e.synonyms).forEach(function (name) {
      var key = norm(name);
      names[key] = names[key] || [];
      if (names[key].indexOf(id) < 0) names[key].push(id);
    });
  });

  function lookup(text) {
    var key = norm(text);
    if (!key) return [];
    if (names[key]) return names[key];
    var hits = [];
    Object.keys(names).forEach(function (name) {
      if (name.indexOf(key) >= 0) names[name].forEach(function (id) { if (hits.indexOf(id) < 0) hits.push(id); });
    });
    return hits.sort(function (a, b) { return labels[a].localeCompare(labels[b]); });
  }

  function focus(id) {
    var node = g.nodes.get(id);
    if (!node) return false;
    if (node.hidden) resetFilters();
    g.network.selectNodes([id]);
    g.network.focus(id, {scale: 1.3, animation: {duration: 400, easingFunction: "easeInOutQuad"}});
    showNode(id);
    return true;
  }

  var search = document.getElementById("search");
  var message = document.getElementById("search-message");

  function find(text, quiet) {
    var hits = lookup(text);
    message.replaceChildren();
    if (hits.length === 1 || (hits.length && names[norm(text)])) {
      focus(hits[0]);
      message.textContent = "Showing " + labels[hits[0]] + ".";
    } else if (hits.length > 1 && !quiet) {
      message.append("Several entities match: ");
      hits.slice(0, 12).forEach(function (id, i) {
        var button = el("button", {type: "button", className: "suggestion", text: labels[id]});
        button.addEventListener("click", function () { search.value = labels[id]; find(labels[id]); });
        message.append(i ? " " : "", button);
      });
    } else if (!quiet && norm(text)) {
      message.textContent = "No entity is called “" + text.trim() + "”. Try a synonym, or pick one from the list.";
    }
  }

  document.getElementById("search-form").addEventListener("submit", function (event) {
    event.preventDefault();
    find(search.value, false);
  });
  search.addEventListener("change", function () {
    if (names[norm(search.value)]) find(search.value, true); // a pick from the list
  });

  window.anemiaKg = {network: g.network, nodes: g.nodes, edges: g.edges, focus: focus, ready: g.ready};
})();
