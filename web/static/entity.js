/* An entity page's neighbourhood graph: the entity, its neighbours and the links between them and it.
   Selecting a neighbour opens its page; selecting an edge scrolls to the claim's evidence below. */
(function () {
  "use strict";
  var K = window.AnemiaKG;
  var data = K.readJson("graph-data");
  var g = K.createNetwork(document.getElementById("graph"), data);
  g.nodes.update({id: data.entity, size: 24, borderWidth: 4, font: {size: 16}});

  g.ready.then(function () {
    K.setStatus("graph-status", (data.nodes.length - 1) + " neighbours. Select one to open its page, or a link " +
      "to read its evidence.");
  });

  g.network.on("click", function (params) {
    if (params.nodes.length && params.nodes[0] !== data.entity) {
      window.location.href = K.entityHref(data.entityUrl, params.nodes[0]);
    } else if (!params.nodes.length && params.edges.length) {
      var target = document.getElementById("claim-" + params.edges[0]);
      if (target) {
        target.scrollIntoView({behavior: "smooth", block: "start"});
        target.focus({preventScroll: true});
      }
    }
  });

  window.anemiaKg = {network: g.network, nodes: g.nodes, edges: g.edges, ready: g.ready};
})();
