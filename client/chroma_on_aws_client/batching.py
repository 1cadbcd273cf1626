"""Large writes in batches Chroma accepts: at most the server's `max_batch_size` records (from its pre-flight
checks) and at most `max_body_bytes` of request body each (the gateway and Chroma refuse bodies over 40 MiB)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import orjson

# Columns of a write, in chromadb's batch order: ids, embeddings, metadatas, documents, uris.
Batch = tuple[Any, ...]


def _records(batch: Batch) -> int:
    return len(batch[0])


def _slice(batch: Batch, start: int, end: int) -> Batch:
    return tuple(None if column is None else column[start:end] for column in batch)


def ranges(batch: Batch, max_records: int, max_bytes: int,
           body_bytes: Callable[[Batch], int]) -> list[tuple[int, int]]:
    """(start, end) record ranges covering the batch, each within both limits. A single record over `max_bytes`
    is its own range (the server will refuse it, with its own message)."""
    total = _records(batch)
    found: list[tuple[int, int]] = []
    start = 0
    while start < total:
        end = min(total, start + max(max_records, 1))
        while end - start > 1 and body_bytes(_slice(batch, start, end)) > max_bytes:
            end = start + (end - start) // 2
        found.append((start, end))
        start = end
    return found


def json_bytes(batch: Batch) -> int:
    """The size of the JSON body this slice would be sent as (embeddings as lists of floats: an upper bound of
    chromadb's base64 form)."""
    ids, embeddings, metadatas, documents, uris = (list(batch) + [None] * 5)[:5]
    return len(orjson.dumps({"ids": ids, "embeddings": _plain(embeddings), "metadatas": metadatas,
                             "documents": documents, "uris": uris}, option=orjson.OPT_SERIALIZE_NUMPY))


def _plain(embeddings: Sequence[Any] | None) -> Any:
    if embeddings is None:
        return None
    return [e.tolist() if hasattr(e, "tolist") else e for e in embeddings]


def slice_batch(batch: Batch, start: int, end: int) -> Batch:
    return _slice(batch, start, end)
