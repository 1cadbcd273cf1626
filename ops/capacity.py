"""How much memory and disk a Chroma collection needs, which Fargate size holds it, and the measurements behind it.

The model: the HNSW index must be in RAM. Per vector it holds the raw float32 vector (4 x dim bytes), the graph
links (~2 x max_neighbors x 4 bytes on the base layer) and per-record overhead (ids, bookkeeping), on top of a fixed
process baseline. The per-record overhead and disk factors come from `chroma-ops capacity calibrate` runs of a real
Chroma server (see docs/capacity.md); the defaults below are those measurements.
"""

from __future__ import annotations

import math
import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

from cdk_app.validation import FARGATE_SIZES
from ops.errors import UsageError

MIB = 1 << 20
GIB = 1 << 30
# Chroma's single-node guide: keep at least 1 GB for the OS beside the index.
OS_RESERVE_MIB = 1024
# The gateway sidecar's resident memory, with room.
GATEWAY_MIB = 128


@dataclass(frozen=True)
class Model:
    """Bytes per record beyond raw vector and links, and the process baseline (calibrated, docs/capacity.md)."""

    # Measured 2026-11-22 with chromadb 1.5.9 (`chroma run`, which includes a Python interpreter; the image's
    # binary has less): ~122 MB at rest, ~300 B per record beyond vector and links, disk ~= vector + links + 190 B.
    baseline_bytes: float = 122e6
    overhead_bytes_per_record: float = 300.0
    disk_vector_factor: float = 1.0
    disk_overhead_bytes_per_record: float = 190.0
    disk_baseline_bytes: float = 2.1 * MIB  # an empty SQLite database and its journal
    # Each collection's index held in memory costs this beyond its records (structures, allocator slack):
    # 2.6-2.9 MiB measured with 8, 24 and 120 collections (docs/chroma-node-measurements.md).
    overhead_bytes_per_collection: float = 3 * MIB


DEFAULT_MODEL = Model()


@dataclass(frozen=True)
class Estimate:
    vectors: int
    dim: int
    max_neighbors: int
    ram_bytes: int
    disk_bytes: int
    required_task_mib: int

    def as_dict(self) -> dict[str, int]:
        return asdict(self)


def validate(vectors: int, dim: int, max_neighbors: int) -> None:
    if vectors < 1:
        raise UsageError(f"--vectors = {vectors}: use a positive number of vectors")
    if not 1 <= dim <= 65_536:
        raise UsageError(f"--dim = {dim}: use a dimension from 1 to 65536")
    if not 2 <= max_neighbors <= 512:
        raise UsageError(f"--max-neighbors = {max_neighbors}: use 2 to 512 (Chroma's default is 16)")


def record_ram_bytes(dim: int, max_neighbors: int = 16, metadata_bytes: int = 0,
                     model: Model = DEFAULT_MODEL) -> float:
    """One record's share of the index in memory: its vector, its graph links, its overhead and metadata."""
    return 4 * dim + 2 * max_neighbors * 4 + model.overhead_bytes_per_record + metadata_bytes


def estimate(vectors: int, dim: int, max_neighbors: int = 16, document_bytes: int = 0, metadata_bytes: int = 0,
             headroom: float = 0.25, model: Model = DEFAULT_MODEL, collections: int = 1) -> Estimate:
    """`vectors` in all, spread over `collections` collections (every index is held in memory: Chroma 1.5.9's index
    cache capacity does not bound it, docs/chroma-node-measurements.md)."""
    validate(vectors, dim, max_neighbors)
    if not 1 <= collections <= vectors:
        raise UsageError(f"--collections = {collections}: use 1 to the number of vectors ({vectors})")
    if not 0 <= headroom <= 4:
        raise UsageError(f"--headroom = {headroom}: use 0 to 4 (a fraction: 0.25 = 25 %)")
    links = 2 * max_neighbors * 4
    ram = (model.baseline_bytes + collections * model.overhead_bytes_per_collection
           + vectors * record_ram_bytes(dim, max_neighbors, metadata_bytes, model))
    per_record_on_disk = (model.disk_vector_factor * 4 * dim + links + model.disk_overhead_bytes_per_record
                          + document_bytes + metadata_bytes)
    disk = model.disk_baseline_bytes + vectors * per_record_on_disk
    required = math.ceil(ram * (1 + headroom) / MIB) + OS_RESERVE_MIB + GATEWAY_MIB
    return Estimate(vectors, dim, max_neighbors, int(ram), int(disk), required)


def usable_ram_bytes(task_memory_mib: int, headroom: float = 0.25) -> float:
    """What a task of this memory can give Chroma's indexes and process: the inverse of `required_task_mib`."""
    return (task_memory_mib - OS_RESERVE_MIB - GATEWAY_MIB) * MIB / (1 + headroom)


# Resident memory per byte of index files on disk once every index is loaded, per-collection costs included:
# 1.42-1.83 measured with 24 to 240 collections (docs/chroma-node-measurements.md).
RAM_PER_INDEX_BYTE = 1.8


def index_bytes_limit(task_memory_mib: int, headroom: float = 0.25, model: Model = DEFAULT_MODEL) -> int:
    """The most index bytes on disk (the node's IndexBytes) whose indexes, all loaded, fit what the task leaves
    Chroma: memory is bounded by keeping the data under this, since loaded vectors stay resident."""
    return max(0, int((usable_ram_bytes(task_memory_mib, headroom) - model.baseline_bytes) / RAM_PER_INDEX_BYTE))


def collections_per_task(task_memory_mib: int, vectors: int, dim: int, max_neighbors: int = 16,
                         headroom: float = 0.25, model: Model = DEFAULT_MODEL) -> int:
    """How many collections of `vectors` x `dim` a task holds in memory at once (0: not even one)."""
    one = estimate(vectors, dim, max_neighbors, headroom=headroom, model=model).ram_bytes - model.baseline_bytes
    return max(0, int((usable_ram_bytes(task_memory_mib, headroom) - model.baseline_bytes) // one))


def chroma_guide_max_vectors(memory_mib: int, dim: int) -> int:
    """Chroma's rule of thumb: ~0.245 x RAM-in-GB million 1024-d vectors (scaled to `dim`), 1 GB kept for the OS."""
    usable_gb = max(0.0, memory_mib / 1024 - 1)
    return int(0.245e6 * usable_gb * 1024 / dim)


def recommend(required_mib: int, monthly_cost: Callable[[int, int], float]) -> tuple[int, int] | None:
    """The cheapest valid Fargate (cpu, memory) with at least `required_mib`, at least 1 vCPU; None if none can."""
    candidates = [(cpu, memory) for cpu, memories in FARGATE_SIZES.items() if cpu >= 1024
                  for memory in memories if memory >= required_mib]
    return min(candidates, key=lambda c: (monthly_cost(*c), c)) if candidates else None


# --- calibration against a real Chroma server ---------------------------------------------------------------------

def _rss_bytes(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise RuntimeError(f"no VmRSS for process {pid}")


def _tree_bytes(path: Path) -> int:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file())


@dataclass(frozen=True)
class Measurement:
    vectors: int
    dim: int
    rss_bytes: int
    disk_bytes: int
    predicted_ram_bytes: int
    predicted_disk_bytes: int
    load_seconds: float


def measure(vectors: int, dim: int, seed: int = 11, progress: Callable[[int], None] | None = None) -> Measurement:
    """Load `vectors` into a fresh local Chroma, restart it (as a deploy would), query once so the index loads,
    then read the server's resident memory and the size of its persist directory."""
    from gateway.local import chroma_server, free_port
    from ops.loadgen import COLLECTIONS_PATH, Target, create_collection, insert, query_bodies, request

    with tempfile.TemporaryDirectory(prefix="chroma-calibrate-") as tmp:
        data, port = Path(tmp) / "data", free_port()
        began = time.perf_counter()
        with chroma_server(data, port=port) as server:
            target = Target("chroma", server.url)
            collection_id = create_collection(target, "calibration")
            insert(target, collection_id, vectors, dim, batch=1000, seed=seed, progress=progress)
        loaded = time.perf_counter() - began
        with chroma_server(data, port=port) as server:
            target = Target("chroma", server.url)
            conn = target.connect()
            body = query_bodies(dim, 10, seed + 1, count=1)[0]
            request(conn, "POST", f"{COLLECTIONS_PATH}/{collection_id}/query", body, {})
            conn.close()
            rss = _rss_bytes(server.process.pid)
        predicted = estimate(vectors, dim)
        return Measurement(vectors, dim, rss, _tree_bytes(data), predicted.ram_bytes, predicted.disk_bytes, loaded)
