"""Load the built dataset into an Oxigraph store, in memory, on disk, or on a remote SPARQL engine.

Only the built artifact crosses from the build side to the serving side: every store is filled from the
N-Quads file that ``anemia-kg build`` wrote, never from the curation objects.

* :func:`open_memory_store`: an in-memory store for the command line.
* :func:`prepare_disk_store`: an on-disk store folder that query workers open read-only
  (:class:`anemia_kg.executor.EmbeddedExecutor`), rebuilt only when the N-Quads changed.
* :func:`upload`: the dataset onto a remote engine, then served by :class:`anemia_kg.executor.RemoteExecutor`.

Remote engines, by their usual addresses:

* Oxigraph server (``pip install oxigraph``; ``oxigraph serve --location DIR --bind 127.0.0.1:7878``):
  query ``http://127.0.0.1:7878/query``, update ``/update``, Graph Store Protocol ``/store``.
  ``upload(nq, gsp_endpoint="http://127.0.0.1:7878/store")``. Start it with ``--timeout-s`` so that it stops
  queries the API has given up on.
* Apache Jena Fuseki, dataset ``ds``: query ``http://host:3030/ds/sparql`` (or ``/ds/query``), update
  ``/ds/update``, Graph Store Protocol ``/ds/data``.
  ``upload(nq, gsp_endpoint="http://host:3030/ds/data")``; set ``arq:queryTimeout`` on the service.

Neither needs a union-default-graph setting: the executor names the graphs it wants in every request.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import httpx
import pyoxigraph as ox

log = logging.getLogger(__name__)

MARKER = "anemia-kg-source.sha256"  # inside a prepared store: the sha256 of the N-Quads it was loaded from
KEEP_STORES = 2  # the current store and the one before it, which a running server may still have open
UPDATE_CHUNK = 2_000  # triples per INSERT DATA request


class StoreError(Exception):
    """The built dataset cannot be loaded."""


def open_memory_store(nquads: Path) -> ox.Store:
    """An in-memory Oxigraph store holding the dataset's named graphs."""
    store = ox.Store()
    try:
        with open(nquads, "rb") as fh:
            store.bulk_load(fh, format=ox.RdfFormat.N_QUADS)
    except FileNotFoundError:
        raise StoreError(f"{nquads}: no built dataset; run `anemia-kg build` first") from None
    except (OSError, SyntaxError, ValueError) as exc:
        raise StoreError(f"{nquads}: cannot load the built dataset: {exc}; rebuild it with `anemia-kg build`") from None
    return store


# --- on disk ----------------------------------------------------------------------------------------------


def prepare_disk_store(nquads: Path, folder: Path, *, digest: str | None = None) -> Path:
    """An on-disk Oxigraph store of ``nquads`` at ``folder``, reused while the N-Quads stay the same.

    ``folder`` is a symlink to a complete store in the hidden sibling ``.{folder.name}.stores/``. A new
    store is loaded into ``tmp-XXXX`` there, marked with the N-Quads' sha256, renamed, and only then is the
    symlink swapped with one atomic rename; a load that fails or is killed leaves the previous store in
    place (the next call removes its leftovers). Run one preparation at a time per folder. ``digest`` is the
    N-Quads' sha256 (:func:`dataset_digest`) when the caller has computed it already.
    """
    nquads, folder = Path(nquads), Path(folder)
    digest = digest or dataset_digest(nquads)
    if _marker(folder) == digest:
        return folder
    if folder.exists() and not folder.is_symlink() and _marker(folder) is None and any(folder.iterdir()):
        raise StoreError(f"{folder} exists and was not prepared by anemia-kg; remove it or choose another folder")
    stores = folder.parent / f".{folder.name}.stores"
    stores.mkdir(parents=True, exist_ok=True)
    for leftover in stores.glob("tmp-*"):  # from a load that was killed
        shutil.rmtree(leftover, ignore_errors=True)
    for leftover in stores.glob("link-*"):
        leftover.unlink(missing_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix="tmp-", dir=stores))
    try:
        _load_into(nquads, tmp)
        (tmp / MARKER).write_text(digest + "\n", encoding="ascii")
        final = stores / f"store-{digest[:12]}-{tmp.name.removeprefix('tmp-')}"
        os.replace(tmp, final)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    _point(folder, final)
    _prune(stores, keep=final)
    log.info("prepared the on-disk store %s from %s", folder, nquads)
    return folder


def dataset_digest(path: Path) -> str:
    """The sha256 of a built N-Quads file: what names the store and the model snapshot made from it."""
    digest = hashlib.sha256()
    try:
        with open(path, "rb") as fh:
            for block in iter(lambda: fh.read(1 << 20), b""):
                digest.update(block)
    except FileNotFoundError:
        raise StoreError(f"{path}: no built dataset; run `anemia-kg build` first") from None
    except OSError as exc:
        raise StoreError(f"{path}: cannot read the built dataset: {exc}") from None
    return digest.hexdigest()


def _marker(folder: Path) -> str | None:
    try:
        return (folder / MARKER).read_text(encoding="ascii").strip()
    except OSError:
        return None


def _load_into(nquads: Path, folder: Path) -> None:
    """Bulk-load into a new store at ``folder`` and close it (the store is dropped with its last reference)."""
    store: ox.Store | None = None
    try:
        store = ox.Store(str(folder))
        store.bulk_load(path=str(nquads), format=ox.RdfFormat.N_QUADS)
        store.flush()
        store.optimize()
    except (OSError, SyntaxError, ValueError) as exc:
        raise StoreError(f"{nquads}: cannot load into an on-disk store: {exc}") from None
    finally:
        store = None  # noqa: F841 - closes RocksDB before the folder is renamed


def _point(folder: Path, target: Path) -> None:
    """Make ``folder`` a symlink to ``target`` with one atomic rename."""
    link = target.parent / f"link-{target.name}"
    with contextlib.suppress(FileNotFoundError):
        link.unlink()
    os.symlink(os.path.relpath(target, folder.parent), link)
    if folder.is_dir() and not folder.is_symlink():  # an empty folder, or a store of an older layout
        shutil.rmtree(folder)
    os.replace(link, folder)


def _prune(stores: Path, keep: Path) -> None:
    """Remove all but the newest KEEP_STORES stores (``keep`` among them)."""
    old = sorted((p for p in stores.glob("store-*") if p != keep), key=lambda p: p.stat().st_mtime, reverse=True)
    for path in old[KEEP_STORES - 1 :]:
        shutil.rmtree(path, ignore_errors=True)


# --- remote -----------------------------------------------------------------------------------------------


def upload(nquads: Path, *, endpoint: str | None = None, update_endpoint: str | None = None,
           gsp_endpoint: str | None = None, replace: bool = True, timeout: float = 60) -> int:
    """Upload the built dataset to a remote engine, graph by graph; returns the number of quads sent.

    The SPARQL 1.1 Graph Store Protocol (``gsp_endpoint``: ``PUT``, or ``POST`` to add when ``replace`` is
    False, ``?graph=<g>`` with N-Triples) is used when given, else SPARQL Update (``update_endpoint``:
    ``DROP SILENT GRAPH`` then ``INSERT DATA`` in chunks). With ``endpoint`` (the query endpoint) the upload is
    checked afterwards by counting every graph's triples there.
    """
    if not gsp_endpoint and not update_endpoint:
        raise StoreError("give gsp_endpoint (Graph Store Protocol) or update_endpoint (SPARQL Update) to upload to")
    graphs = _read_graphs(Path(nquads))
    with httpx.Client(timeout=timeout, follow_redirects=False) as client:
        for graph, triples in graphs.items():
            if gsp_endpoint:
                _put_graph(client, gsp_endpoint, graph, triples, replace)
            else:
                _update_graph(client, update_endpoint or "", graph, triples, replace)
        if endpoint:
            _verify(client, endpoint, graphs)
    total = sum(len(triples) for triples in graphs.values())
    log.info("uploaded %d quads in %d graphs", total, len(graphs))
    return total


def _read_graphs(nquads: Path) -> dict[str | None, list[ox.Triple]]:
    """The dataset's triples by graph IRI (None: the default graph)."""
    graphs: dict[str | None, list[ox.Triple]] = {}
    try:
        for quad in ox.parse(path=str(nquads), format=ox.RdfFormat.N_QUADS):
            name = None if isinstance(quad.graph_name, ox.DefaultGraph) else quad.graph_name.value
            graphs.setdefault(name, []).append(quad.triple)
    except FileNotFoundError:
        raise StoreError(f"{nquads}: no built dataset; run `anemia-kg build` first") from None
    except (OSError, SyntaxError, ValueError) as exc:
        raise StoreError(f"{nquads}: cannot read the built dataset: {exc}") from None
    return graphs


def _put_graph(client: httpx.Client, gsp: str, graph: str | None, triples: list[ox.Triple], replace: bool) -> None:
    params = {"graph": graph} if graph else {"default": ""}
    body = ox.serialize(triples, format=ox.RdfFormat.N_TRIPLES)
    with _request(gsp, graph):
        response = client.request("PUT" if replace else "POST", gsp, params=params, content=body,
                                  headers={"Content-Type": "application/n-triples"})
        _check(response, gsp, graph)


def _update_graph(client: httpx.Client, update: str, graph: str | None, triples: list[ox.Triple],
                  replace: bool) -> None:
    target = f"GRAPH <{graph}>" if graph else "DEFAULT"
    chunks = [triples[i : i + UPDATE_CHUNK] for i in range(0, len(triples), UPDATE_CHUNK)] or [[]]
    for n, chunk in enumerate(chunks):
        written = ox.serialize(chunk, format=ox.RdfFormat.N_TRIPLES)
        assert written is not None  # without an output file Oxigraph returns the bytes
        data = written.decode("utf-8")
        insert = f"INSERT DATA {{ GRAPH <{graph}> {{\n{data}}} }}" if graph else f"INSERT DATA {{\n{data}}}"
        operation = f"DROP SILENT {target} ;\n{insert}" if replace and n == 0 else insert
        with _request(update, graph):
            response = client.post(update, content=operation.encode("utf-8"),
                                   headers={"Content-Type": "application/sparql-update"})
            _check(response, update, graph)


def _verify(client: httpx.Client, endpoint: str, graphs: dict[str | None, list[ox.Triple]]) -> None:
    """Count each uploaded graph on the query endpoint; fewer triples than sent means the upload failed."""
    for graph, triples in graphs.items():
        pattern = f"GRAPH <{graph}> {{ ?s ?p ?o }}" if graph else "?s ?p ?o"
        with _request(endpoint, graph):
            response = client.post(endpoint, data={"query": f"SELECT (COUNT(*) AS ?n) WHERE {{ {pattern} }}"},
                                   headers={"Accept": "application/sparql-results+json"})
            _check(response, endpoint, graph)
        try:
            count = int(response.json()["results"]["bindings"][0]["n"]["value"])
        except (ValueError, KeyError, IndexError) as exc:
            raise StoreError(f"{endpoint}: cannot count the triples of {graph or 'the default graph'}: {exc}") from None
        if count < len(set(triples)):
            raise StoreError(f"{endpoint}: {graph or 'the default graph'} holds {count} triples after the upload, "
                             f"not {len(set(triples))}")


@contextlib.contextmanager
def _request(url: str, graph: str | None) -> Iterator[None]:
    try:
        yield
    except httpx.TimeoutException:
        raise StoreError(f"{url} did not answer in time while uploading {graph or 'the default graph'}") from None
    except httpx.HTTPError as exc:
        raise StoreError(f"cannot reach {url}: {exc}") from None


def _check(response: httpx.Response, url: str, graph: str | None) -> None:
    if response.is_success:
        return
    if response.is_redirect:
        raise StoreError(f"{url} redirects to {response.headers.get('location')}; give the final address")
    text = response.text.strip()[:1000]
    raise StoreError(f"{url} refused {graph or 'the default graph'}: {response.status_code} "
                     f"{response.reason_phrase}: {text}")
