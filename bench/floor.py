"""The HTTP floor: a server that does no work, to show what one round trip costs before any server does any.

``python -m bench.floor --port N`` answers every request on loopback with the same 26-byte SPARQL JSON
boolean (``true``), over keep-alive HTTP/1.1, from an asyncio protocol on uvloop when it is installed (as
under uvicorn). The runner times it one request at a time with the same client and request URLs as the real
servers, in turns with them, so each run says how long an answer takes when the server's own part is almost
nothing. Issue 5 asks for each query within 1.5x of pyoxigraph in-process at 1,000,000 triples; where 1.5
times the in-process median is below this floor, no server reached over HTTP can meet that bound, and the
report shows the floor beside the medians so the reader can tell which queries that is.

It reads request heads only (the runner sends GET requests without bodies) and never parses them.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from typing import cast

BODY = b'{"head":{},"boolean":true}'
ANSWER = (b"HTTP/1.1 200 OK\r\nContent-Type: application/sparql-results+json\r\n"
          b"Content-Length: %d\r\n\r\n%s" % (len(BODY), BODY))
END_OF_HEAD = b"\r\n\r\n"


class Fixed(asyncio.Protocol):
    """One connection: one fixed answer per request head received."""

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.pending = b""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's transports do not subclass asyncio's

    def data_received(self, data: bytes) -> None:
        self.pending += data
        heads = self.pending.count(END_OF_HEAD)
        if heads and self.transport is not None:
            self.pending = self.pending.rsplit(END_OF_HEAD, 1)[1]
            self.transport.write(ANSWER * heads)


async def serve(host: str, port: int) -> None:
    server = await asyncio.get_running_loop().create_server(Fixed, host, port)
    async with server:
        await server.serve_forever()


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench.floor", description=__doc__.split("\n\n")[0])
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, required=True)
    args = ap.parse_args(argv)
    try:
        import uvloop
    except ImportError:  # plain asyncio: a slower floor, still a floor
        asyncio.run(serve(args.host, args.port))
    else:
        uvloop.run(serve(args.host, args.port))
    return 0


if __name__ == "__main__":
    sys.exit(main())
