"""Benchmark: Chroma query latency and throughput directly and through the gateway, side by side in one run.

    python -m gateway.bench [--vectors 50000] [--dim 384] [--k 10] [--clients 1 8]

Starts a real Chroma server and the gateway on loopback, loads seeded random vectors, then alternates direct and
gateway measurements in short rounds so machine noise hits both alike. Prints figures and ratios; asserts nothing.
(Development tool: not shipped in the gateway image.)
"""

from __future__ import annotations

import argparse
import os
import platform
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

from gateway.local import chroma_server, gateway_server
from ops.loadgen import COLLECTIONS_PATH, Sample, Target, create_collection, insert, query_bodies, run_clients

TOKEN = "bench-token-0123456789"  # noqa: S105 - a throwaway token for a loopback-only benchmark


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
        direct = Target("direct", chroma.url)
        through = Target("gateway", gateway.url, {"X-Chroma-Token": TOKEN})
        print(f"loading {args.vectors} x {args.dim}-d vectors (seed {args.seed}) ...", flush=True)
        began = time.perf_counter()
        collection_id = create_collection(direct, "bench")
        insert(direct, collection_id, args.vectors, args.dim, batch=2000, seed=args.seed)
        print(f"loaded in {time.perf_counter() - began:.1f} s", flush=True)
        bodies = query_bodies(args.dim, args.k, args.seed + 1)
        path = f"{COLLECTIONS_PATH}/{collection_id}/query"
        targets = [direct, through]
        for target in targets:  # load the index and warm both paths before measuring
            run_clients(target, path, bodies, 1, 1.0)

        print(f"\nquery, k={args.k}, {args.vectors} x {args.dim}-d cosine; {args.rounds} alternating rounds of "
              f"{args.seconds:g} s per target; machine: {platform.machine()}, {os.cpu_count()} CPUs, "
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
                s = samples[target.name].summary()
                print(f"{clients:>7} {target.name:>8} {s['requests']:>8} {s['mean_ms']:>7.2f} {s['stdev_ms']:>7.2f} "
                      f"{s['p50_ms']:>7.2f} {s['p95_ms']:>7.2f} {s['p99_ms']:>7.2f} {s['per_second']:>8.1f}")
            d, g = samples["direct"], samples["gateway"]
            print(f"{clients:>7} {'ratio':>8}   added p50 {g.percentile(50) - d.percentile(50):+.2f} ms, "
                  f"added p95 {g.percentile(95) - d.percentile(95):+.2f} ms, "
                  f"throughput {g.throughput / d.throughput:.1%} of direct")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
