"""A response cache for a read-only graph: the same request gets the same bytes, without recomputing them.

The dataset never changes while the server runs (it is rebuilt and the server restarted), so a successful
answer of ``/sparql`` or ``/api/...`` depends only on the request. :class:`ResponseCache` is a plain ASGI
middleware installed outermost: a hit is answered before any other middleware or route runs, with the
status, headers and body recorded from the miss, which went through all of them (security headers and CORS
included), so a hit is byte-identical to what the application would say again (the tests compare both).

What makes two requests "the same" (the key): method, scheme, path, query string, the body of a POST, and
the request headers the answer depends on: ``Host`` (the service description names the endpoint's URL),
``Accept`` (content negotiation), ``Origin`` (CORS headers) and ``Content-Type`` (how a POST body is read).

What is cached: ``200`` answers only, of GET requests and of POST requests with a declared body of at most
64 KiB, to the cached paths, whose answer is at most ``max_entry_bytes``; never an error (a timeout may
pass), never a streamed answer larger than that. The entries are kept in least-recently-used order within
``max_bytes`` in all. ``max_bytes=0`` turns it off. The application turns it off when it serves from a
remote SPARQL engine: that engine's data may be reloaded while this server runs, and its outages must show.

Under ``anemia-kg serve`` most hits never reach this middleware: the HTTP protocol answers a plain GET whose
answer is here itself, through :meth:`ResponseCache.key_for_get` and :meth:`ResponseCache.hit`, with the
same bytes (:mod:`.hitlane`).
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Iterable
from dataclasses import dataclass, field

from starlette.types import ASGIApp, Message, Receive, Scope, Send

KEY_HEADERS = (b"host", b"accept", b"origin", b"content-type")
MAX_KEY_BODY = 64 * 1024  # a POST body larger than this is answered without the cache


#: What an answer is stored under (see :func:`_key`); a name, since CacheStats has a field called bytes.
Key = tuple[bytes, ...]


@dataclass
class _Entry:
    status: int
    headers: list[tuple[bytes, bytes]]
    body: bytes
    # How uvicorn writes it after its status line and default headers: head + body + tail (see _framing);
    # None when the answer names its own Transfer-Encoding or Connection, which only uvicorn then writes.
    framing: tuple[bytes, bytes] | None = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self.framing = _framing(self.headers, self.body)

    @property
    def size(self) -> int:
        return len(self.body) + sum(len(k) + len(v) for k, v in self.headers) * 2 + 96


@dataclass
class CacheStats:
    """Counters and the entries themselves (least recently used first); ``bytes`` is what they hold."""

    hits: int = 0
    misses: int = 0
    stored: int = 0
    evicted: int = 0
    bytes: int = 0
    entries: OrderedDict[Key, _Entry] = field(default_factory=OrderedDict, repr=False)

    def summary(self) -> dict[str, int]:
        return {"hits": self.hits, "misses": self.misses, "entries": len(self.entries), "bytes": self.bytes,
                "evicted": self.evicted}


class ResponseCache:
    """LRU cache of whole successful answers under ``paths`` (prefixes), bounded by ``max_bytes``."""

    def __init__(self, app: ASGIApp, *, max_bytes: int, max_entry_bytes: int = 2 * 1024 * 1024,
                 paths: Iterable[str] = ("/sparql", "/api/"), stats: CacheStats | None = None) -> None:
        self.app = app
        self.max_bytes = max_bytes
        self.max_entry_bytes = min(max_entry_bytes, max_bytes)
        self.paths = tuple(paths)
        self.stats = stats if stats is not None else CacheStats()  # pass one in to read it from outside

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if (self.max_bytes <= 0 or scope["type"] != "http" or scope["method"] not in ("GET", "POST")
                or not scope["path"].startswith(self.paths)):
            await self.app(scope, receive, send)
            return
        body = b""
        if scope["method"] == "POST":
            if not 0 <= _content_length(scope) <= MAX_KEY_BODY:  # chunked, or large: not worth holding back
                await self.app(scope, receive, send)
                return
            read, complete = await _read_body(receive, MAX_KEY_BODY)
            receive = _replay(read, receive)
            if not complete:  # too large to key on, or the client went away: no cache
                await self.app(scope, receive, send)
                return
            body = b"".join(m.get("body", b"") for m in read)
        key = _key(scope, body)
        entry = self.hit(key)
        if entry is not None:
            await send({"type": "http.response.start", "status": entry.status, "headers": entry.headers})
            await send({"type": "http.response.body", "body": entry.body})
            return
        self.stats.misses += 1
        await self.app(scope, receive, self._recording(key, send))

    def key_for_get(self, scope: Scope) -> Key | None:
        """What the answer to a GET request with this scope is stored under; None if such answers are not
        cached. For :mod:`.hitlane`, which answers hits before uvicorn starts the request's ASGI cycle."""
        if self.max_bytes <= 0 or not scope["path"].startswith(self.paths):
            return None
        return _key(scope, b"")

    def hit(self, key: Key, *, framed: bool = False) -> _Entry | None:
        """The entry under ``key``, counted as a hit (or None, not counted); with ``framed``, only an entry
        whose :attr:`_Entry.framing` is known."""
        entry = self.stats.entries.get(key)
        if entry is not None and (entry.framing is not None or not framed):
            self.stats.entries.move_to_end(key)
            self.stats.hits += 1
            return entry
        return None

    def _recording(self, key: Key, send: Send) -> Send:
        """``send``, also recording a 200 answer and storing it once its last body part has gone."""
        start: Message | None = None
        parts: list[bytes] = []
        size = 0
        keep = True

        async def record(message: Message) -> None:
            nonlocal start, size, keep
            await send(message)
            if not keep:
                return
            if message["type"] == "http.response.start":
                start = message
                keep = message["status"] == 200
            elif message["type"] == "http.response.body" and start is not None:
                chunk = message.get("body", b"")
                size += len(chunk)
                if size > self.max_entry_bytes:
                    keep = False
                    return
                parts.append(chunk)
                if not message.get("more_body", False):
                    self._store(key, _Entry(200, list(start.get("headers", [])), b"".join(parts)))

        return record

    def _store(self, key: Key, entry: _Entry) -> None:
        stats = self.stats
        if key in stats.entries:
            stats.bytes -= stats.entries.pop(key).size
        stats.entries[key] = entry
        stats.bytes += entry.size
        stats.stored += 1
        while stats.bytes > self.max_bytes and stats.entries:
            _, old = stats.entries.popitem(last=False)
            stats.bytes -= old.size
            stats.evicted += 1


def _key(scope: Scope, body: bytes) -> Key:
    headers = dict.fromkeys(KEY_HEADERS, b"")
    for name, value in scope["headers"]:
        if name in headers:
            headers[name] = headers[name] + b"\x00" + value if headers[name] else value
    return (scope["method"].encode(), scope.get("scheme", "http").encode(), scope.get("raw_path") or
            scope["path"].encode(), scope.get("query_string", b""), body, *headers.values())


def _framing(headers: list[tuple[bytes, bytes]], body: bytes) -> tuple[bytes, bytes] | None:
    """What uvicorn writes before and after ``body`` for this answer to a GET on a kept-alive connection: the
    header lines (names in lower case) and, for a body without a declared length, one chunk and the last one
    (uvicorn's ``RequestResponseCycle.send``). None if the headers declare a transfer coding or the connection's
    fate themselves: uvicorn alone writes those."""
    names = [name.lower() for name, _ in headers]
    if b"transfer-encoding" in names or b"connection" in names:
        return None
    lines = b"".join(b"%s: %s\r\n" % (name, value) for name, (_, value) in zip(names, headers, strict=True))
    if b"content-length" in names:
        return lines + b"\r\n", b""
    if not body:
        return lines + b"transfer-encoding: chunked\r\n\r\n", b"0\r\n\r\n"
    return lines + b"transfer-encoding: chunked\r\n\r\n%x\r\n" % len(body), b"\r\n0\r\n\r\n"


def _content_length(scope: Scope) -> int:
    """The declared body size, or -1 when there is none (a chunked body) or it is not a number."""
    for name, value in scope["headers"]:
        if name == b"content-length":
            return int(value) if value.isdigit() else -1
    return -1


async def _read_body(receive: Receive, limit: int) -> tuple[list[Message], bool]:
    """The request's messages read so far, and whether they are the whole body within ``limit`` bytes."""
    read: list[Message] = []
    size = 0
    while True:
        message = await receive()
        read.append(message)
        if message["type"] != "http.request":
            return read, False
        size += len(message.get("body", b""))
        if size > limit:
            return read, False
        if not message.get("more_body", False):
            return read, True


def _replay(read: list[Message], receive: Receive) -> Receive:
    """A ``receive`` that gives the already read messages again, then reads on."""
    pending = list(read)

    async def replay() -> Message:
        if pending:
            return pending.pop(0)
        return await receive()

    return replay
