"""A quick end-to-end check of a deployed (or local) Chroma behind the gateway, with the real chromadb client."""

from __future__ import annotations

import random
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from ops.errors import OpsError


@dataclass
class Step:
    name: str
    ok: bool
    ms: float
    detail: str


# A smoke test reports a broken endpoint rather than riding out a long outage.
SMOKE_RETRY_BUDGET_SECONDS = 5.0


def _client(url: str, token: str, node: str | None = None, tenant: str = "default_tenant") -> Any:
    """The client package's client (the one applications use): retries, timeouts, batching, request ids; with
    `node`, every request names that node (a multi-node environment's load balancer routes it there)."""
    from chroma_on_aws_client import ClientOptions, RetryPolicy, connect

    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise OpsError(f"--endpoint {url!r}: use an http(s) URL such as https://chroma.example.com", 2)
    return connect(endpoint=url, token=token, tenant=tenant,
                   options=ClientOptions(retry=RetryPolicy(budget_seconds=SMOKE_RETRY_BUDGET_SECONDS), node=node))


def explain(error: Exception, url: str) -> str:
    """Chroma's client errors, said plainly (and never with the token)."""
    from chromadb.errors import AuthorizationError

    from chroma_on_aws_client import RequestFailed

    if isinstance(error, AuthorizationError):
        return "the endpoint refused the token (401): check the token, or that it has not been rotated away"
    text = str(error)
    if isinstance(error, RequestFailed) and error.status is None:
        return f"cannot reach {url}: is the endpoint right, and is this machine allowed to connect? ({text[:200]})"
    if "Could not connect" in text or isinstance(error, ConnectionError | OSError):
        return f"cannot reach {url}: is the endpoint right, and is this machine allowed to connect?"
    return f"{type(error).__name__}: {text[:300]}"


def run(url: str, token: str, records: int = 20, dim: int = 8, node: str | None = None,
        tenant: str = "default_tenant") -> list[Step]:
    steps: list[Step] = []
    state: dict[str, Any] = {"name": f"chroma-ops-smoke-{uuid.uuid4().hex[:12]}"}
    rng = random.Random(1)  # noqa: S311 - test data
    embeddings = [[rng.random() for _ in range(dim)] for _ in range(records)]

    def step(name: str, action: Callable[[], str]) -> bool:
        began = time.perf_counter()
        try:
            detail = action()
        except Exception as error:  # every failure becomes the step's report
            steps.append(Step(name, False, (time.perf_counter() - began) * 1000, explain(error, url)))
            return False
        steps.append(Step(name, True, (time.perf_counter() - began) * 1000, detail))
        return True

    def heartbeat() -> str:
        state["client"] = _client(url, token, node, tenant)
        state["client"].heartbeat()
        return f"{url} answers"

    def create() -> str:
        state["collection"] = state["client"].create_collection(state["name"])
        return f"collection {state['name']}"

    def add() -> str:
        state["collection"].add(ids=[f"r{i}" for i in range(records)], embeddings=embeddings,
                                documents=[f"smoke record {i}" for i in range(records)])
        return f"{records} records of {dim} dimensions"

    def query() -> str:
        result = state["collection"].query(query_embeddings=[embeddings[3]], n_results=3)
        if result["ids"][0][0] != "r3":
            raise AssertionError(f"nearest neighbour of r3 is {result['ids'][0][0]}, expected r3")
        return "nearest neighbour is the record itself"

    def get() -> str:
        got = state["collection"].get(ids=["r5"], include=["documents"])
        if got["documents"] != ["smoke record 5"]:
            raise AssertionError(f"get returned {got['documents']!r}")
        return "record read back"

    def delete() -> str:
        state["client"].delete_collection(state["name"])
        state.pop("collection")
        return "collection deleted"

    try:
        for name, action in (("heartbeat", heartbeat), ("create collection", create), ("add", add),
                             ("query", query), ("get", get), ("delete collection", delete)):
            if not step(name, action):
                break
    finally:
        if "collection" in state:  # a step failed after creating it: clean up even so
            step("cleanup", delete)
    return steps
