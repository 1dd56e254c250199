"""The web pages in process (FastAPI's TestClient over the real build): ids and landmarks of the DOM contract,
the 404 page, vis-network served from pyvis, the YASGUI fallback, and no resource loaded from another host.
What the pages do in a browser is tested elsewhere (Playwright)."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from html.parser import HTMLParser
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from anemia_kg import render
from anemia_kg.api import Settings, create_app
from anemia_kg.paths import ROOT

PAGES = ["/", "/paths", "/query", "/references", "/entity/joint_pain"]
REMOTE_LOAD = re.compile(
    r"""<(?:script|img|iframe|source|audio|video|embed|track|input)\b[^>]*?\bsrc\s*=\s*["']?\s*(?:https?:)?//"""
    r"""|<link\b[^>]*?\bhref\s*=\s*["']?\s*(?:https?:)?//"""
    r"""|url\(\s*["']?\s*(?:https?:)?//"""
    r"""|@import\s+(?:url\()?\s*["']?\s*(?:https?:)?//""",
    re.IGNORECASE,
)


class Page(HTMLParser):
    """The elements of a page as (tag, attributes) in document order, and the text inside each id'd element."""

    def __init__(self, text: str):
        super().__init__(convert_charrefs=True)
        self.elements: list[tuple[str, dict[str, str]]] = []
        self.scripts: dict[str, str] = {}
        self._script: str | None = None
        self.feed(text)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        attributes = {k: v or "" for k, v in attrs}
        self.elements.append((tag, attributes))
        self._script = attributes.get("id") if tag == "script" else None

    def handle_data(self, data: str) -> None:
        if self._script:
            self.scripts[self._script] = self.scripts.get(self._script, "") + data

    def handle_endtag(self, tag: str) -> None:
        if tag == "script":
            self._script = None

    def find(self, tag: str | None = None, **attrs: str) -> list[dict[str, str]]:
        return [a for t, a in self.elements if (tag is None or t == tag)
                and all(a.get(k.rstrip("_").replace("_", "-")) == v for k, v in attrs.items())]

    def one(self, tag: str | None = None, **attrs: str) -> dict[str, str]:
        found = self.find(tag, **attrs)
        assert len(found) == 1, (tag, attrs, found)
        return found[0]

    def options(self, select_id: str) -> list[str]:
        """The option values of ``<select id=select_id>`` (no tree is kept: its options follow it)."""
        start = next(i for i, (t, a) in enumerate(self.elements) if t == "select" and a.get("id") == select_id)
        found = []
        for tag, a in self.elements[start + 1:]:
            if tag != "option":
                break
            found.append(a["value"])
        return found

    def classes(self, name: str) -> list[dict[str, str]]:
        return [a for _, a in self.elements if name in a.get("class", "").split()]


@pytest.fixture(scope="module")
def client(real_build) -> Iterator[TestClient]:  # noqa: ANN001 - conftest fixture
    app = create_app(Settings(root=real_build.root, workers=1, query_timeout=10))
    with TestClient(app) as c:
        yield c


def page(client: TestClient, url: str, status: int = 200) -> tuple[str, Page]:
    response = client.get(url)
    assert response.status_code == status, response.text[:500]
    assert response.headers["content-type"].startswith("text/html")
    return response.text, Page(response.text)


# --- every page ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("url", PAGES)
def test_pages_share_the_template_landmarks_and_stylesheet(client: TestClient, url: str) -> None:
    text, p = page(client, url)
    assert p.one("html")["lang"] == "en"
    assert p.find("header") and p.find("footer") and p.one("main")["id"] == "main"
    nav = p.one("nav")
    assert nav["aria-label"] == "Main"
    assert {a["href"] for a in p.find("a") if a.get("href") in ("/", "/paths", "/query", "/references")} == {
        "/", "/paths", "/query", "/references"}
    assert p.find("link", rel="stylesheet", href="/static/site.css")
    assert p.find("meta", name="viewport")
    assert p.find("a", class_="skip-link", href="#main")


@pytest.mark.parametrize("url", PAGES)
def test_inputs_are_labelled_and_ids_unique(client: TestClient, url: str) -> None:
    _, p = page(client, url)
    ids = [a["id"] for _, a in p.elements if "id" in a]
    assert len(ids) == len(set(ids)), [i for i in ids if ids.count(i) > 1]
    labelled = {a["for"] for a in p.find("label") if "for" in a}
    for tag, a in p.elements:
        if tag in ("input", "select", "textarea") and a.get("type") != "hidden":
            assert a.get("id") in labelled or "aria-label" in a, (tag, a)


@pytest.mark.parametrize("url", [*PAGES, "/entity/unknown", "/entity/arthralgiaa"])
def test_no_page_loads_anything_from_another_host(client: TestClient, url: str) -> None:
    text = client.get(url).text
    assert REMOTE_LOAD.findall(text) == []
    assert "on" + "click=" not in text.lower() and " onload=" not in text.lower()  # no inline event handlers


@pytest.mark.parametrize("name", ["site.css", "common.js", "explorer.js", "entity.js", "paths.js", "query.js"])
def test_static_files_are_served_and_load_nothing_remote(client: TestClient, name: str) -> None:
    response = client.get(f"/static/{name}")
    assert response.status_code == 200 and response.text == (render.STATIC / name).read_text(encoding="utf-8")
    assert REMOTE_LOAD.findall(response.text) == []
    assert len(response.text.splitlines()) <= 400


@pytest.mark.parametrize("name,media", [("vis-network.min.js", "text/javascript"), ("vis-network.css", "text/css"),
                                        ("vis-network.min.css", "text/css")])
def test_vis_network_is_served_from_the_pyvis_package(client: TestClient, name: str, media: str) -> None:
    response = client.get(f"/vendor/{name}")
    assert response.status_code == 200 and response.headers["content-type"].startswith(media)
    source = render.VIS_FILES["vis-network.min.js" if name.endswith(".js") else "vis-network.css"]
    assert response.content == source.read_bytes()
    assert "pyvis" in str(source) and "vis-9.1.2" in str(source)
    assert REMOTE_LOAD.findall(response.text) == []


def test_unknown_vendor_file_is_404(client: TestClient) -> None:
    assert client.get("/vendor/jquery.js").status_code == 404


# --- the explorer ------------------------------------------------------------------------------------------


def test_explorer_has_search_filters_panel_and_embedded_graph(client: TestClient) -> None:
    text, p = page(client, "/")
    services = client.app.state.services
    search = p.one("input", id="search")
    assert search["list"] == "entity-names" and p.one("label", for_="search")
    assert re.search(r'<label for="search">Find an entity</label>', text)
    options = [a["value"] for a in p.find("option") if "value" in a]
    assert {"joint pain", "arthralgia", "MMA"} <= set(options)
    assert p.one("form", id="filters")
    groups = [a["value"] for a in p.find("input", type="checkbox", name="type")]
    assert groups == ["condition", "mechanism", "clinical-feature", "test", "treatment", "exposure"]
    predicates = {a["value"] for a in p.find("input", type="checkbox", name="predicate")}
    assert {"akg:causes", "akg:mayCause", "akg:mediatedBy", "akg:correlatesWith", "skos:broader"} <= predicates
    assert all("checked" in a for a in p.find("input", type="checkbox"))
    assert p.options("reference") == ["all", "1", "2", "3", "4", "5", "6", "unresolved", "article-only"]
    assert p.options("certainty") == ["all", "asserted", "strong", "possible"]
    panel = p.one("aside", id="panel")
    assert panel["aria-live"] == "polite"
    assert p.one(id="graph") and p.one(id="legend")
    data = json.loads(p.scripts["graph-data"])
    assert {n["id"] for n in data["nodes"]} == set(services.knowledge.entities)
    assert {c.id for c in services.knowledge.claims} <= {e["id"] for e in data["edges"]}
    assert data["entityUrl"] == "/entity/{id}"
    assert [s["src"] for s in p.find("script") if "src" in s] == [
        "/vendor/vis-network.min.js", "/static/common.js", "/static/explorer.js"]
    assert p.find("link", rel="stylesheet", href="/vendor/vis-network.css")


def test_explorer_legend_names_every_group_and_edge_style(client: TestClient) -> None:
    text, _ = page(client, "/")
    legend = text[text.index('id="legend"'):text.index("</section>", text.index('id="legend"'))]
    for g in render.GROUPS:
        assert g.label in legend and g.color in legend
    for words in ("hedged (possible)", "negated: NOT ...", "broader (hierarchy)"):
        assert words in legend


# --- path finder, entity pages, references, SPARQL --------------------------------------------------------


def test_path_finder_form(client: TestClient) -> None:
    _, p = page(client, "/paths?source=vitamin%20B12%20deficiency&target=joint%20pain")
    assert p.one("input", id="source")["list"] == "source-options" and p.one("datalist", id="source-options")
    assert p.one("input", id="target")["list"] == "target-options" and p.one("datalist", id="target-options")
    assert p.one("button", id="find")["type"] == "submit"
    assert p.one(id="graph") and p.one("section", id="results") and p.one(id="path-message")["role"] == "status"
    data = json.loads(p.scripts["page-data"])
    assert data["entities"]["joint_pain"] == {"label": "joint pain", "group": "clinical-feature"}


@pytest.mark.parametrize("name", ["joint_pain", "arthralgia", "HP:0002829", "ent:joint_pain"])
def test_entity_page_resolves_any_name(client: TestClient, name: str) -> None:
    text, p = page(client, f"/entity/{name}")
    assert "<h1>joint pain</h1>" in text
    assert p.one(id="graph") and p.one("section", id="relations")
    relations = client.app.state.services.knowledge.relations("joint_pain")
    blocks = [a for a in p.classes("relation") if a.get("data-claim")]
    assert [b["data-claim"] for b in blocks] == [r["claim"] for r in relations]
    assert len(p.classes("quote")) == sum(len(r["evidence"]) for r in relations)
    assert p.classes("reference") and p.find("a", class_="xref", href="http://purl.obolibrary.org/obo/HP_0002829")
    assert p.find("a", class_="entity-link", href="/entity/altered_gait")
    data = json.loads(p.scripts["graph-data"])
    assert data["entity"] == "joint_pain" and {n["id"] for n in data["nodes"]} >= {"joint_pain", "altered_gait"}


def test_entity_page_shows_the_unresolved_citation(client: TestClient) -> None:
    text, p = page(client, "/entity/dapsone_toxicity")
    unresolved = [a for a in p.classes("reference") if "unresolved" in a["class"].split()]
    assert unresolved and unresolved[0]["data-number"] == "7"
    assert "[7] unresolved: not in the article's reference list" in text


def test_unknown_entity_is_a_404_page_with_suggestions(client: TestClient) -> None:
    text, p = page(client, "/entity/unknown", 404)
    assert "<h1>Not found</h1>" in text and p.one("main")
    _, p = page(client, "/entity/arthralgiaa", 404)
    assert p.find("a", class_="entity-link", href="/entity/joint_pain")


def test_references_page(client: TestClient) -> None:
    text, p = page(client, "/references")
    section = text[text.index('id="references"'):text.index('id="unresolved"')]
    assert section.count('<li class="reference"') == 6
    assert "Peripheral Neuropathy" in section and "Guideline" in section
    unresolved = text[text.index('id="unresolved"'):text.index('id="coverage"')]
    assert "[7] unresolved: not in the article's reference list" in unresolved
    assert 'href="/entity/dapsone_toxicity"' in unresolved and "Cited by 3 claims" in unresolved
    coverage = text[text.index('id="coverage"'):]
    knowledge = client.app.state.services.knowledge
    assert re.search(r'class="cov-cited">(\d+) of \1 \(100.0%\)', coverage)
    assert f'class="cov-uncited">{len(knowledge.uncited_claims)}<' in coverage
    assert p.one("section", id="coverage")


def test_query_page_preloads_the_example_queries(client: TestClient) -> None:
    text, p = page(client, "/query")
    examples = json.loads(p.scripts["query-data"])["examples"]
    files = sorted((ROOT / "queries").glob("*.rq"))
    assert [e["name"] for e in examples] == [f.stem for f in files]
    assert examples[2]["query"] == files[2].read_text(encoding="utf-8")
    form = p.one("form", id="plain-form")
    assert (form["method"], form["action"]) == ("post", "/sparql")
    assert p.one("textarea", id="plain-query")["name"] == "query" and p.one("button", id="plain-run")
    if (render.YASGUI / "yasgui.min.js").is_file():
        assert p.one("div", id="yasgui") and not p.find(id="yasgui-missing")
        assert p.find("script", src="/vendor/yasgui/yasgui.min.js")
        assert client.get("/vendor/yasgui/yasgui.min.js").status_code == 200
    else:
        assert p.one(id="yasgui-missing") and "make web" in text


def test_query_page_without_yasgui_says_make_web_and_keeps_the_plain_form(client: TestClient, tmp_path: Path,
                                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(render, "YASGUI", tmp_path / "missing")
    services = client.app.state.services
    with TestClient(create_app(services.settings, services=services)) as bare:
        text, p = page(bare, "/query")
        assert p.one(id="yasgui-missing") and "run <code>make web</code>" in text
        assert not p.find(id="yasgui") and not p.find("script", src="/vendor/yasgui/yasgui.min.js")
        assert p.one("textarea", id="plain-query") and p.one("form", id="plain-form")
        assert bare.get("/vendor/yasgui/yasgui.min.js").status_code == 404


def test_plain_form_endpoint_answers_the_example_queries(client: TestClient) -> None:
    examples = json.loads(Page(client.get("/query").text).scripts["query-data"])["examples"]
    response = client.post("/sparql", data={"query": examples[0]["query"]},
                           headers={"Accept": "application/sparql-results+json"})
    assert response.status_code == 200 and response.json()["results"]["bindings"]
