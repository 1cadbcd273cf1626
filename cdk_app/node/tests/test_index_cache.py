"""The node bounds Chroma's index cache (cdk_app/node/chroma.py); an evicted index must lose nothing.

Six collections through a cache of two, written in turns in batches below `sync_threshold` (so indexes are evicted
while they hold writes not yet saved), read back exactly, before and after a restart. Real `chroma run`, with the
cache set the way the task sets it (a CHROMA_ environment variable).
"""

from __future__ import annotations

from pathlib import Path

import chromadb
import pytest
from chromadb.config import Settings

from cdk_app.node.chroma import INDEX_CACHE_ENV
from gateway.local import LOOPBACK, chroma_server

pytestmark = pytest.mark.servers

COLLECTIONS = 6
ROUNDS = 5
BATCH = 40  # below the sync_threshold of 100: most writes are in the log only when their index is evicted


def _vector(collection: int, record: int) -> list[float]:
    return [float(collection), float(record), float(record % 11), 1.0]


def _check(port: int) -> None:
    api = chromadb.HttpClient(host=LOOPBACK, port=port, settings=Settings(anonymized_telemetry=False))
    for c in range(COLLECTIONS):
        collection = api.get_collection(f"cache-{c}")
        got = collection.get(include=["embeddings"])
        assert got["embeddings"] is not None
        found = {i: [float(x) for x in e] for i, e in zip(got["ids"], got["embeddings"], strict=True)}
        assert found == {f"r{r}": _vector(c, r) for r in range(ROUNDS * BATCH)}
        nearest = collection.query(query_embeddings=[_vector(c, 7)], n_results=1)
        assert nearest["ids"] == [["r7"]]


def test_an_index_evicted_with_unsaved_writes_loses_nothing(tmp_path: Path) -> None:
    data = tmp_path / "data"
    cache = "segment_manager:\n  hnsw_index_pool_cache_config:\n    memory:\n      capacity: 2\n"
    with chroma_server(data, extra_config=cache) as server:
        api = chromadb.HttpClient(host=LOOPBACK, port=server.port, settings=Settings(anonymized_telemetry=False))
        for c in range(COLLECTIONS):
            api.create_collection(f"cache-{c}", configuration={"hnsw": {"sync_threshold": 100, "batch_size": 20}})
        for round_number in range(ROUNDS):
            for c in range(COLLECTIONS):
                ids = range(round_number * BATCH, (round_number + 1) * BATCH)
                api.get_collection(f"cache-{c}").add(ids=[f"r{r}" for r in ids],
                                                      embeddings=[_vector(c, r) for r in ids])
        _check(server.port)
    # The task passes the capacity as an environment variable: the same setting, the way ECS gives it.
    with chroma_server(data, env={INDEX_CACHE_ENV: "2"}) as server:
        _check(server.port)


def test_chroma_reads_the_capacity_from_that_variable(tmp_path: Path) -> None:
    """Guards the test above: a value Chroma cannot parse stops it at start, so the variable does reach Chroma."""
    with pytest.raises(RuntimeError, match="chroma exited"), \
            chroma_server(tmp_path / "data", env={INDEX_CACHE_ENV: "not-a-number"}):
        pass
