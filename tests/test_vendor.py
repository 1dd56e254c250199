"""YASGUI, the SPARQL page's editor, bundled from npm by ``make web`` into web/vendor/yasgui/ (see web/README.md).

Nothing here is skipped: missing files fail with "run make web", a missing browser fails too. The file checks
reuse web/bundle.py's own scan. The browser tests load the bundled JS into headless Debian Chromium (driven by
Playwright, never a downloaded browser) in a tiny page served from a local file by a loopback HTTP server that
also answers ``/sparql``, with the configuration the SPARQL page uses. Every request the page makes is recorded;
one to a host other than the loopback is aborted. With our configuration there must be none, even while typing
where YASGUI's autocompleters look things up; with YASGUI's defaults the same typing does call an outside service
(the control test), which shows both that the recorder sees such calls and that the configuration matters.
"""

from __future__ import annotations

import importlib.util
import json
import re
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING
from urllib.parse import parse_qs, urlsplit

import pytest

if TYPE_CHECKING:  # imported where used, so the file checks run even without Playwright
    from playwright.sync_api import Browser, BrowserContext, Page, Route

REPO = Path(__file__).resolve().parents[1]
WEB = REPO / "web"
VENDOR = WEB / "vendor" / "yasgui"
JS = VENDOR / "yasgui.min.js"  # the contract with the pages: /vendor/yasgui/yasgui.min.js
CSS = VENDOR / "yasgui.min.css"  # and /vendor/yasgui/yasgui.min.css
PACKAGE = "@zazuko/yasgui"

LOOPBACK = {"127.0.0.1", "localhost", "::1"}
LOCAL_SCHEMES = {"data", "blob", "about"}
TIMEOUT_MS = 15_000


def _bundle_module() -> ModuleType:
    spec = importlib.util.spec_from_file_location("web_bundle", WEB / "bundle.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


bundle = _bundle_module()


def _read(path: Path) -> str:
    assert path.is_file(), f"{path.relative_to(REPO)} is missing: run make web"
    return path.read_text(encoding="utf-8")


# --- the files -------------------------------------------------------------------------------------------------


def test_bundled_files_exist() -> None:
    for path in (JS, CSS):
        assert path.is_file(), f"{path.relative_to(REPO)} is missing: run make web"
        assert path.stat().st_size > 10_000, f"{path.relative_to(REPO)} is suspiciously small: run make web"


def test_js_is_the_umd_build_that_defines_the_global_yasgui() -> None:
    js = _read(JS)
    assert "e.Yasgui=" in js[:1000] or "Yasgui" in js[:1000], "not the UMD wrapper that sets the global Yasgui"
    assert "typeof Yasgui" in js[-500:] and "Yasgui=Yasgui.default" in js[-500:], "no global Yasgui class"
    assert "exports.Yasgui=Yasgui" in js
    assert "sourceMappingURL" not in js[-300:], "the source map is not shipped, so no comment may ask for it"


def test_css_loads_nothing_remote() -> None:
    css = _read(CSS)
    assert bundle.remote_loads_css(css) == []
    assert not re.search(r"url\(\s*['\"]?\s*(?:https?:)?//", css, re.I)
    assert not re.search(r"@import", css, re.I), "the CSS imports another stylesheet"
    for target in bundle.css_urls(css):  # any other url() is a file shipped beside it
        if not target.startswith(("data:", "#")):
            assert (VENDOR / target.split("?")[0].split("#")[0]).is_file(), f"url({target}) is not bundled"


def test_js_loads_nothing_remote_and_every_url_literal_is_explained() -> None:
    js = _read(JS)
    assert bundle.scan_js(js) == []
    literals = bundle.url_literals(js)
    assert len(literals) > 100  # the bundled prefix table alone has hundreds: the scan did look
    categories = {u.category for u in literals}
    assert None not in categories and categories <= set(bundle.RULES)
    # the defaults our page configuration overrides are where the README says they are
    defaults = {u.url for u in literals if u.category == "endpoint-default"}
    assert defaults == {"https://dbpedia.org/sparql", "https://query.wikidata.org/bigdata/namespace/wdq/sparql"}
    assert sorted(name for _, name, _ in bundle.fetch_sites(js)) == sorted(bundle.FETCH_SITES)


def test_the_scan_catches_remote_loads() -> None:
    """The checks above would see a remote file: web/bundle.py's scan on made-up snippets."""
    assert bundle.remote_loads_css("a{background:url(https://cdn.example/x.png)}")
    assert bundle.remote_loads_css("@import url('//fonts.example/css');")
    assert bundle.remote_loads_css(".a{b:c}") == []
    assert bundle.remote_loads_js('e.innerHTML=`<img src="https://cdn.example/x.png">`')
    assert bundle.remote_loads_js("s.src=`//cdn.example/x.js`")
    assert bundle.remote_loads_js('`<link rel="stylesheet" href="https://cdn.example/y.css">`')
    assert bundle.scan_js("var u=`https://tracker.example/pixel`;")  # an unexplained literal
    assert bundle.scan_js("fetch(`/x`)")  # an unreviewed fetch( site
    assert bundle.scan_js('n.innerHTML=`see <a href="https://docs.example/">docs</a>`') == []


def test_package_json_pins_the_version_the_lockfile_resolves() -> None:
    package = json.loads((WEB / "package.json").read_text())
    lock = json.loads((WEB / "package-lock.json").read_text())
    assert package.get("private") is True
    pinned = package["dependencies"][PACKAGE]
    assert re.fullmatch(r"4\.\d+\.\d+", pinned), f"{PACKAGE} must be pinned to an exact 4.x version, not {pinned!r}"
    assert lock["packages"][""]["dependencies"][PACKAGE] == pinned
    assert lock["packages"][f"node_modules/{PACKAGE}"]["version"] == pinned
    assert lock["packages"][f"node_modules/{PACKAGE}"].get("integrity", "").startswith("sha512-")
    assert bundle.pinned_version() == pinned


def test_bundled_files_come_from_the_locked_version() -> None:
    pinned = json.loads((WEB / "package.json").read_text())["dependencies"][PACKAGE]
    stamp = _read(VENDOR / "VERSION")
    assert stamp.startswith(f"{PACKAGE} {pinned} "), f"web/vendor/yasgui holds {stamp.strip()!r}: run make web"


# --- in a browser ----------------------------------------------------------------------------------------------

# The SPARQL page's configuration (web/README.md): our endpoint, our endpoint catalogue, and of YASQE's
# autocompleters only "variables". Yasgui merges its options into its defaults with lodash's merge, which merges
# arrays index by index: `yasqe: {autocompleters: ["variables"]}` alone still leaves all four on, so the defaults
# themselves are narrowed before the constructor runs.
PAGE = """<!doctype html>
<html><head><meta charset="utf-8"><title>YASGUI offline</title>
<link rel="stylesheet" href="/vendor/yasgui/yasgui.min.css">
<script src="/vendor/yasgui/yasgui.min.js"></script>
</head><body><div id="yasgui"></div>
<script>
  const endpoint = new URL("/sparql", window.location.href).href;
  if (OURS) Yasgui.Yasqe.defaults.autocompleters = ["variables"];
  window.yasgui = new Yasgui(document.getElementById("yasgui"), {
    requestConfig: {endpoint: endpoint, method: "POST"},
    copyEndpointOnNewTab: false,
    endpointCatalogueOptions: {getData: () => [{endpoint: endpoint}], keys: []},
    persistenceId: null,
    yasqe: {autocompleters: ["variables"], prefixCcApi: null},
  });
</script></body></html>
"""

RESULTS = {"head": {"vars": ["s"]}, "results": {"bindings": [{"s": {"type": "uri", "value": "urn:anemia-kg:ok"}}]}}


@dataclass
class Site:
    base: str
    queries: list[str] = field(default_factory=list)


@pytest.fixture
def site(tmp_path: Path) -> Iterator[Site]:
    """A loopback server: / is the page (a local file), /vendor/yasgui/* the bundle, /sparql a fixed answer."""
    _read(JS), _read(CSS)

    def serve(pages: dict[str, Path]) -> type[BaseHTTPRequestHandler]:
        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None:
                pass

            def _send(self, status: int, body: bytes, ctype: str) -> None:
                self.send_response(status)
                self.send_header("Content-Type", ctype)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def do_GET(self) -> None:  # noqa: N802
                path = urlsplit(self.path).path
                if path in pages:
                    return self._send(200, pages[path].read_bytes(), "text/html; charset=utf-8")
                if path.startswith("/vendor/yasgui/") and "/" not in path[len("/vendor/yasgui/"):]:
                    file = VENDOR / path[len("/vendor/yasgui/"):]
                    if file.is_file():
                        ctype = "text/css" if file.suffix == ".css" else "text/javascript"
                        return self._send(200, file.read_bytes(), f"{ctype}; charset=utf-8")
                self._send(404, b"not found", "text/plain")

            def do_POST(self) -> None:  # noqa: N802
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0)).decode()
                if urlsplit(self.path).path != "/sparql":
                    return self._send(404, b"not found", "text/plain")
                state.queries.extend(parse_qs(body).get("query", []))
                self._send(200, json.dumps(RESULTS).encode(), "application/sparql-results+json")

        return Handler

    pages = {}
    for name, ours in (("/ours", "true"), ("/defaults", "false")):
        file = tmp_path / f"{name[1:]}.html"
        file.write_text(PAGE.replace("OURS", ours), encoding="utf-8")
        pages[name] = file
    server = ThreadingHTTPServer(("127.0.0.1", 0), serve(pages))
    state = Site(f"http://127.0.0.1:{server.server_address[1]}")
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield state
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)


@dataclass
class Visit:
    requests: list[str] = field(default_factory=list)
    blocked: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)


def _visit(browser: Browser, url: str) -> tuple[BrowserContext, Page, Visit]:
    """Open ``url`` in a fresh context that records every request and aborts those leaving the machine."""
    visit = Visit()
    context = browser.new_context(viewport={"width": 1280, "height": 800})
    context.set_default_timeout(TIMEOUT_MS)

    def route(route: Route) -> None:
        request_url = route.request.url
        visit.requests.append(request_url)
        parts = urlsplit(request_url)
        if parts.scheme in LOCAL_SCHEMES or parts.hostname in LOOPBACK:
            route.continue_()
        else:
            visit.blocked.append(request_url)
            route.abort()

    context.route("**/*", route)
    page = context.new_page()
    page.on("pageerror", lambda error: visit.errors.append(str(error)))
    page.goto(url)
    page.wait_for_selector("#yasgui .yasqe .CodeMirror")
    return context, page, visit


def _type_where_autocompleters_look_up(page: Page) -> None:
    """Type a prefixed property and a prefixed class, as a user would, asking for completions each time."""
    yasqe = "yasgui.getTab().getYasqe()"
    for text, more in (("SELECT * WHERE { ?s foaf:na", "m"), ("SELECT * WHERE { ?s a schema:Pers", "o")):
        page.evaluate(f"{yasqe}.setValue({json.dumps(text)}); {yasqe}.focus(); {yasqe}.setCursor({{line: 99, ch: 0}})")
        page.keyboard.type(more, delay=60)
        page.keyboard.press("Control+Space")
        page.wait_for_timeout(700)  # the lookups are asynchronous: give them time to start


def test_our_configuration_makes_no_request_off_the_machine(browser: Browser, site: Site) -> None:
    context, page, visit = _visit(browser, f"{site.base}/ours")
    try:
        assert page.evaluate("typeof Yasgui") == "function"
        tab = "yasgui.getTab()"
        assert page.evaluate(f"{tab}.getEndpoint()") == f"{site.base}/sparql"
        assert page.evaluate(f"{tab}.getYasqe().config.autocompleters") == ["variables"]
        assert page.evaluate(f"{tab}.getYasqe().config.prefixCcApi") is None
        active = page.evaluate(f"Object.keys({tab}.getYasqe().autocompleters)"
                               f".filter(k => {tab}.getYasqe().autocompleters[k])")
        assert active == ["variables"]

        _type_where_autocompleters_look_up(page)

        # a query goes to our endpoint and its answer is drawn
        page.evaluate(f"{tab}.getYasqe().setValue('SELECT ?s WHERE {{ ?s ?p ?o }} LIMIT 1')")
        page.click("#yasgui .yasqe_queryButton")
        page.wait_for_selector("#yasgui .yasr td >> text=urn:anemia-kg:ok")
        assert site.queries == ["SELECT ?s WHERE { ?s ?p ?o } LIMIT 1"]

        # a new tab keeps our endpoint (copyEndpointOnNewTab: false takes it from requestConfig)
        page.evaluate("yasgui.addTab(true)")
        assert page.evaluate(f"{tab}.getEndpoint()") == f"{site.base}/sparql"
        assert page.evaluate("yasgui.persistentConfig.getTabs().length") == 2

        assert visit.blocked == [], f"requests off the machine: {visit.blocked}"
        assert visit.errors == []
        assert {urlsplit(u).path for u in visit.requests} == {
            "/ours", "/vendor/yasgui/yasgui.min.css", "/vendor/yasgui/yasgui.min.js", "/sparql"}
    finally:
        context.close()


def test_control_yasgui_defaults_do_call_an_outside_service(browser: Browser, site: Site) -> None:
    """The same typing with YASGUI's own autocompleters reaches Linked Open Vocabularies: our recorder sees it."""
    context, page, visit = _visit(browser, f"{site.base}/defaults")
    try:
        # the options alone do not narrow the array (lodash merge is index by index)
        assert page.evaluate("yasgui.getTab().getYasqe().config.autocompleters") == [
            "variables", "prefixes", "property", "class"]
        _type_where_autocompleters_look_up(page)
        hosts = {urlsplit(u).hostname for u in visit.blocked}
        assert hosts == {"lov.linkeddata.es"}, f"blocked: {visit.blocked}"
        assert all(u in visit.requests for u in visit.blocked)
        # the bundled prefix table (not a download) completed the PREFIX declaration
        assert "PREFIX schema: <" in page.evaluate("yasgui.getTab().getYasqe().getValue()")
    finally:
        context.close()
