"""Floods against the real data path, measured: HAProxy's memory and an authenticated client's latency beside each.

    python -m gateway.floods [--seconds 5]

Starts a real Chroma server and the gateway on loopback, then runs each flood for `--seconds` while one
authenticated client queries the heartbeat every 20 ms. Prints, per flood, HAProxy's resident memory before, at
its peak and after, and the side client's p50/p99 latency and failures. Loopback only; every loop is bounded.
The hostile test suite (gateway/tests/test_hostile.py) reuses these helpers with assertions.
(Development tool: not shipped in the gateway image.)
"""

from __future__ import annotations

import argparse
import contextlib
import http.client
import socket
import statistics
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

from gateway.local import LOOPBACK, Server, chroma_server, gateway_server

TOKEN = "flood-token-0123456789"  # noqa: S105 - a throwaway token for a loopback-only measurement
AUTH = b"X-Chroma-Token: " + TOKEN.encode() + b"\r\n"


def proxy_pid(gateway: Server) -> int:
    """The HAProxy process the gateway supervises."""
    pid = gateway.process.pid
    children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    haproxy = [int(child) for child in children if "haproxy" in Path(f"/proc/{child}/cmdline").read_text()]
    if len(haproxy) != 1:
        raise RuntimeError(f"expected one HAProxy child of {pid}, found {children}")
    return haproxy[0]


def resident_bytes(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise RuntimeError(f"no VmRSS for process {pid}")


def request(target: bytes = b"/api/v2/heartbeat", method: bytes = b"GET", headers: bytes = AUTH,
            body: bytes = b"") -> bytes:
    return method + b" " + target + b" HTTP/1.1\r\nHost: gateway\r\n" + headers + b"\r\n" + body


def heartbeat(port: int, token: str = TOKEN) -> int:
    conn = http.client.HTTPConnection(LOOPBACK, port, timeout=10)
    try:
        conn.request("GET", "/api/v2/heartbeat", headers={"X-Chroma-Token": token})
        response = conn.getresponse()
        response.read()
        return int(response.status)
    finally:
        conn.close()


@contextlib.contextmanager
def beside(port: int, token: str = TOKEN) -> Iterator[list[float]]:
    """An authenticated client querying every 20 ms while the block runs: its latencies in s (-1: a failure)."""
    stop, latencies = threading.Event(), list[float]()

    def run() -> None:
        while not stop.is_set():
            began = time.perf_counter()
            try:
                ok = heartbeat(port, token) == 200
            except OSError:
                ok = False
            latencies.append(time.perf_counter() - began if ok else -1.0)
            time.sleep(0.02)

    thread = threading.Thread(target=run)
    thread.start()
    try:
        yield latencies
    finally:
        stop.set()
        thread.join()


def flood(port: int, connections: int, make: Callable[[socket.socket], object], seconds: float,
          on_tick: Callable[[], None] = lambda: None) -> None:
    """`connections` non-blocking sockets; `make(sock)` on each, every 10 ms, for `seconds`; all closed after."""
    sockets: list[socket.socket] = []
    deadline = time.monotonic() + seconds
    try:
        for _ in range(connections):
            sock = socket.create_connection((LOOPBACK, port), timeout=2)
            sock.setblocking(False)
            sockets.append(sock)
        while time.monotonic() < deadline:
            for sock in sockets:
                with contextlib.suppress(BlockingIOError, OSError):
                    make(sock)
            on_tick()
            time.sleep(0.01)
    finally:
        for sock in sockets:
            sock.close()


def floods() -> dict[str, tuple[int, Callable[[socket.socket], object]]]:
    """name -> (connections, what each connection sends every 10 ms)."""
    pipelined = request() * 50
    big_body = request(method=b"POST", target=b"/api/v2/tenants", headers=b"Content-Length: 41943040\r\n")
    return {
        "pipelined requests, answers never read (16 conns)": (16, lambda sock: sock.send(pipelined)),
        "no token, 40 MiB Content-Length, body streamed (8 conns)":
            (8, lambda sock: sock.send(big_body + b"x" * 65536)),
        "unterminated header value (8 conns)":
            (8, lambda sock: sock.send(b"GET / HTTP/1.1\r\nX-Huge: " + b"h" * 65536)),
        "slow headers, one byte per 10 ms (200 conns)": (200, lambda sock: sock.send(b"G")),
        "idle connections (900 conns)": (900, lambda sock: None),
    }


def measure(gateway: Server, seconds: float) -> list[tuple[str, int, int, int, float, float, int]]:
    pid = proxy_pid(gateway)
    rows = []
    for name, (connections, make) in {"no flood (baseline)": (0, lambda sock: None), **floods()}.items():
        before = peak = resident_bytes(pid)

        def sample() -> None:
            nonlocal peak
            peak = max(peak, resident_bytes(pid))

        with beside(gateway.port) as latencies:
            flood(gateway.port, connections, make, seconds, on_tick=sample)
        time.sleep(0.5)
        ok = sorted(latency for latency in latencies if latency >= 0)
        failures = len(latencies) - len(ok)
        p50 = statistics.median(ok) * 1000 if ok else float("nan")
        p99 = ok[min(len(ok) - 1, int(len(ok) * 0.99))] * 1000 if ok else float("nan")
        rows.append((name, before, peak, resident_bytes(pid), p50, p99, failures))
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=5.0, help="length of each flood")
    args = parser.parse_args(argv)
    mib = 1 << 20
    with tempfile.TemporaryDirectory(prefix="chroma-floods-") as tmp, \
            chroma_server(Path(tmp) / "data") as chroma, \
            gateway_server(chroma.url, Path(tmp), {"GATEWAY_TOKENS": TOKEN}) as gateway:
        print(f"{'flood':<58} {'rss before':>10} {'peak':>8} {'after':>8} {'side p50':>9} {'side p99':>9} "
              f"{'failed':>6}")
        for name, before, peak, after, p50, p99, failures in measure(gateway, args.seconds):
            print(f"{name:<58} {before / mib:>8.1f}Mi {peak / mib:>6.1f}Mi {after / mib:>6.1f}Mi "
                  f"{p50:>7.2f}ms {p99:>7.2f}ms {failures:>6}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
