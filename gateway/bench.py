"""Benchmark: Chroma query latency and throughput directly and through the gateway, side by side in one run.

    python -m gateway.bench [--vectors 50000] [--dim 384] [--k 10] [--clients 1 8]

Starts a real Chroma server and the gateway on loopback, loads seeded random vectors, then alternates direct and
gateway measurements in short rounds so machine noise hits both alike. Prints figures and ratios; asserts nothing.
"""

from __future__ import annotations

import argparse
import http.client
import json
import platform
import random
import statistics
import tempfile
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from gateway.local import chroma_server, gateway_server

TOKEN = "bench-token-0123456789"  # noqa: S105 - a throwaway token for a loopback-only benchmark
COLLECTIONS_PATH = "/api/v2/tenants/default_tenant/databases/default_database/collections"


@dataclass
class Target:
    name: str
    port: int
    headers: dict[str, str] = field(default_factory=dict)


@dataclass
class Sample:
    latencies_ms: list[float] = field(default_factory=list)
    elapsed_s: float = 0.0

    def add(self, other: Sample) -> None:
        self.latencies_ms.extend(other.latencies_ms)
        self.elapsed_s += other.elapsed_s

    def percentile(self, p: float) -> float:
        ordered = sorted(self.latencies_ms)
        return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]

    @property
    def throughput(self) -> float:
        return len(self.latencies_ms) / self.elapsed_s if self.elapsed_s else 0.0


def _request(conn: http.client.HTTPConnection, method: str, path: str, body: bytes | None,
             headers: dict[str, str]) -> bytes:
    conn.request(method, path, body=body, headers={"Content-Type": "application/json", **headers})
    response = conn.getresponse()
    payload = response.read()
    if response.status not in (200, 201):
        raise RuntimeError(f"{method} {path} -> {response.status}: {payload[:200]!r}")
    return payload


def load(port: int, vectors: int, dim: int, seed: int, batch: int = 2000) -> str:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=300)
    created = json.loads(_request(conn, "POST", COLLECTIONS_PATH, json.dumps(
        {"name": "bench", "configuration": {"hnsw": {"space": "cosine"}}, "get_or_create": True}).encode(),
        {}))
    collection_id = str(created["id"])
    rng = random.Random(seed)  # noqa: S311 - reproducible data, not security
    for start in range(0, vectors, batch):
        count = min(batch, vectors - start)
        body = {"ids": [f"v{start + i}" for i in range(count)],
                "embeddings": [[rng.random() for _ in range(dim)] for _ in range(count)]}
        _request(conn, "POST", f"{COLLECTIONS_PATH}/{collection_id}/add", json.dumps(body).encode(), {})
    conn.close()
    return collection_id


def run_clients(target: Target, path: str, bodies: Sequence[bytes], clients: int, seconds: float) -> Sample:
    """`clients` threads, each with its own keep-alive connection, querying for `seconds`."""
    results: list[list[float]] = [[] for _ in range(clients)]
    start_barrier = threading.Barrier(clients + 1)
    stop_at = [0.0]

    def worker(index: int) -> None:
        conn = http.client.HTTPConnection("127.0.0.1", target.port, timeout=60)
        _request(conn, "POST", path, bodies[0], target.headers)  # warm the connection
        start_barrier.wait()
        i = index
        while time.perf_counter() < stop_at[0]:
            begin = time.perf_counter()
            _request(conn, "POST", path, bodies[i % len(bodies)], target.headers)
            results[index].append((time.perf_counter() - begin) * 1000)
            i += clients
        conn.close()

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(clients)]
    for thread in threads:
        thread.start()
    stop_at[0] = time.perf_counter() + 3600
    start_barrier.wait()
    began = time.perf_counter()
    stop_at[0] = began + seconds
    for thread in threads:
        thread.join()
    return Sample([x for r in results for x in r], time.perf_counter() - began)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--vectors", type=int, default=50_000)
    parser.add_argument("--dim", type=int, default=384)
    parser.add_argument("--k", type=int, default=10)
    parser.add_argument("--clients", type=int, nargs="+", default=[1, 8])
    parser.add_argument("--rounds", type=int, default=6, help="alternating direct/gateway rounds per level")
    parser.add_argument("--seconds", type=float, default=5.0, help="length of one round")
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args(argv)

    with tempfile.TemporaryDirectory(prefix="chroma-bench-") as tmp, \
            chroma_server(Path(tmp) / "data") as chroma, \
            gateway_server(chroma.url, Path(tmp), {"GATEWAY_TOKENS": TOKEN}) as gateway:
        print(f"loading {args.vectors} x {args.dim}-d vectors (seed {args.seed}) ...", flush=True)
        began = time.perf_counter()
        collection_id = load(chroma.port, args.vectors, args.dim, args.seed)
        print(f"loaded in {time.perf_counter() - began:.1f} s", flush=True)
        rng = random.Random(args.seed + 1)  # noqa: S311 - reproducible data, not security
        bodies = [json.dumps({"query_embeddings": [[rng.random() for _ in range(args.dim)]],
                              "n_results": args.k, "include": ["distances"]}).encode() for _ in range(256)]
        path = f"{COLLECTIONS_PATH}/{collection_id}/query"
        targets = [Target("direct", chroma.port), Target("gateway", gateway.port, {"X-Chroma-Token": TOKEN})]
        for target in targets:  # load the index and warm both paths before measuring
            run_clients(target, path, bodies, 1, 1.0)

        print(f"\nquery, k={args.k}, {args.vectors} x {args.dim}-d cosine; {args.rounds} alternating rounds of "
              f"{args.seconds:g} s per target; machine: {platform.machine()}, {_cpus()} CPUs, "
              f"Python {platform.python_version()}\n")
        print(f"{'clients':>7} {'target':>8} {'queries':>8} {'mean':>7} {'stdev':>7} {'p50':>7} {'p95':>7} "
              f"{'p99':>7} {'qps':>8}")
        for clients in args.clients:
            samples = {t.name: Sample() for t in targets}
            for round_index in range(args.rounds):
                order = targets if round_index % 2 == 0 else list(reversed(targets))
                for target in order:
                    samples[target.name].add(run_clients(target, path, bodies, clients, args.seconds))
            for target in targets:
                s = samples[target.name]
                print(f"{clients:>7} {target.name:>8} {len(s.latencies_ms):>8} "
                      f"{statistics.fmean(s.latencies_ms):>7.2f} {statistics.stdev(s.latencies_ms):>7.2f} "
                      f"{s.percentile(50):>7.2f} {s.percentile(95):>7.2f} {s.percentile(99):>7.2f} "
                      f"{s.throughput:>8.1f}")
            direct, through = samples["direct"], samples["gateway"]
            print(f"{clients:>7} {'ratio':>8}   added p50 {through.percentile(50) - direct.percentile(50):+.2f} ms, "
                  f"added p95 {through.percentile(95) - direct.percentile(95):+.2f} ms, "
                  f"throughput {through.throughput / direct.throughput:.1%} of direct")
    return 0


def _cpus() -> int:
    import os

    return os.cpu_count() or 0


if __name__ == "__main__":
    raise SystemExit(main())
