"""Load generators: ``wrk`` (Debian package) when installed, else a bounded asyncio/httpx client.

Both send one request (a GET URL with fixed headers) over ``connections`` keep-alive connections for a fixed
``duration`` and report a :class:`Load`: requests, throughput, p50/p99 latency and errors (non-2xx answers,
socket errors and timeouts). Both stop by themselves: wrk after ``-d``, the httpx client after ``duration``
seconds or ``max_requests`` requests, whichever comes first.
"""

from __future__ import annotations

import asyncio
import math
import os
import re
import shutil
import socket
import statistics
import subprocess
import time
from dataclasses import asdict, dataclass
from typing import Any
from urllib.parse import urlsplit

import httpx

UNITS = {"us": 1e-3, "ms": 1.0, "s": 1000.0, "m": 60_000.0}


@dataclass(frozen=True)
class Load:
    """What one load run measured; latencies in milliseconds."""

    client: str
    connections: int
    duration: float
    requests: int
    throughput: float
    p50_ms: float
    p99_ms: float
    errors: int

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def have_wrk() -> bool:
    return shutil.which("wrk") is not None


def run_load(url: str, headers: dict[str, str], *, connections: int, duration: float, timeout: float,
             client: str = "auto", max_requests: int = 1_000_000) -> Load:
    """Drive ``url`` with ``client`` ("wrk", "httpx" or "auto": wrk if installed)."""
    if client == "auto":
        client = "wrk" if have_wrk() else "httpx"
    if client == "wrk":
        return run_wrk(url, headers, connections=connections, duration=duration, timeout=timeout)
    return asyncio.run(run_httpx(url, headers, connections=connections, duration=duration, timeout=timeout,
                                 max_requests=max_requests))


# --- wrk ----------------------------------------------------------------------------------------------


def run_wrk(url: str, headers: dict[str, str], *, connections: int, duration: float, timeout: float) -> Load:
    threads = min(2, connections)
    cmd = ["wrk", f"-t{threads}", f"-c{connections}", f"-d{max(1, round(duration))}s", "--latency",
           f"--timeout={max(1, round(timeout))}s"]
    for name, value in headers.items():
        cmd += ["-H", f"{name}: {value}"]
    out = subprocess.run(cmd + [url], check=True, capture_output=True, text=True,
                         timeout=duration + timeout + 30).stdout
    return parse_wrk(out, connections=connections, duration=duration)


def _ms(text: str) -> float:
    match = re.fullmatch(r"([\d.]+)(us|ms|s|m)", text.strip())
    if not match:
        raise ValueError(f"not a wrk latency: {text!r}")
    return float(match.group(1)) * UNITS[match.group(2)]


def parse_wrk(out: str, *, connections: int, duration: float) -> Load:
    """The figures of wrk's ``--latency`` report (raises ValueError if the report lacks them)."""
    requests = re.search(r"^\s*(\d+) requests in ([\d.]+)(\w+)", out, re.M)
    rate = re.search(r"^Requests/sec:\s+([\d.]+)", out, re.M)
    if not (requests and rate):
        raise ValueError(f"unexpected wrk output:\n{out}")
    p50 = re.search(r"^\s*50%\s+(\S+)", out, re.M)
    p99 = re.search(r"^\s*99%\s+(\S+)", out, re.M)
    non2xx = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", out)
    sockets = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    errors = int(non2xx.group(1)) if non2xx else 0
    if sockets:
        errors += sum(int(g) for g in sockets.groups())
    count = int(requests.group(1))
    return Load("wrk", connections, duration, count, float(rate.group(1)),
                _ms(p50.group(1)) if p50 and count else float("nan"),
                _ms(p99.group(1)) if p99 and count else float("nan"), errors)


# --- asyncio + httpx -----------------------------------------------------------------------------------


async def run_httpx(url: str, headers: dict[str, str], *, connections: int, duration: float, timeout: float,
                    max_requests: int) -> Load:
    latencies: list[float] = []
    errors = 0
    deadline = time.perf_counter() + duration
    limits = httpx.Limits(max_connections=connections, max_keepalive_connections=connections)
    async with httpx.AsyncClient(headers=headers, timeout=timeout, limits=limits) as client:

        async def worker() -> None:
            nonlocal errors
            while time.perf_counter() < deadline and len(latencies) + errors < max_requests:
                started = time.perf_counter()
                try:
                    response = await client.get(url)
                    await response.aread()
                    ok = response.status_code < 400
                except httpx.HTTPError:
                    ok = False
                if ok:
                    latencies.append((time.perf_counter() - started) * 1000)
                else:
                    errors += 1

        started = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(connections)))
        elapsed = time.perf_counter() - started
    return Load("httpx", connections, round(elapsed, 3), len(latencies) + errors,
                (len(latencies) + errors) / elapsed if elapsed else 0.0,
                percentile(latencies, 50), percentile(latencies, 99), errors)


def percentile(values: list[float], p: float) -> float:
    """The ``p``-th percentile (nearest rank); NaN for no values."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    rank = max(0, min(len(ordered) - 1, math.ceil(p / 100 * len(ordered)) - 1))
    return ordered[rank]


def busy_cpus(window: float) -> float:
    """How many CPUs' worth of time the whole machine spent busy (not idle, not waiting for I/O) over the next
    ``window`` seconds, from ``/proc/stat``; NaN where there is none."""
    def totals() -> tuple[int, int]:
        with open("/proc/stat", encoding="ascii") as stat:
            fields = [int(x) for x in stat.readline().split()[1:]]
        return sum(fields[:8]), fields[3] + fields[4]  # user .. steal; idle + iowait

    try:
        total, idle = totals()
        time.sleep(window)
        total2, idle2 = totals()
    except (OSError, ValueError, IndexError):
        return float("nan")
    return ((total2 - total) - (idle2 - idle)) / os.sysconf("SC_CLK_TCK") / window


def wait_for_quiet(*, limit: float = 0.1, window: float = 0.2, max_wait: float = 10.0) -> tuple[float, float]:
    """Wait until the machine was busy less than ``limit`` of one CPU over a ``window``, for at most
    ``max_wait`` seconds; (seconds waited, busy CPUs over the last window).

    A one-at-a-time round trip here depends on where the client and the server run: on these 2-CPU virtual
    machines, the HTTP floor answered in 0.011 ms with both on the same CPU and in 0.085 ms on different ones
    (pinned with taskset; waking a halted virtual CPU is most of it). The servers are the runner's children
    and, idle, stay on its CPU; a process left busy (rdflib-endpoint finishes every query its client gave up
    on) moves them about, and made some rounds of a run fast and others not (the cache's ASK: 0.026, 0.026,
    0.092 ms). Waiting for quiet before each timing keeps that stray load out of it."""
    started = time.perf_counter()
    if max_wait <= 0:
        return 0.0, float("nan")
    while True:
        busy = busy_cpus(window)
        waited = time.perf_counter() - started
        if not busy >= limit or waited >= max_wait:  # NaN: no /proc/stat, nothing to wait for
            return round(waited, 3), round(busy, 3)


class Answers:
    """One keep-alive HTTP/1.1 connection that sends the same GET again and again and reads each answer whole.

    It does the least a client can: one write per request, then the status line, and of the header lines only
    the three that say where the answer ends (``Content-Length``, ``Transfer-Encoding: chunked``,
    ``Connection: close``) are looked at; the body is read, chunk by chunk if it is chunked, and dropped. The
    standard library's ``http.client`` parses every header line into a message object, which took 48 µs of
    this client's time per answer of this server's (its 11 header lines) against 30 µs for the HTTP floor's
    two: timed one request at a time, that difference was counted as the server's.
    """

    def __init__(self, url: str, headers: dict[str, str], timeout: float) -> None:
        parts = urlsplit(url)
        self.address = (parts.hostname or "127.0.0.1", parts.port or 80)
        self.timeout = timeout
        target = parts.path + ("?" + parts.query if parts.query else "")
        lines = [f"GET {target} HTTP/1.1", f"Host: {parts.netloc}", "Accept-Encoding: identity",
                 *(f"{name}: {value}" for name, value in headers.items())]
        self.request = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")
        self.sock: socket.socket | None = None
        self.reader: Any = None

    def close(self) -> None:
        if self.sock is not None:
            self.reader.close()
            self.sock.close()
            self.sock = self.reader = None

    def get(self) -> int:
        """Send the request, read the whole answer; its status."""
        if self.sock is None:
            self.sock = socket.create_connection(self.address, timeout=self.timeout)
            self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)  # as http.client does
            self.reader = self.sock.makefile("rb")
        self.sock.sendall(self.request)
        read = self.reader.readline
        status_line = read(65537)
        if not status_line.startswith(b"HTTP/1.") or len(status_line) < 12:
            raise RuntimeError(f"not an HTTP answer: {status_line[:80]!r}")
        status = int(status_line[9:12])
        length, chunked, close = -1, False, status_line.startswith(b"HTTP/1.0")
        while True:
            line = read(65537)
            if line in (b"\r\n", b"\n"):
                break
            if not line:
                raise RuntimeError("the connection closed in the middle of an answer's head")
            if line[:1] in b"cCtT":
                name, _, value = line.partition(b":")
                name = name.strip().lower()
                if name == b"content-length":
                    length = int(value)
                elif name == b"transfer-encoding":
                    chunked = b"chunked" in value.lower()
                elif name == b"connection":
                    close = b"close" in value.lower()
        if chunked:
            while (size := int(read(65537).split(b";")[0], 16)) > 0:
                self._exactly(size + 2)
            while read(65537) not in (b"\r\n", b"\n", b""):  # trailer fields, if any
                pass
        elif length >= 0:
            self._exactly(length)
        else:  # the body ends where the connection does
            self.reader.read()
            close = True
        if close:
            self.close()
        return status

    def _exactly(self, size: int) -> None:
        if len(self.reader.read(size)) != size:
            raise RuntimeError("the connection closed in the middle of an answer's body")


def sequential_median(url: str, headers: dict[str, str], *, repeat: int, budget: float,
                      timeout: float, warmup: int = 0) -> tuple[float, int]:
    """Median latency (ms) of ``repeat`` requests one after another on one keep-alive connection.

    The client is :class:`Answers`: its own cost per request is a few microseconds and the same for every
    server, where httpx's is about a millisecond, which would hide the difference between fast servers.

    The first ``warmup`` requests (at most a quarter of the ``budget``) are sent but not counted. A server
    that has sat idle while others were loaded answers its first requests slowly: at 1,000,000 triples the
    one-join query took 40 ms, then 3 ms, and settled at 1.5-1.7 ms only after about thirty requests (measured
    after another process had walked 200 MB). The in-process figure it is compared with is taken hot, in a loop.
    """
    client = Answers(url, headers, timeout)
    times: list[float] = []
    first = None  # the index of the first counted request, once warm
    started = time.perf_counter()
    deadline, warm_until = started + budget, started + budget / 4
    try:
        while (first is None or len(times) - first < repeat) and time.perf_counter() < deadline:
            started = time.perf_counter()
            status = client.get()
            if status != 200:
                raise RuntimeError(f"{url}: HTTP {status} while timing it")
            times.append((time.perf_counter() - started) * 1000)
            if first is None and (len(times) >= warmup or started >= warm_until):
                first = len(times) if warmup else 0
    finally:
        client.close()
    counted = times[first:] if first is not None and first < len(times) else times  # too slow to warm: all
    return statistics.median(counted), len(counted)
