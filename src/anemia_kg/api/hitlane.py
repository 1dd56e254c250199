"""Cache hits answered by the HTTP protocol itself, before uvicorn starts an ASGI request cycle.

A cached answer (:mod:`.cache`) is already fixed bytes; what a hit still cost under uvicorn was the request
cycle around it: a task per request, the ``scope``/``receive``/``send`` calls, header checks and two socket
writes. Measured with wrk on 2 cores, a hit took 44-48 µs of server CPU against 11 µs for a server that
answers fixed bytes; through this lane it takes 15 µs, and the server answered 57,000 requests/s on the
1M-triple ASK against 21,000 (docs/benchmarks.md).

:class:`HitLaneProtocol` is uvicorn's own httptools protocol with one step added: when the head of a GET
request is complete, it builds the part of the ASGI scope the cache keys on, exactly as uvicorn would, and
asks the application's :class:`.cache.ResponseCache` for it. On a hit it writes the recorded answer
(uvicorn's default headers, ``date`` and ``server``, then the recorded headers and body, framed as uvicorn
frames them) in one write, and the request is done: no task, no ASGI call. When the request had arrived
alone in one read, its exact bytes are remembered with the cache key (:class:`Known`): the next time the
same bytes arrive alone they are answered without being parsed again. The same bytes are the same request,
so they get the same answer; the entry is still looked up (it may have been evicted) and counted as a hit.

Anything else goes through uvicorn unchanged: a miss, and every request this lane does not answer the way
uvicorn would, which it declines:

* another method than GET (HEAD included), HTTP/1.0, a request that asks to close the connection, to
  upgrade, or to send ``100 Continue``, a request with a body;
* a request pipelined behind one still being answered (answers must go out in order), or while the
  client is not reading (uvicorn waits for it then);
* ``X-Forwarded-Proto``, which uvicorn's proxy-headers middleware may turn into another scheme (part of the
  key), and any server with an access log, a concurrency limit or no cache.

Answers are byte-identical to what the cache middleware sends through uvicorn (tests/test_hitlane.py
compares them on real servers), and they count as hits in the cache's statistics.

Only ``anemia-kg serve`` uses this protocol (``uvicorn.run(..., http=protocol_for(app))``); under another
uvicorn command line the cache middleware answers hits as before. It extends methods of uvicorn's httptools
protocol that are not a public API: :func:`supported` checks them, and :func:`protocol_for` falls back to
uvicorn's own protocol if they are missing.
"""

from __future__ import annotations

import urllib.parse
from dataclasses import dataclass, field
from typing import Any

import httptools
from uvicorn.protocols.http.httptools_impl import STATUS_LINE, HttpToolsProtocol

from .cache import Key, ResponseCache

# The methods of uvicorn's protocol this lane extends or calls; if one is gone, uvicorn changed: no lane.
_PROTOCOL_METHODS = ("data_received", "on_message_begin", "on_headers_complete", "on_body", "on_message_complete",
                     "_unset_keepalive_if_required", "timeout_keep_alive_handler")
# ... and the state it reads, checked on the first connection.
_INSTANCE_ATTRIBUTES = ("parser", "headers", "cycle", "pipeline", "flow", "transport", "scheme", "root_path",
                        "server_state", "timeout_keep_alive", "limit_concurrency", "access_log",
                        "expect_100_continue", "loop")
KNOWN_BYTES = 1024 * 1024  # request bytes remembered at most (forgotten all at once when full)


def supported() -> bool:
    """Whether the installed uvicorn still has the protocol methods this lane extends."""
    return all(callable(getattr(HttpToolsProtocol, name, None)) for name in _PROTOCOL_METHODS) \
        and 200 in STATUS_LINE


@dataclass
class Known:
    """Exact bytes of requests the lane answered, each as it arrived alone in one read, with their cache key.

    Bounded by ``max_bytes`` of request bytes; when full it is emptied and fills again from the next hits.
    """

    max_bytes: int = KNOWN_BYTES
    keys: dict[bytes, Key] = field(default_factory=dict)
    size: int = 0

    def remember(self, data: bytes, key: Key) -> None:
        if data in self.keys or len(data) > self.max_bytes:
            return
        if self.size + len(data) > self.max_bytes:
            self.keys.clear()
            self.size = 0
        self.keys[data] = key
        self.size += len(data)


class HitLaneProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol, answering response-cache hits of plain GET requests itself.

    The cache is found through :attr:`source`, set by :func:`protocol_for` to the application whose
    ``cache`` attribute holds it (it is built when the application starts, after this class is chosen), and
    :attr:`known` is shared by the server's connections.
    """

    source: Any = None
    known: Known = Known()
    answered = False  # whether the request being parsed was answered from the cache
    between = True  # whether the parser is between requests (holds no part of one)
    begun = 0  # requests begun in the current data_received call
    answered_key: Key | None = None  # the cache key of the last one the lane answered in it

    def connection_made(self, transport: Any) -> None:  # type: ignore[override]
        super().connection_made(transport)
        if any(not hasattr(self, name) for name in _INSTANCE_ATTRIBUTES):  # uvicorn changed: no lane
            self.source = None

    def data_received(self, data: bytes) -> None:
        if not self.between:  # the rest of a request begun earlier
            super().data_received(data)
            return
        key = self.known.keys.get(data)
        if key is not None and self._free() and self._send(key):
            return
        self.begun, self.answered_key = 0, None
        super().data_received(data)
        if self.begun == 1 and self.between and self.answered_key is not None:  # ``data`` was that request
            self.known.remember(data, self.answered_key)

    def on_message_begin(self) -> None:
        self.answered, self.between = False, False
        self.begun += 1
        super().on_message_begin()

    def on_headers_complete(self) -> None:
        key = self._cached_get()
        if key is not None and self._send(key):
            self.answered, self.answered_key = True, key
            return
        super().on_headers_complete()

    def on_body(self, body: bytes) -> None:
        if not self.answered:
            super().on_body(body)

    def on_message_complete(self) -> None:
        self.between = True
        if not self.answered:
            super().on_message_complete()

    def _free(self) -> bool:
        """Whether an answer written now goes out in order and as uvicorn would write it."""
        cache: ResponseCache | None = getattr(self.source, "cache", None)
        return (cache is not None and cache.max_bytes > 0 and not self.access_log and self.limit_concurrency is None
                and not self.pipeline and (self.cycle is None or self.cycle.response_complete)
                and not self.flow.write_paused)

    def _cached_get(self) -> Key | None:
        """The cache key of the request whose head was just parsed, if it is one the lane may answer."""
        parser = self.parser
        if (parser.get_method() != b"GET" or parser.get_http_version() != "1.1" or not parser.should_keep_alive()
                or parser.should_upgrade() or self.expect_100_continue or not self._free()):
            return None
        for name, value in self.headers:  # a body (other than an empty one), or a proxy's scheme: decline
            if name in (b"transfer-encoding", b"x-forwarded-proto") or (name == b"content-length" and value != b"0"):
                return None
        try:
            parsed = httptools.parse_url(self.url)
            path = parsed.path.decode("ascii")
        except (httptools.HttpParserInvalidURLError, UnicodeDecodeError):
            return None  # uvicorn answers it (400)
        if "%" in path:
            path = urllib.parse.unquote(path)
        # The scope's keys the cache reads, as uvicorn's on_headers_complete sets them
        scope = {"type": "http", "method": "GET", "scheme": self.scheme, "path": self.root_path + path,
                 "raw_path": self.root_path.encode("ascii") + parsed.path, "query_string": parsed.query or b"",
                 "headers": self.headers}
        return self.source.cache.key_for_get(scope)

    def _send(self, key: Key) -> bool:
        """Write the answer cached under ``key``, if there is one, and finish the request as uvicorn would."""
        entry = self.source.cache.hit(key, framed=True)
        if entry is None or entry.framing is None:
            return False
        head, tail = entry.framing
        self.transport.write(b"".join([STATUS_LINE[200], *(b"%s: %s\r\n" % pair
                                                           for pair in self.server_state.default_headers),
                                       head, entry.body, tail]))
        # What uvicorn does when an answer is complete (on_response_complete): count it, and close the
        # connection if the client sends nothing more within the keep-alive timeout.
        self.server_state.total_requests += 1
        self._unset_keepalive_if_required()
        self.timeout_keep_alive_task = self.loop.call_later(self.timeout_keep_alive, self.timeout_keep_alive_handler)
        return True


def protocol_for(app: Any) -> type[HttpToolsProtocol]:
    """The protocol class for ``uvicorn.run(app, http=...)``: the hit lane bound to ``app`` (with its own
    :class:`Known`), or uvicorn's own protocol when the installed uvicorn lacks what the lane extends."""
    if not supported():
        return HttpToolsProtocol
    return type("HitLaneProtocol", (HitLaneProtocol,), {"source": app, "known": Known()})
