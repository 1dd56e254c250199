/* The SPARQL page: YASGUI (when bundled into /vendor/yasgui) with the example queries as tabs, and a plain
   form that posts to /sparql and shows the answer as a table. Nothing here contacts another host: YASQE's
   prefix.cc ("prefixes") and LOV ("property", "class") autocompleters are switched off. */
(function () {
  "use strict";
  var K = window.AnemiaKG, el = K.el;
  var data = K.readJson("query-data") || {examples: []};
  var endpoint = new URL("/sparql", window.location.href).href;
  var LOCAL_COMPLETERS = ["variables"]; // the only autocompleter that needs no outside service

  function errorText(status, text) {
    var detail = text;
    try {
      var body = JSON.parse(text);
      detail = typeof body.detail === "string" ? body.detail : JSON.stringify(body.detail);
    } catch (e) { /* not JSON: show the text as it came */ }
    return "The query failed" + (status ? " (" + status + ")" : "") + ": " + (detail || "no detail");
  }

  // --- YASGUI -------------------------------------------------------------------------------------------

  function startYasgui(Yasgui, host) {
    var Yasqe = Yasgui.Yasqe || window.Yasqe;
    if (Yasqe && Yasqe.defaults && Array.isArray(Yasqe.defaults.autocompleters)) {
      // in place: lodash's merge would combine a shorter list with the defaults index by index
      var keep = Yasqe.defaults.autocompleters.filter(function (c) { return LOCAL_COMPLETERS.indexOf(c) >= 0; });
      Yasqe.defaults.autocompleters.splice.apply(Yasqe.defaults.autocompleters,
        [0, Yasqe.defaults.autocompleters.length].concat(keep));
    }
    var yasgui = new Yasgui(host, {
      requestConfig: {endpoint: endpoint, method: "POST"},
      copyEndpointOnNewTab: true,
      persistenceId: null,
      autoAddOnInit: false,
      populateFromUrl: false,
      endpointCatalogueOptions: {getData: function () { return [{endpoint: endpoint}]; }},
      yasqe: {autocompleters: LOCAL_COMPLETERS.slice(), persistenceId: null},
      yasr: {defaultPlugin: "table", persistenceId: null}
    });
    var examples = data.examples.length ? data.examples : [{name: "Query", query: "SELECT * WHERE { ?s ?p ?o } LIMIT 10"}];
    examples.forEach(function (ex, i) {
      yasgui.addTab(i === 0, {name: ex.name, yasqe: {value: ex.query}, requestConfig: {endpoint: endpoint}});
    });
    var box = document.getElementById("yasgui-error");
    yasgui.on("queryResponse", function (_yasgui, tab) {
      setTimeout(function () { // YASGUI signals the response before it hands it to YASR
        try {
          var results = tab.getYasr().results;
          var error = results && results.hasError() ? results.getError() : null;
          box.hidden = !error;
          box.textContent = error ? errorText(error.status || results.getStatus(),
            error.text || error.statusText || "") : "";
        } catch (e) { box.hidden = true; }
      }, 0);
    });
    window.anemiaKgYasgui = yasgui;
  }

  var host = document.getElementById("yasgui");
  var Yasgui = window.Yasgui && (window.Yasgui.default || window.Yasgui);
  if (host && typeof Yasgui === "function") {
    try {
      startYasgui(Yasgui, host);
    } catch (err) {
      var box = document.getElementById("yasgui-error");
      box.hidden = false;
      box.textContent = "The SPARQL editor could not start (" + err.message + "); the plain form below still works.";
    }
  } else if (host) {
    // the bundle was served but did not define Yasgui (a corrupt or partial bundle): say so, keep the form
    var missing = document.getElementById("yasgui-error");
    missing.hidden = false;
    missing.textContent = "The SPARQL editor did not load (run `make web` and restart); the plain form below still works.";
  }

  // --- the plain form -----------------------------------------------------------------------------------

  var form = document.getElementById("plain-form");
  var textarea = document.getElementById("plain-query"), select = document.getElementById("example");
  var status = document.getElementById("plain-status"), errorBox = document.getElementById("plain-error");
  var results = document.getElementById("plain-results");
  var csv = document.getElementById("download-csv"), json = document.getElementById("download-json");

  select.addEventListener("change", function () {
    var ex = data.examples[Number(select.value)];
    if (ex) textarea.value = ex.query;
  });

  function cell(term) {
    if (!term) return el("td", {});
    var text = term.value;
    if (term["xml:lang"]) text += " @" + term["xml:lang"];
    return el("td", {className: "term-" + term.type, text: text});
  }

  function table(body) {
    var vars = body.head.vars || [], rows = body.results.bindings || [];
    return el("table", {}, [
      el("caption", {text: rows.length + " row" + (rows.length === 1 ? "" : "s")}),
      el("thead", {}, [el("tr", {}, vars.map(function (v) { return el("th", {scope: "col", text: v}); }))]),
      el("tbody", {}, rows.map(function (row) {
        return el("tr", {}, vars.map(function (v) { return cell(row[v]); }));
      }))]);
  }

  function downloads(query, select) {
    var q = encodeURIComponent(query);
    csv.href = "/sparql?format=csv&query=" + q;
    json.href = "/sparql?format=json&query=" + q;
    csv.hidden = json.hidden = !select;
  }

  function runPlain() {
    var query = textarea.value;
    status.textContent = "Running…";
    errorBox.hidden = true;
    results.replaceChildren();
    downloads(query, false);
    return fetch("/sparql", {
      method: "POST",
      headers: {"Content-Type": "application/x-www-form-urlencoded",
        Accept: "application/sparql-results+json, text/turtle;q=0.9"},
      body: new URLSearchParams({query: query}).toString()
    }).then(function (r) {
      return r.text().then(function (text) {
        if (!r.ok) {
          status.textContent = "";
          errorBox.textContent = errorText(r.status, text);
          errorBox.hidden = false;
          return;
        }
        var type = r.headers.get("content-type") || "";
        if (type.indexOf("json") >= 0) {
          var body = JSON.parse(text);
          if (typeof body.boolean === "boolean") {
            results.replaceChildren(el("p", {className: "ask", text: "ASK: " + body.boolean}));
          } else {
            results.replaceChildren(table(body));
            downloads(query, true);
          }
        } else {
          results.replaceChildren(el("pre", {className: "graph-answer", text: text}));
        }
        status.textContent = "Done.";
      });
    }).catch(function (err) {
      status.textContent = "";
      errorBox.textContent = "The server could not be reached: " + err.message;
      errorBox.hidden = false;
    });
  }

  form.addEventListener("submit", function (event) {
    event.preventDefault();
    runPlain();
  });
})();
