#!/usr/bin/env python3
"""Bundle YASGUI into web/vendor/yasgui/ (``make web``): the SPARQL page loads it from there, never from a CDN.

Steps, each of which stops the bundle with a clear message when it fails:

1. ``npm ci`` in web/ installs exactly what web/package-lock.json records (skipped when web/node_modules already
   holds every locked package at its locked version, so a second run is quick);
2. the built UMD files of ``@zazuko/yasgui`` (``build/yasgui.min.js``, a plain ``<script>`` that defines the global
   ``Yasgui``, and ``build/yasgui.min.css``) are copied to web/vendor/yasgui/ under the names the pages load
   (``yasgui.min.js``, ``yasgui.min.css``), with every relative ``url(...)`` file the CSS names (4.6.2 has none);
   the JS's trailing ``//# sourceMappingURL=`` comment is dropped, as the 3.6 MB map is not shipped;
3. both files are scanned: the bundle FAILS if the CSS loads anything remote (``url(http...)``, ``url(//...)``,
   ``@import`` of a remote file), if the JS builds a remote ``src=``/``url(``/``@import``/``<link href>``, if the JS
   holds an http(s) URL literal that none of the rules below explains, or if it calls ``fetch(`` anywhere but at
   the four known sites (see web/README.md for what each is and why our page config never reaches a remote one).

Only the standard library is used, so the system ``python3`` runs it before any virtual environment exists.
``python3 web/bundle.py --list-urls`` prints every URL literal of the bundled JS with its class.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

WEB = Path(__file__).resolve().parent
PACKAGE = "@zazuko/yasgui"
NODE_MODULES = WEB / "node_modules"
BUILD = NODE_MODULES / "@zazuko" / "yasgui" / "build"
VENDOR = WEB / "vendor" / "yasgui"
JS_NAME = "yasgui.min.js"  # the contract with the pages: /vendor/yasgui/yasgui.min.js
CSS_NAME = "yasgui.min.css"  # and /vendor/yasgui/yasgui.min.css
NPM_CI = ["npm", "ci", "--ignore-scripts", "--no-audit", "--no-fund", "--prefer-offline"]


class BundleError(Exception):
    """A reason to stop the bundle; its text is printed as is."""


# --------------------------------------------------------------------------------------------------------------
# The scan. Pure functions of the file text, so tests/test_vendor.py checks the shipped files with the same rules.
# --------------------------------------------------------------------------------------------------------------

URL_LITERAL = re.compile(r"https?://[^\s`'\"<>()\\{}|^]*")
REMOTE = r"(?:https?:)?//"  # what a browser would fetch from another host: http://, https:// or protocol-relative //

# Identifiers, never dereferenced: XML namespaces (DOMPurify, inline SVG icons) ...
XML_NAMESPACES = {"http://www.w3.org/2000/svg", "http://www.w3.org/1999/xhtml", "http://www.w3.org/1998/Math/MathML"}


@dataclass(frozen=True)
class UrlLiteral:
    url: str
    offset: int
    category: str | None  # None: no rule explains it (the bundle fails)
    context: str


@dataclass(frozen=True)
class Rule:
    category: str
    why: str


# The classes a URL literal of the JS may fall in; web/README.md repeats them for people.
RULES = {
    "prefix-data": Rule("prefix-data", "the bundled prefix table of the 'prefixes' autocompleter (namespace IRIs "
                        "written into the query text, never fetched; with prefixCcApi null it is used instead of "
                        "any download)"),
    "rdf-vocabulary": Rule("rdf-vocabulary", "RDF/XSD/OWL/N3 vocabulary IRIs of the bundled N3 parser: identifiers"),
    "default-query": Rule("default-query", "PREFIX IRIs in YASQE's default query text"),
    "xml-namespace": Rule("xml-namespace", "XML namespace or RDF metadata inside inline SVG icons and DOMPurify: "
                          "identifiers, never fetched"),
    "hyperlink": Rule("hyperlink", "the href (or the text) of an <a> link: opened only when the user clicks it"),
    "message": Rule("message", "text of a DataTables warning (console/alert), never fetched"),
    "endpoint-default": Rule("endpoint-default", "a default SPARQL endpoint (requestConfig.endpoint, "
                             "endpointCatalogueOptions.getData): fetched only if used as the endpoint; our page sets "
                             "requestConfig.endpoint and its own endpoint catalogue"),
    "lov-autocompleter": Rule("lov-autocompleter", "the scheme of the Linked Open Vocabularies URL that the "
                              "'property' and 'class' autocompleters fetch (lov.linkeddata.es): our page keeps only "
                              "the 'variables' autocompleter"),
}


def _block_spans(js: str) -> list[tuple[int, int, str]]:
    """Spans of the JS whose URL literals are data tables: the bundled prefixes and the N3 vocabulary."""
    spans: list[tuple[int, int, str]] = []
    for pattern, category in (
        # a run of `name=`iri`,` declarations ending in `prefixes_default={name,...,void:`iri`,...}`
        (r"(?:[A-Za-z_$][\w$]*=`https?://[^`]*`,)+prefixes_default=\{[^{}]*\}", "prefix-data"),
        (r"RDF=`[^`]*`,XSD=`[^`]*`,SWAP=`[^`]*`,IRIs_default=\{(?:[^{}]|\$\{[^{}]*\}|\{(?:[^{}]|\$\{[^{}]*\})*\})*\}",
         "rdf-vocabulary"),
    ):
        spans.extend((m.start(), m.end(), category) for m in re.finditer(pattern, js))
    return spans


def _classify(js: str, start: int, end: int, spans: list[tuple[int, int, str]]) -> str | None:
    url = js[start:end]
    before, after = js[max(0, start - 400):start], js[end:end + 200]
    for lo, hi, category in spans:
        if lo <= start < hi:
            return category
    if url in XML_NAMESPACES or re.search(r"xmlns(?::[\w-]+)?=\"$", before) or before.endswith('rdf:resource="'):
        return "xml-namespace"
    if re.search(r"PREFIX [\w-]*: <$", before):
        return "default-query"
    if re.search(r"<a [^<>]*href=\"$", before):  # an <a> tag's href: a link, not a load
        return "hyperlink"
    if re.search(r"<a [^<>]*href=\"[^\"]*\">$", before) and after.startswith("</a>"):  # the link's own text
        return "hyperlink"
    if before.endswith("helpReference=`") or before.endswith("documentationLink.href=`"):
        return "hyperlink"
    if re.search(r"(\w)=document\.createElement\(`a`\);[^;]{0,120}\1\.href=`$", before):  # <a>.href=`...`
        return "hyperlink"
    if "DataTables warning" in before[-200:] or before.endswith("please see "):
        return "message"
    if before.endswith("endpoint:`") and ("requestConfig" in after or "endpointCatalogueOptions" in before[-150:]
                                         or "queryArgument:void 0" in before[-60:]):
        return "endpoint-default"
    if url in ("http://", "https://") and "lov.linkeddata.es/" in js[start:start + 600]:
        return "lov-autocompleter"
    return None


def url_literals(js: str) -> list[UrlLiteral]:
    """Every http(s) URL literal of the JS, each with the rule that explains it (or None)."""
    spans = _block_spans(js)
    found = []
    for m in URL_LITERAL.finditer(js):
        category = _classify(js, m.start(), m.end(), spans)
        context = js[max(0, m.start() - 90):m.end() + 60].replace("\n", "\\n")
        found.append(UrlLiteral(m.group(), m.start(), category, context))
    return found


# The only places the JS calls fetch(); any other one fails the bundle until it is reviewed and listed here.
FETCH_SITES = {
    "sparql-query": (r"new Request\([^()]*\);.{0,80}$", "the SPARQL request to requestConfig.endpoint"),
    "prefix-cc-api": (r"prefixCcApi\?$", "yasqe.prefixCcApi, null by default: never called unless configured"),
    "lov": (r"lov\.linkeddata\.es/[^;]*;return $", "the 'property'/'class' autocompleters (Linked Open "
            "Vocabularies): off in our page"),
    "cors-check": (r"checkEndpointForCors\(\w\)\{if\(this\.yasgui\.config\.corsProxy[^;]*;[^;]*$",
                   "the CORS probe of an endpoint, run only when corsProxy is set (unset by default)"),
}


def fetch_sites(js: str) -> list[tuple[int, str | None, str]]:
    sites = []
    for m in re.finditer(r"(?<![\w$.])fetch\(", js):
        before = js[max(0, m.start() - 400):m.start()]
        name = next((n for n, (pattern, _) in FETCH_SITES.items() if re.search(pattern, before)), None)
        sites.append((m.start(), name, js[max(0, m.start() - 100):m.end() + 60]))
    return sites


def remote_loads_js(js: str) -> list[str]:
    """Places where the JS would make the browser load a remote file by itself (src, url(), @import, <link>)."""
    problems: list[str] = []
    for pattern, what in (
        (r"\bsrc(?:set)?\s*[=:]\s*[`'\"]?\s*" + REMOTE, "src= pointing at a remote URL"),
        (r"url\(\s*[`'\"]?\s*" + REMOTE, "CSS url() pointing at a remote URL"),
        (r"@import\s+(?:url\()?\s*[`'\"]?\s*" + REMOTE, "@import of a remote stylesheet"),
        (r"<link\b[^<>]*href=\s*[`'\"]?\s*" + REMOTE, "<link href> to a remote URL"),
        (r"<script\b[^<>]*src=\s*[`'\"]?\s*" + REMOTE, "<script src> to a remote URL"),
        (r"(?:importScripts|new Worker|new SharedWorker|sendBeacon)\(\s*[`'\"]" + REMOTE, "a remote script or beacon"),
    ):
        problems.extend(f"{what}: ...{js[max(0, m.start() - 60):m.end() + 60]}..." for m in re.finditer(pattern, js))
    return problems


def css_urls(css: str) -> list[str]:
    """The targets of the CSS's url(...) and @import "..." references, unquoted."""
    targets = [m.group(1).strip().strip("'\"").strip() for m in re.finditer(r"url\(\s*([^)]*)\)", css)]
    targets += [m.group(1) for m in re.finditer(r"@import\s+[\"']([^\"']+)[\"']", css)]
    return targets


def remote_loads_css(css: str) -> list[str]:
    problems = [f"url({t}) is remote" for t in css_urls(css) if re.match(REMOTE, t, re.I)]
    problems += [f"@import {m.group()!r}" for m in re.finditer(r"@import\s+(?:url\()?\s*[\"']?\s*" + REMOTE, css, re.I)]
    return problems


def scan_js(js: str) -> list[str]:
    """Every reason the JS is unfit to ship (empty: fine)."""
    problems = remote_loads_js(js)
    problems += [f"unexplained URL literal {u.url!r}: ...{u.context}..."
                 for u in url_literals(js) if u.category is None]
    problems += [f"unreviewed fetch( call: ...{ctx}..." for _, name, ctx in fetch_sites(js) if name is None]
    return problems


# --------------------------------------------------------------------------------------------------------------
# The bundle.
# --------------------------------------------------------------------------------------------------------------

def pinned_version() -> str:
    """The exact version web/package.json pins, checked against what web/package-lock.json resolves."""
    package = json.loads((WEB / "package.json").read_text())
    lock = json.loads((WEB / "package-lock.json").read_text())
    wanted = package.get("dependencies", {}).get(PACKAGE)
    if not wanted or not re.fullmatch(r"\d+\.\d+\.\d+", wanted):
        raise BundleError(f"web/package.json must pin an exact version of {PACKAGE} (found {wanted!r})")
    locked = lock.get("packages", {}).get(f"node_modules/{PACKAGE}", {}).get("version")
    if locked != wanted or lock["packages"].get("", {}).get("dependencies", {}).get(PACKAGE) != wanted:
        raise BundleError(f"web/package-lock.json resolves {PACKAGE} {locked}, web/package.json pins {wanted}: "
                          "run `npm install` in web/ and commit the lockfile")
    return wanted


def installed_matches_lock() -> bool:
    """True if web/node_modules holds every package of the lockfile at its locked version."""
    lock = json.loads((WEB / "package-lock.json").read_text())
    for path, meta in lock.get("packages", {}).items():
        if not path or meta.get("link"):
            continue
        try:
            version = json.loads((WEB / path / "package.json").read_text()).get("version")
        except (OSError, ValueError):
            if meta.get("optional"):
                continue  # an optional package of another platform: npm leaves it out
            return False
        if version != meta.get("version"):
            return False
    return True


def npm_ci() -> None:
    npm = shutil.which("npm")
    if npm is None:
        raise BundleError("npm was not found on PATH. `make web` needs Node.js 20+ and npm to install YASGUI from "
                          "web/package-lock.json (Debian: apt-get install nodejs npm).")
    cmd = [npm, *NPM_CI[1:]]
    print(f"web: {' '.join(NPM_CI)}  (in web/)", flush=True)
    done = subprocess.run(cmd, cwd=WEB, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    if done.returncode != 0:
        raise BundleError(f"`npm ci` failed in web/ (exit {done.returncode}):\n{done.stdout.strip()}")


def bundle(force_install: bool = False) -> None:
    started = time.monotonic()
    version = pinned_version()
    if force_install or not installed_matches_lock():
        npm_ci()
    else:
        print("web: web/node_modules already matches web/package-lock.json; npm ci skipped")
    built = json.loads((BUILD.parent / "package.json").read_text())["version"]
    if built != version:
        raise BundleError(f"web/node_modules has {PACKAGE} {built}, the lockfile {version}: run npm ci in web/")

    js = (BUILD / JS_NAME).read_text(encoding="utf-8")
    css = (BUILD / CSS_NAME).read_text(encoding="utf-8")
    js = re.sub(r"\n//# sourceMappingURL=\S+\s*$", "\n", js)  # the map is not shipped: no 404 for devtools

    problems = [f"{JS_NAME}: {p}" for p in scan_js(js)] + [f"{CSS_NAME}: {p}" for p in remote_loads_css(css)]
    if "Yasgui" not in js[:2000] or "typeof Yasgui" not in js[-2000:]:
        problems.append(f"{JS_NAME}: not the UMD build that defines the global Yasgui")
    assets = []
    for target in css_urls(css):
        if target.startswith(("data:", "#")) or re.match(REMOTE, target, re.I):
            continue  # inline data, or remote (already a problem above)
        relative = target.split("?")[0].split("#")[0]
        source = (BUILD / relative).resolve()
        if not source.is_file() or BUILD.resolve() not in source.parents:
            problems.append(f"{CSS_NAME}: url({target}) names no file inside the package's build/")
        else:
            assets.append(relative)
    if problems:
        raise BundleError("the YASGUI files would load something remote, or say something unreviewed:\n  "
                          + "\n  ".join(problems))

    # Write everything to a fresh folder beside the target, then swap it in: no half-written vendor/ folder.
    VENDOR.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".yasgui-", dir=VENDOR.parent))
    try:
        for relative in assets:
            (staging / relative).parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(BUILD / relative, staging / relative)
        (staging / CSS_NAME).write_text(css, encoding="utf-8")
        (staging / "VERSION").write_text(f"{PACKAGE} {version} (MIT licence; built files of the npm package)\n")
        (staging / JS_NAME).write_text(js, encoding="utf-8")
        os.chmod(staging, 0o755)
        old = VENDOR.with_name(".yasgui-old")
        shutil.rmtree(old, ignore_errors=True)
        if VENDOR.exists():
            VENDOR.rename(old)
        staging.rename(VENDOR)
        shutil.rmtree(old, ignore_errors=True)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise

    counts = Counter(u.category for u in url_literals(js))
    summary = ", ".join(f"{n} {c}" for c, n in counts.most_common())
    print(f"web: {PACKAGE} {version} -> {VENDOR.relative_to(WEB.parent)}/ ({JS_NAME} {len(js) // 1024} KiB, "
          f"{CSS_NAME} {len(css) // 1024} KiB{', ' + str(len(assets)) + ' assets' if assets else ''}) "
          f"in {time.monotonic() - started:.1f}s; URL literals in the JS: {summary}; no remote load")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--force-install", action="store_true", help="run npm ci even if node_modules matches")
    parser.add_argument("--list-urls", action="store_true",
                        help="print every URL literal and fetch( site of the bundled JS with its class, and exit")
    args = parser.parse_args(argv)
    try:
        if args.list_urls:
            js = (VENDOR / JS_NAME).read_text(encoding="utf-8")
            for u in url_literals(js):
                print(f"{u.category or 'UNEXPLAINED':18} {u.url}")
            for _, name, ctx in fetch_sites(js):
                print(f"{'fetch:' + (name or 'UNREVIEWED'):18} ...{ctx}...")
            return 0
        bundle(force_install=args.force_install)
    except (BundleError, OSError) as error:
        print(f"make web: error: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
