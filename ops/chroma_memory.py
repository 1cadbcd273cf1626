"""Measure Chroma's resident memory against its index cache setting, with a real `chroma run` on loopback.

    python -m ops.chroma_memory [--collections 8] [--vectors 20000] [--dim 128] [--capacities default 1]

Writes `--collections` collections of seeded random vectors once, then for each cache capacity
(`segment_manager.hnsw_index_pool_cache_config.memory.capacity`, or Chroma's default) starts a fresh server on the
same directory, queries every collection twice, and prints the server's resident memory after each round. If the
capacity bounded memory, RSS with capacity 1 would stay near one collection's index above the start.
(Development tool: loopback only; the data lives in a temporary directory removed at the end.)
"""

from __future__ import annotations

import argparse
import os
import random
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import chromadb
from chromadb.config import Settings

from gateway.local import LOOPBACK, Server, free_port, wait_until

BATCH = 5_000


def rss_mib(pid: int) -> int:
    line = next(line for line in Path(f"/proc/{pid}/status").read_text().splitlines() if line.startswith("VmRSS:"))
    return int(line.split()[1]) // 1024


@contextmanager
def server(data: Path, capacity: str) -> Iterator[Server]:
    import subprocess
    import sys

    port = free_port()
    cache = ("" if capacity == "default" else
             f"segment_manager:\n  hnsw_index_pool_cache_config:\n    memory:\n      capacity: {int(capacity)}\n")
    config = data.parent / f"chroma-{port}.yaml"
    config.write_text(f'listen_address: "{LOOPBACK}"\nport: {port}\npersist_path: "{data}"\n{cache}')
    log = data.parent / f"chroma-{port}.log"
    env = {k: v for k, v in os.environ.items() if not k.startswith("CHROMA_")}
    chroma = Path(sys.executable).parent / "chroma"
    with log.open("wb") as out:
        process = subprocess.Popen([str(chroma), "run", str(config)], stdout=out, stderr=subprocess.STDOUT, env=env)
    running = Server(process, port, log)
    try:
        wait_until(f"{running.url}/api/v2/heartbeat", process, 60, "chroma", log)
        yield running
    finally:
        running.stop()


def client(port: int) -> chromadb.api.ClientAPI:
    return chromadb.HttpClient(host=LOOPBACK, port=port, settings=Settings(anonymized_telemetry=False))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--collections", type=int, default=8)
    parser.add_argument("--vectors", type=int, default=20_000)
    parser.add_argument("--dim", type=int, default=128)
    parser.add_argument("--capacities", nargs="+", default=["default", "1"])
    args = parser.parse_args(argv)
    rng = random.Random(7)  # noqa: S311 - seeded test vectors, not a secret
    vectors = [[rng.random() for _ in range(args.dim)] for _ in range(args.vectors)]
    with tempfile.TemporaryDirectory(prefix="chroma-memory-") as tmp:
        data = Path(tmp) / "data"
        data.mkdir()
        with server(data, "default") as writer:
            api = client(writer.port)
            for index in range(args.collections):
                collection = api.create_collection(f"memory-{index}")
                for start in range(0, args.vectors, BATCH):
                    collection.add(ids=[f"{index}-{i}" for i in range(start, start + BATCH)],
                                   embeddings=vectors[start:start + BATCH])
        print(f"{args.collections} collections x {args.vectors} x {args.dim}-d; resident memory of a fresh server "
              f"on them, after querying every collection (MiB)")
        print(f"{'capacity':>9} {'start':>6} {'round 1':>8} {'round 2':>8}")
        for capacity in args.capacities:
            with server(data, capacity) as reader:
                api = client(reader.port)
                figures = [rss_mib(reader.process.pid)]
                for _ in range(2):
                    for index in range(args.collections):
                        api.get_collection(f"memory-{index}").query(query_embeddings=[vectors[0]], n_results=3)
                    figures.append(rss_mib(reader.process.pid))
                print(f"{capacity:>9} {figures[0]:>6} {figures[1]:>8} {figures[2]:>8}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
