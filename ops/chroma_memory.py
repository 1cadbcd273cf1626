"""Measure Chroma's resident memory against its index cache setting, with a real `chroma run` on loopback.

    python -m ops.chroma_memory [--collections 8] [--vectors 20000] [--dim 128] [--capacities default 1]
    python -m ops.chroma_memory --collections 28 --vectors 20000 --dim 128 --task-mib 1500

Writes `--collections` collections of seeded random vectors once, then for each cache capacity
(`segment_manager.hnsw_index_pool_cache_config.memory.capacity`, or Chroma's default) starts a fresh server on the
same directory, queries every collection twice, and prints the server's resident memory after each round. If the
capacity bounded memory, RSS with capacity 1 would stay near one collection's index above the start.
(Development tool: loopback only; the data lives in a temporary directory removed at the end.)
"""

from __future__ import annotations

import argparse
import random
import tempfile
from pathlib import Path

import chromadb
from chromadb.config import Settings

from gateway import integrity
from gateway.floods import resident_bytes
from gateway.local import LOOPBACK, chroma_server
from ops import capacity as capacity_model

BATCH = 5_000


def cache_config(capacity: str) -> str:
    """Chroma's index cache capacity as config YAML ("default": Chroma's own)."""
    if capacity == "default":
        return ""
    return f"segment_manager:\n  hnsw_index_pool_cache_config:\n    memory:\n      capacity: {int(capacity)}\n"


def client(port: int) -> chromadb.api.ClientAPI:
    return chromadb.HttpClient(host=LOOPBACK, port=port, settings=Settings(anonymized_telemetry=False))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--collections", type=int, default=8)
    parser.add_argument("--vectors", type=int, default=20_000)
    parser.add_argument("--dim", type=int, default=128)
    parser.add_argument("--capacities", nargs="+", default=["default", "1"])
    parser.add_argument("--env", nargs="*", default=[], metavar="NAME=VALUE",
                        help="environment for the measured servers (for example glibc's MALLOC_* tunables)")
    parser.add_argument("--task-mib", type=int,
                        help="as the node sets it: the capacity is how many collections of --vectors x --dim a task "
                             "of this memory holds (ops.capacity), and the bound is the memory it leaves Chroma")
    args = parser.parse_args(argv)
    bound_mib = None
    if args.task_mib:
        held = capacity_model.collections_per_task(args.task_mib, args.vectors, args.dim)
        args.capacities = ["default", str(held)]
        bound_mib = int(capacity_model.usable_ram_bytes(args.task_mib)) >> 20
    rng = random.Random(7)  # noqa: S311 - seeded test vectors, not a secret
    vectors = [[rng.random() for _ in range(args.dim)] for _ in range(args.vectors)]
    with tempfile.TemporaryDirectory(prefix="chroma-memory-") as tmp:
        data = Path(tmp) / "data"
        data.mkdir()
        with chroma_server(data) as writer:
            api = client(writer.port)
            for index in range(args.collections):
                collection = api.create_collection(f"memory-{index}")
                for start in range(0, args.vectors, BATCH):
                    end = min(start + BATCH, args.vectors)
                    collection.add(ids=[f"{index}-{i}" for i in range(start, end)], embeddings=vectors[start:end])
        model = capacity_model.estimate(args.collections * args.vectors, args.dim, collections=args.collections)
        index_mib = integrity.disk_usage(data).index_bytes >> 20
        print(f"{args.collections} collections x {args.vectors} x {args.dim}-d ({index_mib} MiB of index files); "
              f"resident memory of a fresh server on them, after querying every collection (MiB); the capacity "
              f"model predicts {model.ram_bytes >> 20} MiB")
        print(f"{'capacity':>9} {'start':>6} {'round 1':>8} {'round 2':>8}")
        for capacity in args.capacities:
            server_env = dict(item.split("=", 1) for item in args.env)
            with chroma_server(data, extra_config=cache_config(capacity), env=server_env) as reader:
                api = client(reader.port)
                figures = [resident_bytes(reader.process.pid) >> 20]
                for _ in range(2):
                    for index in range(args.collections):
                        api.get_collection(f"memory-{index}").query(query_embeddings=[vectors[0]], n_results=3)
                    figures.append(resident_bytes(reader.process.pid) >> 20)
                print(f"{capacity:>9} {figures[0]:>6} {figures[1]:>8} {figures[2]:>8}")
        if bound_mib is not None:
            print(f"a task of {args.task_mib} MiB leaves Chroma {bound_mib} MiB (after the OS reserve, the gateway "
                  f"and the headroom); the node sets the capacity to {args.capacities[1]}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
