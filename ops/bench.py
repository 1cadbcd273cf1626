"""`chroma-ops bench`: query latency and throughput, and insert throughput, against one endpoint."""

from __future__ import annotations

import contextlib
import os
import platform
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from ops.errors import OpsError, UsageError
from ops.loadgen import (
    HttpError,
    Target,
    create_collection,
    delete_collection,
    insert,
    query_bodies,
    run_clients,
)
from ops.output import Progress

LOCAL_TOKEN = "chroma-ops-local-bench"  # noqa: S105 - a throwaway token for a loopback-only server


@contextlib.contextmanager
def local_target() -> Iterator[Target]:
    """A real Chroma and the gateway on loopback, for a fresh machine with no deployment."""
    from gateway.local import chroma_server, gateway_server

    with tempfile.TemporaryDirectory(prefix="chroma-ops-bench-") as tmp, \
            chroma_server(Path(tmp) / "data") as chroma, \
            gateway_server(chroma.url, Path(tmp), {"GATEWAY_TOKENS": LOCAL_TOKEN}) as gateway:
        yield Target("local gateway", gateway.url, {"Authorization": f"Bearer {LOCAL_TOKEN}"})


def validate(vectors: int, dim: int, k: int, concurrency: list[int], batch_sizes: list[int], seconds: float) -> None:
    if vectors < 1 or not 1 <= dim <= 65_536:
        raise UsageError(f"--vectors {vectors} / --dim {dim}: use at least 1 vector of 1 to 65536 dimensions")
    if not 1 <= k <= vectors:
        raise UsageError(f"--k = {k}: use 1 to the number of vectors ({vectors})")
    if not concurrency or any(c < 1 or c > 256 for c in concurrency):
        raise UsageError(f"--concurrency {concurrency}: use levels from 1 to 256")
    if not batch_sizes or any(b < 1 for b in batch_sizes) or len(batch_sizes) > vectors:
        raise UsageError(f"--batch-sizes {batch_sizes}: use positive sizes, no more of them than vectors")
    if seconds <= 0:
        raise UsageError(f"--seconds = {seconds}: use a positive duration")


def run(target: Target, vectors: int, dim: int, k: int, concurrency: list[int], batch_sizes: list[int],
        seconds: float, seed: int) -> dict[str, Any]:
    validate(vectors, dim, k, concurrency, batch_sizes, seconds)
    name = f"chroma-ops-bench-{uuid.uuid4().hex[:12]}"
    try:
        collection_id = create_collection(target, name)
    except HttpError as error:
        raise OpsError("the endpoint refused the token (401)" if error.status == 401 else str(error)) from None
    except OSError as error:
        raise OpsError(f"cannot reach {target.url}: {error}") from None
    try:
        inserts = []
        share, loaded = vectors // len(batch_sizes), 0
        progress = Progress(vectors, "loading")
        for i, batch in enumerate(batch_sizes):
            count = vectors - loaded if i == len(batch_sizes) - 1 else share
            spent = insert(target, collection_id, count, dim, batch, seed + i, start=loaded,
                           progress=progress.advance)
            loaded += count
            inserts.append({"batch_size": batch, "vectors": count, "seconds": spent,
                            "vectors_per_second": count / spent if spent else 0.0})
        progress.close()
        path = f"{target.collections}/{collection_id}/query"
        bodies = query_bodies(dim, k, seed + 1000)
        run_clients(target, path, bodies, 1, min(1.0, seconds))  # load the index before measuring
        levels = []
        for clients in concurrency:
            summary = run_clients(target, path, bodies, clients, seconds).summary()
            levels.append({"concurrency": clients, **summary})
    finally:
        with contextlib.suppress(HttpError, OSError):
            delete_collection(target, name)
    return {
        "target": target.name, "endpoint": target.url,
        "dataset": {"vectors": vectors, "dim": dim, "space": "cosine", "seed": seed},
        "settings": {"k": k, "seconds_per_level": seconds, "batch_sizes": batch_sizes},
        "machine": {"arch": platform.machine(), "cpus": os.cpu_count(), "python": platform.python_version()},
        "insert": inserts, "query": levels,
    }
