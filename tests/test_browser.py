"""The web pages in a real browser: what a clinician sees and can do, checked in headless Chromium.

The server is the installed console script over the real build (conftest's ``real_build``, read-only), started
once for the module on a free loopback port (``test_server.running_server``: waits for ``/health``, then SIGTERM
and SIGKILL of its process group). The browser is Debian's Chromium (``/usr/bin/chromium``, or
``$ANEMIA_KG_CHROMIUM``) driven by Playwright; it is never downloaded, and a missing browser fails the tests.

Every test gets a fresh browser context (1280x800 unless it says otherwise) that records, for every page load:

* console messages of type ``error`` and uncaught page errors (none allowed);
* loopback answers with status >= 400 (none allowed, unless a test expects one, e.g. a malformed query);
* every request; one to a host other than 127.0.0.1/localhost is aborted and recorded (none allowed): the pages
  must work offline, from the files the project ships.

A screenshot of each test's page goes to ``test-artifacts/screenshots/<test>.png``; with
``ANEMIA_KG_UPDATE_SCREENSHOTS=1`` the explorer and the path finder are also saved to ``docs/screenshots/`` for the
README. Every wait is bounded (at most 30 s).
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest
from playwright.sync_api import (
    Browser,
    ConsoleMessage,
    Page,
    Request,
    Response,
    Route,
    ViewportSize,
    expect,
)
from playwright.sync_api import TimeoutError as PlaywrightTimeout

from test_server import REFERENCES, UNRESOLVED, Server, running_server

REPO = Path(__file__).resolve().parents[1]
ARTIFACTS = REPO / "test-artifacts" / "screenshots"
DOC_SCREENSHOTS = REPO / "docs" / "screenshots"
UPDATE_SCREENSHOTS = os.environ.get("ANEMIA_KG_UPDATE_SCREENSHOTS") == "1"

TIMEOUT_MS = 30_000  # the longest any single wait may take
EXPECT_MS = 15_000  # an element expected after an action
DESKTOP = ViewportSize(width=1280, height=800)
PHONE = ViewportSize(width=390, height=844)
LOOPBACK = {"127.0.0.1", "localhost", "::1"}
LOCAL_SCHEMES = {"data", "blob", "about"}

B12_TO_JOINT_PAIN = "/paths?source=vitamin%20B12%20deficiency&target=joint%20pain"
GAIT_QUOTE = "May be secondary to altered gait and biomechanics due to neuropathy"
MALFORMED = "SELECT * WHERE { ?s ?p }"

PAGES = {  # name -> (path, selector present once the page has drawn its content)
    "explorer": ("/", "#graph canvas"),
    "paths": ("/paths", "#source"),
    "entity": ("/entity/peripheral_neuropathy", "#relations .relation"),
    "query": ("/query", "#yasgui .CodeMirror, #yasgui-missing, #yasgui-error:not([hidden])"),
    "references": ("/references", "#references .reference"),
    "api docs": ("/docs", ".swagger-ui .opblock"),  # Swagger UI, from the fastapi-offline package
}


# --- a watched browser tab ------------------------------------------------------------------------------------


class Tab:
    """One fresh browser context with one page, recording what must not happen while the test uses it."""

    def __init__(self, browser: Browser, base: str, viewport: ViewportSize) -> None:
        self.base = base
        self.context = browser.new_context(viewport=viewport, base_url=base, service_workers="block")
        self.context.set_default_timeout(TIMEOUT_MS)
        self.context.set_default_navigation_timeout(TIMEOUT_MS)
        self.requests: list[str] = []
        self.outside: list[str] = []  # requests to a non-loopback host (aborted)
        self.problems: list[str] = []  # console errors, page errors, failed loopback answers
        self.expected: list[str] = []  # problems a test said it expects (a 400 for a malformed query)
        self.allowed: list[re.Pattern[str]] = []
        self.context.route("**/*", self._route)
        self.page = self.context.new_page()
        self.page.on("console", self._console)
        self.page.on("pageerror", lambda exc: self._problem(f"page error: {exc}"))
        self.page.on("crash", lambda _: self._problem("the page crashed"))
        self.page.on("response", self._response)

    # recording

    def _route(self, route: Route, request: Request) -> None:
        self.requests.append(request.url)
        parts = urlsplit(request.url)
        if parts.scheme in LOCAL_SCHEMES or parts.hostname in LOOPBACK:
            route.continue_()
        else:
            self.outside.append(f"{request.method} {request.url} ({request.resource_type})")
            route.abort("blockedbyclient")

    def _console(self, message: ConsoleMessage) -> None:
        if message.type == "error":
            where = message.location
            self._problem(f"console error: {message.text} [{where.get('url', '')}:{where.get('lineNumber', '')}]")

    def _response(self, response: Response) -> None:
        if response.status >= 400 and urlsplit(response.url).hostname in LOOPBACK:
            self._problem(f"HTTP {response.status} for {response.request.method} {response.url}")

    def _problem(self, text: str) -> None:
        if any(pattern.search(text) for pattern in self.allowed):
            self.expected.append(text)
        else:
            self.problems.append(text)

    def allow(self, pattern: str) -> None:
        """Expect problems matching ``pattern`` (e.g. the 400 of a malformed query): recorded, not failed."""
        self.allowed.append(re.compile(pattern))

    # using

    def open(self, path: str, ready: str | None = None) -> Page:
        """Load ``path`` (status 200), wait for ``ready`` (a selector) and for the network to settle."""
        response = self.page.goto(path, wait_until="load")
        assert response is not None, f"no response for {path}"
        assert response.status == 200, f"{path}: HTTP {response.status}\n{response.text()[:2000]}"
        if ready:
            self.page.locator(ready).first.wait_for(state="attached")
        self.page.wait_for_load_state("networkidle")
        return self.page

    def assert_clean(self) -> None:
        """No console error, page error or failed loopback answer, and no request left the machine."""
        assert not self.outside, "requests to a non-loopback host (aborted):\n" + "\n".join(self.outside)
        assert not self.problems, "errors in the browser:\n" + "\n".join(self.problems)

    def screenshot(self, path: Path, full_page: bool = False) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.page.screenshot(path=str(path), full_page=full_page, timeout=TIMEOUT_MS)

    def close(self, shot: Path | None) -> None:
        try:
            if shot is not None and not self.page.is_closed():
                self.screenshot(shot)
        finally:
            self.context.close()


def shot_name(test_name: str, index: int) -> str:
    name = re.sub(r"[^A-Za-z0-9_.-]+", "-", test_name).strip("-")
    return f"{name}.png" if index == 0 else f"{name}-{index + 1}.png"


# --- fixtures -------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def site(real_build, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    with running_server(real_build.root, tmp_path_factory.mktemp("browser-server")) as running:
        yield running


@pytest.fixture(scope="module")
def api(site: Server) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=site.base, timeout=30) as client:
        yield client


@pytest.fixture(scope="module")
def entities(api: httpx.Client) -> list[dict[str, Any]]:
    response = api.get("/api/entities", params={"q": "", "limit": 100})
    assert response.status_code == 200, response.text
    found = response.json()["results"]
    assert 0 < len(found) < 100, f"{len(found)} entities: the limit of 100 may hide some"
    return found


@pytest.fixture(scope="module")
def article(real_build) -> str:
    return normal((real_build.root / "data" / "source" / "article.txt").read_text(encoding="utf-8"))


@pytest.fixture
def new_tab(browser: Browser, site: Server, request: pytest.FixtureRequest) -> Iterator[Callable[..., Tab]]:
    """``new_tab(viewport=DESKTOP)``: a fresh watched context; each is screenshotted and closed after the test."""
    made: list[Tab] = []

    def new(viewport: ViewportSize = DESKTOP) -> Tab:
        made.append(Tab(browser, site.base, viewport))
        return made[-1]

    yield new
    for index, tab in enumerate(made):
        tab.close(ARTIFACTS / shot_name(request.node.name, index))


@pytest.fixture
def tab(new_tab: Callable[..., Tab]) -> Tab:
    return new_tab()


# --- helpers --------------------------------------------------------------------------------------------------


def normal(text: str) -> str:
    """Whitespace collapsed, for comparing text shown on a page with the article."""
    return " ".join(text.split())


def assert_verbatim(quote: str, article: str) -> None:
    """A quote shown on a page is the article's own words (typographic quote marks around it allowed)."""
    shown = normal(quote).strip("\"'“”‘’«» ")
    assert shown, "an empty .quote"
    for piece in filter(None, (p.strip() for p in re.split(r"…|\.\.\.", shown))):
        assert piece in article, f"quote not in the article: {piece!r}"


READY = """async () => {
  const kg = window.anemiaKg;
  if (!kg || !kg.ready || typeof kg.ready.then !== 'function') return 'window.anemiaKg.ready is not a Promise';
  const timeout = new Promise(resolve => setTimeout(() => resolve('not resolved within 30 s'), 30000));
  return Promise.race([kg.ready.then(() => 'ok', err => 'rejected: ' + err), timeout]);
}"""


def explorer_ready(page: Page) -> None:
    page.wait_for_function("() => window.anemiaKg && window.anemiaKg.ready && window.anemiaKg.network",
                           timeout=TIMEOUT_MS)
    state = page.evaluate(READY)
    assert state == "ok", f"window.anemiaKg.ready: {state}"


NODE_POINT = """(id) => {
  const net = window.anemiaKg.network;
  const pos = net.getPositions([id])[id];
  const canvas = document.querySelector('#graph canvas');
  if (!pos || !canvas) return null;
  const dom = net.canvasToDOM(pos);
  const box = canvas.getBoundingClientRect();
  const x = box.left + dom.x, y = box.top + dom.y;
  const hit = document.elementFromPoint(x, y);
  return {x, y, inside: dom.x >= 0 && dom.y >= 0 && dom.x <= box.width && dom.y <= box.height,
          hit: hit === canvas ? 'canvas' : (hit ? hit.outerHTML.slice(0, 200) : 'nothing')};
}"""


def click_node(page: Page, node: str) -> None:
    """A real mouse click on the node's centre, as drawn on the canvas."""
    page.locator("#graph canvas").first.scroll_into_view_if_needed()
    point = page.evaluate(NODE_POINT, node)
    assert point is not None, f"no position for node {node!r} (or no #graph canvas)"
    assert point["inside"], f"node {node!r} is drawn outside the visible canvas: {point}"
    assert point["hit"] == "canvas", f"node {node!r} is covered by another element: {point['hit']}"
    page.mouse.click(point["x"], point["y"])


VISIBLE_NODES = "() => window.anemiaKg.nodes.get().filter(n => !n.hidden).map(n => n.id)"
VISIBLE_EDGES = "() => window.anemiaKg.edges.get().filter(e => !e.hidden).length"

OPTIONS = """(selector) => {
  const input = document.querySelector(selector);
  const own = input && input.list ? [...input.list.options] : [];
  const aria = [...document.querySelectorAll('[role=option]')];
  return own.map(o => ({value: o.value, text: (o.value + ' ' + o.label + ' ' + o.textContent).toLowerCase()}))
    .concat(aria.map(o => ({value: null, text: o.textContent.toLowerCase()})));
}"""


def search_and_pick(page: Page, typed: str, label: str) -> None:
    """Type into ``#search`` key by key, pick the suggestion that names ``typed`` or ``label``, press Enter."""
    search = page.locator("#search")
    search.click()
    search.press_sequentially(typed, delay=40)
    wanted = [typed.lower(), label.lower()]
    page.wait_for_function(f"([s, w]) => ({OPTIONS})(s).some(o => w.some(x => o.text.includes(x)))",
                           arg=["#search", wanted], timeout=TIMEOUT_MS)
    options = page.evaluate(OPTIONS, "#search")
    choice = next(o for o in options if any(w in o["text"] for w in wanted))
    if choice["value"] is not None and choice["value"] != typed:
        search.fill(choice["value"])  # what picking a datalist option does: set the value, fire "input"
    search.press("Enter")


def panel_shows(page: Page, label: str) -> None:
    expect(page.locator("#panel h2").first).to_have_text(re.compile(rf"^\s*{re.escape(label)}\s*$", re.I),
                                                          timeout=EXPECT_MS)


def no_horizontal_scroll(page: Page) -> None:
    widths = page.evaluate("() => [document.documentElement.scrollWidth, window.innerWidth]")
    assert widths[0] <= widths[1] + 1, f"the page scrolls sideways: scrollWidth {widths[0]} > innerWidth {widths[1]}"


def within_width(page: Page, selector: str) -> None:
    element = page.locator(selector).first
    element.scroll_into_view_if_needed()
    expect(element).to_be_visible(timeout=EXPECT_MS)
    box = element.bounding_box()
    width = page.evaluate("() => window.innerWidth")
    assert box is not None and box["x"] >= -1 and box["x"] + box["width"] <= width + 1, \
        f"{selector} does not fit the {width}px wide screen: {box}"


CANVAS_INK = """(selector) => {
  const canvas = document.querySelector(selector);
  if (!canvas || !canvas.width || !canvas.height) return -1;
  const data = canvas.getContext('2d').getImageData(0, 0, canvas.width, canvas.height).data;
  let inked = 0;
  for (let i = 0; i < data.length; i += 4) {
    const [r, g, b, a] = [data[i], data[i + 1], data[i + 2], data[i + 3]];
    if (a > 0 && !(r > 245 && g > 245 && b > 245)) inked++;
  }
  return inked;
}"""


# --- (1) every page loads cleanly -----------------------------------------------------------------------------


@pytest.mark.slow
@pytest.mark.parametrize("name", list(PAGES))
def test_page_loads_without_errors_or_outside_requests(tab: Tab, name: str) -> None:
    path, ready = PAGES[name]
    page = tab.open(path, ready=ready)
    if path == "/":
        explorer_ready(page)
    page.wait_for_timeout(300)  # late errors of scripts that run after the load
    assert page.title().strip(), f"{path} has no <title>"
    assert any(urlsplit(u).path == path.split("?")[0] for u in tab.requests)
    tab.assert_clean()


# --- (2) the explorer draws every entity ----------------------------------------------------------------------


@pytest.mark.slow
def test_explorer_draws_every_entity(tab: Tab, entities: list[dict[str, Any]]) -> None:
    page = tab.open("/", ready="#graph canvas")
    explorer_ready(page)
    ids = sorted(e["id"] for e in entities)
    assert page.evaluate("() => window.anemiaKg.nodes.length") == len(ids)
    assert sorted(page.evaluate("() => window.anemiaKg.nodes.getIds()")) == ids
    positions = page.evaluate("() => window.anemiaKg.network.getPositions()")
    assert sorted(positions) == ids, "getPositions() does not cover every entity"
    assert len({(round(p["x"]), round(p["y"])) for p in positions.values()}) > len(ids) // 2, \
        "the nodes are piled on a few points, not laid out"
    assert page.evaluate("() => window.anemiaKg.edges.length") > 0
    outside = page.evaluate("""(ids) => {
      const net = window.anemiaKg.network, box = document.querySelector('#graph canvas').getBoundingClientRect();
      return ids.filter(id => { const p = net.canvasToDOM(net.getPositions([id])[id]);
        return p.x < 0 || p.y < 0 || p.x > box.width || p.y > box.height; });
    }""", ids)
    assert not outside, f"drawn outside the visible canvas after stabilisation: {outside}"
    canvas_box = page.locator("#graph canvas").first.bounding_box()
    assert canvas_box and canvas_box["width"] > 300 and canvas_box["height"] > 300, f"a tiny graph: {canvas_box}"
    inked = page.evaluate(CANVAS_INK, "#graph canvas")
    assert inked > 2000, f"the graph canvas is (nearly) blank: {inked} coloured pixels"
    page.locator("#search").wait_for(state="visible")
    assert page.get_by_label("Find an entity").first.evaluate("e => e.id") == "search"
    assert page.evaluate("() => { const i = document.querySelector('#search'); return !!(i.list && i.list.id); }"), \
        "#search has no datalist"
    if UPDATE_SCREENSHOTS:
        tab.screenshot(DOC_SCREENSHOTS / "explorer.png")
    tab.assert_clean()


# --- (3) clicking a node, searching, filtering ----------------------------------------------------------------


@pytest.mark.slow
def test_clicking_a_node_shows_its_evidence(tab: Tab, api: httpx.Client, article: str) -> None:
    page = tab.open("/", ready="#graph canvas")
    explorer_ready(page)
    click_node(page, "joint_pain")
    panel_shows(page, "joint pain")
    panel = page.locator("#panel")
    assert panel.get_attribute("aria-live") in {"polite", "assertive"}, "#panel is not aria-live"
    relations = panel.locator(".relation")
    expect(relations.first).to_be_visible(timeout=EXPECT_MS)
    quotes = panel.locator(".relation .quote")
    assert quotes.count() > 0, "the panel shows no quote"
    for quote in quotes.all_inner_texts():
        assert_verbatim(quote, article)
    references = panel.locator(".relation .reference")
    note = re.search(r"article (alone|only)|no (cited )?reference|uncited", panel.inner_text(), re.I)
    assert references.count() > 0 or note, "the panel shows neither a reference nor the article-only note"
    assert any("Peripheral Neuropathy" in r for r in references.all_inner_texts()), \
        "joint pain's reference 5 (Peripheral Neuropathy, 2025) is not shown"
    assert panel.locator(".relation .section").count() > 0, "no .section in the panel"
    xrefs = api.get("/api/entities/joint_pain").json()["entity"]["xrefs"]
    shown = " ".join(panel.locator("a.xref").all_inner_texts()) + " ".join(
        panel.locator("a.xref").evaluate_all("links => links.map(a => a.href)"))
    for xref in xrefs:
        local = xref["id"].split(":", 1)[1]
        assert local in shown, f"cross-reference {xref['id']} not shown as a.xref: {shown!r}"
    tab.assert_clean()


@pytest.mark.slow
def test_search_finds_a_synonym(tab: Tab) -> None:
    page = tab.open("/", ready="#search")
    explorer_ready(page)
    search_and_pick(page, "arthralgia", "joint pain")
    panel_shows(page, "joint pain")
    expect(page.locator("#panel .quote").first).to_be_visible(timeout=EXPECT_MS)
    tab.assert_clean()


@pytest.mark.slow
def test_filters_hide_and_show_nodes(tab: Tab, entities: list[dict[str, Any]]) -> None:
    page = tab.open("/", ready="#filters")
    explorer_ready(page)
    filters = page.locator("#filters")
    assert filters.locator("input[name=type]").count() > 1, "no type checkboxes"
    assert filters.locator("input[name=predicate]").count() > 1, "no predicate checkboxes"
    assert filters.locator("select#reference").count() == 1, "no select#reference"
    assert filters.locator("select#certainty").count() == 1, "no select#certainty"
    every = sorted(page.evaluate(VISIBLE_NODES))
    assert len(every) == len(entities), "some entities are hidden before any filter is changed"

    # a type checkbox's value names the nodes' group (its entities' coarse type)
    values = filters.locator("input[name=type]").evaluate_all("boxes => boxes.map(b => b.value)")
    groups = page.evaluate("() => window.anemiaKg.nodes.get().map(n => [n.id, n.group])")
    assert {g for _, g in groups} <= set(values), f"node groups without a checkbox: {groups}"
    kind = max(values, key=lambda v: sum(g == v for _, g in groups))
    of_kind = {i for i, g in groups if g == kind}
    assert of_kind and len(of_kind) < len(every), f"type filter {kind!r}: {len(of_kind)} nodes"
    box = filters.locator(f"input[name=type][value='{kind}']")
    assert box.is_checked(), f"the type filter {kind} starts unticked"
    box.uncheck()
    page.wait_for_function(f"() => ({VISIBLE_NODES})().length < {len(every)}", timeout=EXPECT_MS)
    visible = set(page.evaluate(VISIBLE_NODES))
    assert not of_kind & visible, f"unticking {kind} leaves these visible: {sorted(of_kind & visible)}"
    assert visible, f"unticking {kind} hides every node"
    box.check()
    page.wait_for_function(f"() => ({VISIBLE_NODES})().length === {len(every)}", timeout=EXPECT_MS)

    edges = page.evaluate(VISIBLE_EDGES)
    predicate = filters.locator("input[name=predicate]").first
    assert predicate.is_checked(), "the first predicate filter starts unticked"
    predicate.uncheck()
    page.wait_for_function(f"() => ({VISIBLE_EDGES})() < {edges}", timeout=EXPECT_MS)
    predicate.check()
    page.wait_for_function(f"() => ({VISIBLE_EDGES})() === {edges}", timeout=EXPECT_MS)
    tab.assert_clean()


# --- (4) the path finder --------------------------------------------------------------------------------------


def first_chain_b12_to_joint_pain(page: Page) -> None:
    expect(page.locator("#results .path").first).to_be_visible(timeout=TIMEOUT_MS)
    chain = normal(page.locator("#results .path .chain").first.inner_text())
    assert chain.startswith("vitamin B12 deficiency"), chain
    assert chain.endswith("joint pain"), chain


@pytest.mark.slow
def test_path_finder_deep_link_shows_chain_with_evidence(tab: Tab, article: str) -> None:
    page = tab.open(B12_TO_JOINT_PAIN, ready="#results")
    first_chain_b12_to_joint_pain(page)
    steps = page.locator("#results .path .step")
    assert steps.count() > 0, "no .step in the results"
    found = []
    for step in steps.all():
        quotes = step.locator(".quote").all_inner_texts()
        for quote in quotes:
            assert_verbatim(quote, article)
        references = normal(" ".join(step.locator(".reference").all_inner_texts()))
        if any(GAIT_QUOTE in normal(q) for q in quotes) and "Peripheral Neuropathy" in references:
            found.append(references)
    assert found, f"no step shows the quote {GAIT_QUOTE!r} with the reference 'Peripheral Neuropathy'"
    assert any("2025" in r for r in found), f"the reference's year 2025 is not shown: {found}"
    expect(page.locator("#graph canvas").first).to_be_visible(timeout=EXPECT_MS)
    assert page.evaluate(CANVAS_INK, "#graph canvas") > 500, "the path's graph is blank"
    if UPDATE_SCREENSHOTS:
        tab.screenshot(DOC_SCREENSHOTS / "paths.png")
    tab.assert_clean()


@pytest.mark.slow
def test_path_finder_autocompletes_and_finds(tab: Tab, api: httpx.Client) -> None:
    page = tab.open("/paths", ready="#source")
    labels = [e["label"].lower() for e in api.get("/api/entities", params={"q": "neuro"}).json()["results"]]
    assert labels
    source = page.locator("#source")
    source.click()
    source.press_sequentially("neuro", delay=40)
    page.wait_for_function(f"([s, w]) => ({OPTIONS})(s).some(o => w.some(x => o.text.includes(x)))",
                           arg=["#source", labels], timeout=TIMEOUT_MS)
    asked = [u for u in tab.requests if urlsplit(u).path == "/api/entities" and "neuro" in urlsplit(u).query]
    assert asked, "the suggestions for #source do not come from /api/entities"
    source.fill("vitamin B12 deficiency")
    page.locator("#target").fill("joint pain")
    page.locator("#find").click()
    first_chain_b12_to_joint_pain(page)
    tab.assert_clean()


# --- (5) the entity page --------------------------------------------------------------------------------------


@pytest.mark.slow
def test_entity_page_lists_relations_with_quotes(tab: Tab, api: httpx.Client, article: str) -> None:
    answer = api.get("/api/entities/peripheral_neuropathy").json()
    page = tab.open("/entity/peripheral_neuropathy", ready="#relations .relation")
    expect(page.locator("h1").first).to_have_text(re.compile(rf"^\s*{re.escape(answer['entity']['label'])}\s*$"),
                                                  timeout=EXPECT_MS)
    expect(page.locator("#graph canvas").first).to_be_visible(timeout=EXPECT_MS)
    relations = page.locator("#relations .relation")
    assert relations.count() > 0
    for relation in relations.all():
        quotes = relation.locator(".quote").all_inner_texts()
        assert quotes, f"a relation without a quote: {normal(relation.inner_text())[:300]!r}"
        for quote in quotes:
            assert_verbatim(quote, article)
    text = normal(page.locator("#relations").inner_text()).lower()
    missing = sorted({r["other"]["label"] for r in answer["relations"] if r["other"]["label"].lower() not in text})
    assert not missing, f"related entities not listed: {missing}"
    assert page.locator("#relations .reference").count() > 0, "no .reference on the entity page"
    tab.assert_clean()


# --- (6) the SPARQL page --------------------------------------------------------------------------------------


def yasgui_or_fail(page: Page) -> None:
    """YASGUI drawn on the page; a clear failure if it is not bundled or did not start."""
    page.locator(PAGES["query"][1]).first.wait_for(state="attached", timeout=TIMEOUT_MS)
    if page.locator("#yasgui-missing").count():
        pytest.fail("YASGUI is not bundled: /query shows #yasgui-missing (and the plain fallback form) "
                    "instead of YASGUI; bundle it into web/vendor/yasgui/ (make web)")
    failed = page.locator("#yasgui-error:not([hidden])")
    if failed.count():
        pytest.fail(f"YASGUI did not start: #yasgui-error says {normal(failed.inner_text())!r}")
    try:
        page.locator("#yasgui .yasqe .CodeMirror").first.wait_for(state="visible", timeout=TIMEOUT_MS)
    except PlaywrightTimeout:
        pytest.fail("YASGUI did not draw its editor in #yasgui within 30 s (did /vendor/yasgui/yasgui.min.js load?)")


ACTIVE = "#yasgui .tabPanel.active"
EDITOR = f"{ACTIVE} .yasqe .CodeMirror"
ROWS = f"{ACTIVE} .yasr tbody tr:not(:has(td.dt-empty)):not(:has(td.dataTables_empty))"


@pytest.mark.slow
def test_sparql_example_runs_and_shows_rows(tab: Tab) -> None:
    page = tab.open("/query")
    yasgui_or_fail(page)
    examples = sorted((REPO / "queries").glob("*.rq"))
    tabs = page.locator("#yasgui .tabsList a[role=tab]")
    assert tabs.count() >= len(examples), f"{tabs.count()} YASGUI tabs for {len(examples)} example queries"
    tabs.first.click()
    expect(page.locator(EDITOR)).to_be_visible(timeout=EXPECT_MS)
    shown = normal(page.locator(EDITOR).evaluate("e => e.CodeMirror.getValue()"))
    assert normal(examples[0].read_text(encoding="utf-8")) in shown, \
        f"the first tab does not hold {examples[0].name}: {shown[:300]!r}"
    page.locator(f"{ACTIVE} .yasqe_queryButton").click()
    expect(page.locator(ROWS).first).to_be_visible(timeout=TIMEOUT_MS)
    assert page.locator(ROWS).count() >= 1
    assert page.locator(f"{ACTIVE} .yasr .errorResult").count() == 0
    tab.assert_clean()


@pytest.mark.slow
def test_sparql_malformed_query_shows_readable_error(tab: Tab) -> None:
    tab.allow(r"(status of 400|HTTP 400 for POST .*/sparql|HTTP 400 for GET .*/sparql)")
    page = tab.open("/query")
    yasgui_or_fail(page)
    editor = page.locator(EDITOR)
    editor.evaluate("(e, q) => { e.CodeMirror.setValue(q); e.CodeMirror.focus(); }", MALFORMED)
    page.keyboard.press("Control+Enter")
    error = page.locator(f"{ACTIVE} .yasr .errorResult")
    expect(error).to_be_visible(timeout=TIMEOUT_MS)
    text = normal(error.inner_text())
    assert re.search(r"error|\b1:\d+\b|line 1", text, re.I), f"an unreadable error: {text!r}"
    assert tab.expected, "the malformed query never reached the server"
    tab.assert_clean()


# --- (7) the references page ----------------------------------------------------------------------------------


@pytest.mark.slow
def test_references_page_lists_six_and_the_unresolved_seven(tab: Tab, api: httpx.Client) -> None:
    listed = api.get("/api/references").json()
    page = tab.open("/references", ready="#references .reference")
    shown = page.locator("#references .reference")
    assert shown.count() == len(listed["references"]) == len(REFERENCES) == 6
    texts = [normal(t) for t in shown.all_inner_texts()]
    for number, (title, year, _) in REFERENCES.items():
        assert any(normal(title) in t and str(year) in t for t in texts), f"reference {number} ({title}) not shown"
    unresolved = normal(page.locator("#unresolved").inner_text())
    for number in UNRESOLVED:
        assert re.search(rf"\b{number}\b", unresolved), f"#unresolved does not mention {number}: {unresolved!r}"
    assert "unresolved" in unresolved.lower() or "not" in unresolved.lower(), unresolved
    assert normal(page.locator("#coverage").inner_text()), "#coverage is empty"
    tab.assert_clean()


# --- (8) a narrow screen --------------------------------------------------------------------------------------


@pytest.mark.slow
def test_narrow_screen_explorer_and_path_finder(new_tab: Callable[..., Tab]) -> None:
    tab = new_tab(PHONE)
    page = tab.open("/", ready="#search")
    explorer_ready(page)
    no_horizontal_scroll(page)
    search_and_pick(page, "joint pain", "joint pain")
    panel_shows(page, "joint pain")
    within_width(page, "#panel")
    within_width(page, "#panel .quote")
    no_horizontal_scroll(page)
    tab.screenshot(ARTIFACTS / "test_narrow_screen_explorer.png")

    page = tab.open(B12_TO_JOINT_PAIN, ready="#results")
    first_chain_b12_to_joint_pain(page)
    within_width(page, "#source")
    within_width(page, "#find")
    within_width(page, "#results .path")
    no_horizontal_scroll(page)
    tab.assert_clean()


# --- (9) the keyboard -----------------------------------------------------------------------------------------


@pytest.mark.slow
def test_tab_reaches_search_with_a_visible_focus(tab: Tab) -> None:
    page = tab.open("/", ready="#search")
    explorer_ready(page)
    page.evaluate("() => document.activeElement && document.activeElement.blur()")
    for _ in range(100):
        page.keyboard.press("Tab")
        if page.evaluate("() => document.activeElement && document.activeElement.id") == "search":
            break
    else:
        pytest.fail("100 presses of Tab never reach #search")
    style = page.evaluate("""() => { const e = document.activeElement, s = getComputedStyle(e);
      return {outline: s.outlineStyle, width: s.outlineWidth, shadow: s.boxShadow,
              visible: e.matches(':focus-visible')}; }""")
    outlined = style["outline"] not in {"none", "hidden"} and float(style["width"].rstrip("px") or 0) > 0
    assert outlined or style["shadow"] != "none", f"#search has no visible focus style: {style}"
    tab.assert_clean()
