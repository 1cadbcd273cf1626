"""Load generation shared by `chroma-ops bench` and the gateway benchmark: keep-alive HTTP(S) clients, seeded
vectors, latency samples and their statistics."""

from __future__ import annotations

import http.client
import json
import random
import statistics
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from urllib.parse import urlsplit

DEFAULT_TENANT = "default_tenant"


def collections_path(tenant: str = DEFAULT_TENANT) -> str:
    return f"/api/v2/tenants/{tenant}/databases/default_database/collections"


COLLECTIONS_PATH = collections_path()


@dataclass(frozen=True)
class Target:
    """An HTTP endpoint of Chroma (direct or through the gateway) and the headers to send."""

    name: str
    url: str
    headers: dict[str, str] = field(default_factory=dict)
    tenant: str = DEFAULT_TENANT

    @property
    def collections(self) -> str:
        return collections_path(self.tenant)

    def connect(self, timeout: float = 60) -> http.client.HTTPConnection:
        parts = urlsplit(self.url)
        host = parts.hostname or "127.0.0.1"
        if parts.scheme == "https":
            return http.client.HTTPSConnection(host, parts.port or 443, timeout=timeout)
        return http.client.HTTPConnection(host, parts.port or 80, timeout=timeout)


class HttpError(Exception):
    def __init__(self, status: int, body: bytes) -> None:
        super().__init__(f"HTTP {status}: {body[:200]!r}")
        self.status = status


def request(conn: http.client.HTTPConnection, method: str, path: str, body: bytes | None,
            headers: dict[str, str]) -> bytes:
    conn.request(method, path, body=body, headers={"Content-Type": "application/json", **headers})
    response = conn.getresponse()
    payload = response.read()
    if response.status not in (200, 201):
        raise HttpError(response.status, payload)
    return payload


def vectors(count: int, dim: int, rng: random.Random) -> list[list[float]]:
    return [[rng.random() for _ in range(dim)] for _ in range(count)]


def create_collection(target: Target, name: str, space: str = "cosine") -> str:
    conn = target.connect()
    created = json.loads(request(conn, "POST", target.collections, json.dumps(
        {"name": name, "configuration": {"hnsw": {"space": space}}, "get_or_create": True}).encode(),
        target.headers))
    conn.close()
    return str(created["id"])


def delete_collection(target: Target, name: str) -> None:
    conn = target.connect()
    request(conn, "DELETE", f"{target.collections}/{name}", None, target.headers)
    conn.close()


def insert(target: Target, collection_id: str, count: int, dim: int, batch: int, seed: int,
           start: int = 0, progress: Callable[[int], None] | None = None) -> float:
    """Add `count` seeded vectors in batches of `batch`; returns the seconds spent in requests."""
    rng = random.Random(seed)  # noqa: S311 - reproducible data, not security
    conn = target.connect(timeout=300)
    spent = 0.0
    for offset in range(0, count, batch):
        size = min(batch, count - offset)
        body = json.dumps({"ids": [f"v{start + offset + i}" for i in range(size)],
                           "embeddings": vectors(size, dim, rng)}).encode()
        began = time.perf_counter()
        request(conn, "POST", f"{target.collections}/{collection_id}/add", body, target.headers)
        spent += time.perf_counter() - began
        if progress:
            progress(size)
    conn.close()
    return spent


def query_bodies(dim: int, k: int, seed: int, count: int = 256) -> list[bytes]:
    rng = random.Random(seed)  # noqa: S311 - reproducible data, not security
    return [json.dumps({"query_embeddings": [[rng.random() for _ in range(dim)]], "n_results": k,
                        "include": ["distances"]}).encode() for _ in range(count)]


@dataclass
class Sample:
    latencies_ms: list[float] = field(default_factory=list)
    elapsed_s: float = 0.0
    errors: int = 0

    def add(self, other: Sample) -> None:
        self.latencies_ms.extend(other.latencies_ms)
        self.elapsed_s += other.elapsed_s
        self.errors += other.errors

    def percentile(self, p: float) -> float:
        ordered = sorted(self.latencies_ms)
        return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))] if ordered else 0.0

    @property
    def throughput(self) -> float:
        return len(self.latencies_ms) / self.elapsed_s if self.elapsed_s else 0.0

    def summary(self) -> dict[str, float]:
        data = self.latencies_ms
        return {"requests": len(data), "errors": self.errors,
                "mean_ms": statistics.fmean(data) if data else 0.0,
                "stdev_ms": statistics.stdev(data) if len(data) > 1 else 0.0,
                "p50_ms": self.percentile(50), "p95_ms": self.percentile(95), "p99_ms": self.percentile(99),
                "per_second": self.throughput}


def run_clients(target: Target, path: str, bodies: Sequence[bytes], clients: int, seconds: float) -> Sample:
    """`clients` threads, each with its own keep-alive connection, posting `bodies` to `path` for `seconds`."""
    results: list[list[float]] = [[] for _ in range(clients)]
    errors = [0] * clients
    start_barrier = threading.Barrier(clients + 1)
    stop_at = [time.perf_counter() + 3600.0]

    def worker(index: int) -> None:
        conn = target.connect()
        request(conn, "POST", path, bodies[0], target.headers)  # warm the connection
        start_barrier.wait()
        i = index
        while time.perf_counter() < stop_at[0]:
            began = time.perf_counter()
            try:
                request(conn, "POST", path, bodies[i % len(bodies)], target.headers)
            except (HttpError, OSError, http.client.HTTPException):
                errors[index] += 1
                conn.close()
                conn = target.connect()
            else:
                results[index].append((time.perf_counter() - began) * 1000)
            i += clients
        conn.close()

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(clients)]
    for thread in threads:
        thread.start()
    start_barrier.wait()
    began = time.perf_counter()
    stop_at[0] = began + seconds
    for thread in threads:
        thread.join()
    return Sample([x for r in results for x in r], time.perf_counter() - began, sum(errors))
