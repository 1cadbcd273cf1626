"""chromadb's HTTP client with what production needs, as subclasses of chromadb's own `Client` and HTTP API
implementation (`FastAPI`), so applications keep chromadb's `ClientAPI` and `Collection`:

- every request carries the current token (read from the TokenSource on each request: chromadb's own client reads
  its auth provider once, when it is built) and an X-Request-Id the gateway logs;
- a timeout per request, and retries where they are safe (chroma_on_aws_client.retry) within a time budget;
- one 401 makes the token be read again and the request sent once more; a second 401 is final;
- add, upsert, update and delete by ids are split into batches Chroma accepts (chroma_on_aws_client.batching),
  with progress, and a failure part-way says which batches landed;
- an add that may have landed is never sent twice: the ids that exist are asked for, the others sent;
- an optional hook sees every call's operation, latency, status and attempts.

Why subclasses, not `Settings(chroma_api_impl=...)`: chromadb 1.5 accepts only its own implementation names there
(`SharedSystemClient._get_identifier_from_settings` refuses any other). So ResilientClient is chromadb's Client
whose server API, the one object every call and every Collection goes through, is a ResilientFastAPI on the same
System. tests/test_hook.py pins what this relies on in chromadb (the range in pyproject.toml).
"""

from __future__ import annotations

import logging
import random
import time
import urllib.parse
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, cast
from uuid import UUID

import httpx
import orjson
from chromadb.api.client import Client
from chromadb.api.fastapi import FastAPI
from chromadb.api.types import DeleteResult
from chromadb.auth import ClientAuthHeaders, ClientAuthProvider
from chromadb.config import DEFAULT_DATABASE, DEFAULT_TENANT, System
from overrides import override
from pydantic import SecretStr

from chroma_on_aws_client import batching
from chroma_on_aws_client.errors import BatchFailed, RequestFailed
from chroma_on_aws_client.retry import (
    MAYBE_PROCESSED,
    NOT_PROCESSED,
    RetryPolicy,
    idempotent,
    is_add,
    retry_after_seconds,
)
from chroma_on_aws_client.tokens import TokenSource

# Names the node a request is for (the gateway's NODE_HEADER; the package ships without the gateway, a test pins
# that both agree).
NODE_HEADER = "X-Chroma-Node"

log = logging.getLogger("chroma_on_aws_client")

# The gateway's and Chroma's body limit is 40 MiB; a margin for the JSON framing chromadb adds.
DEFAULT_MAX_BODY_BYTES = 40 * 1024 * 1024 - 64 * 1024
# (operation, seconds, HTTP status or None, attempts)
RequestHook = Callable[[str, float, int | None, int], None]
# (operation, records done, records in all)
ProgressHook = Callable[[str, int, int], None]


@dataclass(frozen=True)
class ClientOptions:
    tokens: TokenSource | None = None
    retry: RetryPolicy = field(default_factory=RetryPolicy)
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES
    on_request: RequestHook | None = None
    on_progress: ProgressHook | None = None
    # Address one node of a multi-node environment (operator tools: chroma-ops move-tenant); None: the load
    # balancer routes by tenant, as applications need.
    node: str | None = None


# Options by the key a client's Settings carry (chroma_client_auth_credentials): Settings hold only strings.
REGISTRY: dict[str, ClientOptions] = {}


def options_for(system: System) -> ClientOptions:
    return REGISTRY.get(str(system.settings.chroma_client_auth_credentials), ClientOptions())


class AwsTokenAuthProvider(ClientAuthProvider):  # type: ignore[misc]
    """chromadb's hook for credentials: the token of the client's TokenSource (sent again on every request by
    ResilientFastAPI)."""

    def __init__(self, system: System) -> None:
        super().__init__(system)
        self._system = system

    @override
    def authenticate(self) -> ClientAuthHeaders:
        tokens = options_for(self._system).tokens
        return {"Authorization": SecretStr(f"Bearer {tokens.token()}")} if tokens else {}


class _MaybeLanded(Exception):
    """An add whose fate is unknown (timeout, connection lost after sending, 502, 504)."""

    def __init__(self, request_id: str, attempts: int, status: int | None, cause: str) -> None:
        super().__init__(cause)
        self.request_id, self.attempts, self.status = request_id, attempts, status


OPERATIONS = frozenset({"add", "upsert", "update", "delete", "get", "query", "search", "count", "heartbeat",
                        "pre-flight-checks", "version", "identity", "reset", "fork"})
RESOURCES = ("collections", "databases", "tenants")


def operation_of(method: str, path: str) -> str:
    """A short name for the hook and the errors: `query`, `count`, `get collections`, `post collections`..."""
    parts = [p for p in path.split("/") if p]
    if parts and parts[-1] in OPERATIONS:
        return parts[-1]
    kind = next((p for p in reversed(parts) if p in RESOURCES), parts[-1] if parts else "")
    return f"{method.lower()} {kind}".strip()


class ResilientFastAPI(FastAPI):  # type: ignore[misc]
    def __init__(self, system: System) -> None:
        super().__init__(system)
        self._system_settings = system
        self._session.timeout = httpx.Timeout(self._options.retry.timeout_seconds)
        self._random = random.Random()  # noqa: S311 - jitter, not a secret

    @property
    def _options(self) -> ClientOptions:
        return options_for(self._system_settings)

    # one request, retried where safe
    @override
    def _make_request(self, method: str, path: str, **kwargs: Any) -> Any:
        options = self._options
        if "json" in kwargs:
            kwargs["content"] = orjson.dumps(kwargs.pop("json"), option=orjson.OPT_SERIALIZE_NUMPY)
        url = self._api_url + urllib.parse.quote(path, safe="/")
        request_id, operation = uuid.uuid4().hex, operation_of(method, path)
        started = time.monotonic()
        deadline = started + options.retry.budget_seconds
        attempts, refreshed = 0, False
        while True:
            attempts += 1
            headers = {"X-Request-Id": request_id}
            if options.node is not None:
                headers[NODE_HEADER] = options.node
            if options.tokens is not None:
                headers["Authorization"] = f"Bearer {options.tokens.token()}"
            response: httpx.Response | None = None
            try:
                response = self._session.request(method, url, headers=headers, **kwargs)
            except (httpx.ConnectError, httpx.ConnectTimeout) as error:
                safe, why = True, f"cannot connect ({type(error).__name__})"
            except httpx.TransportError as error:  # sent, maybe processed: a timeout, a connection lost mid-way
                safe, why = idempotent(method, path), f"no answer ({type(error).__name__}: {error})"
            else:
                status = response.status_code
                if status == 401 and options.tokens is not None and not refreshed:
                    refreshed = True
                    if options.tokens.refresh():
                        attempts -= 1  # a new token, not a retry
                        continue
                if status in NOT_PROCESSED:
                    safe, why = True, f"{status} ({_error_name(response)})"
                elif status in MAYBE_PROCESSED:
                    safe, why = idempotent(method, path), f"{status} ({_error_name(response)})"
                else:
                    self._report(operation, started, status, attempts)
                    return self._answer(response, request_id, attempts)
            status_seen = response.status_code if response is not None else None
            if not safe:
                self._report(operation, started, status_seen, attempts)
                if is_add(method, path):
                    raise _MaybeLanded(request_id, attempts, status_seen, why)
                raise RequestFailed(f"{operation} failed: {why}; not retried, as it may have been processed",
                                    request_id, attempts, status_seen)
            wait = options.retry.delay(attempts, retry_after_seconds(
                response.headers.get("Retry-After") if response is not None else None), self._random)
            if time.monotonic() + wait > deadline:
                self._report(operation, started, status_seen, attempts)
                raise RequestFailed(f"{operation} failed: {why}; gave up after {time.monotonic() - started:.1f} s "
                                    f"(retry budget {options.retry.budget_seconds:g} s)", request_id, attempts,
                                    status_seen)
            log.info("retrying", extra={"operation": operation, "request_id": request_id, "attempt": attempts,
                                        "reason": why, "wait_seconds": round(wait, 3)})
            time.sleep(wait)

    def _answer(self, response: httpx.Response, request_id: str, attempts: int) -> Any:
        try:
            FastAPI._raise_chroma_error(response)
        except Exception as error:
            error.add_note(f"request id {request_id}, {attempts} attempt(s), HTTP {response.status_code}")
            error.request_id = request_id  # type: ignore[attr-defined]
            raise
        return orjson.loads(response.text)

    def _report(self, operation: str, started: float, status: int | None, attempts: int) -> None:
        hook = self._options.on_request
        if hook is not None:
            hook(operation, time.monotonic() - started, status, attempts)

    # writes in batches Chroma accepts
    def _in_batches(self, operation: str, batch: batching.Batch,
                    send: Callable[[batching.Batch], None]) -> None:
        options = self._options
        total = len(batch[0])
        parts = batching.ranges(batch, self.get_max_batch_size(), options.max_body_bytes, batching.json_bytes)
        landed: list[tuple[int, int]] = []
        for start, end in parts:
            try:
                send(batching.slice_batch(batch, start, end))
            except Exception as error:
                if len(parts) == 1:
                    raise
                raise BatchFailed(operation, landed, (start, end), total, error) from error
            landed.append((start, end))
            if options.on_progress is not None:
                options.on_progress(operation, end, total)

    def _scope(self, tenant: str, database: str, collection_id: UUID) -> str:
        return f"/tenants/{tenant}/databases/{database}/collections/{collection_id}"

    @override
    def _add(self, ids: Any, collection_id: UUID, embeddings: Any, metadatas: Any = None, documents: Any = None,
             uris: Any = None, tenant: str = DEFAULT_TENANT, database: str = DEFAULT_DATABASE) -> bool:
        url = f"{self._scope(tenant, database, collection_id)}/add"

        def send(part: batching.Batch) -> None:
            try:
                self._submit_batch(cast(Any, part), url)
            except _MaybeLanded as unknown:
                self._add_what_did_not_land(part, url, collection_id, tenant, database, unknown)

        self._in_batches("add", (ids, embeddings, metadatas, documents, uris), send)
        return True

    def _add_what_did_not_land(self, part: batching.Batch, url: str, collection_id: UUID, tenant: str,
                               database: str, unknown: _MaybeLanded) -> None:
        there = set(self._get(collection_id, ids=list(part[0]), include=[], tenant=tenant, database=database)["ids"])
        missing = [i for i, record_id in enumerate(part[0]) if record_id not in there]
        log.warning("an add may have landed: asked which ids exist", extra={
            "request_id": unknown.request_id, "landed": len(part[0]) - len(missing), "resent": len(missing)})
        if missing:
            rest = tuple(None if column is None else [column[i] for i in missing] for column in part)
            self._submit_batch(cast(Any, rest), url)

    @override
    def _upsert(self, collection_id: UUID, ids: Any, embeddings: Any, metadatas: Any = None, documents: Any = None,
                uris: Any = None, tenant: str = DEFAULT_TENANT, database: str = DEFAULT_DATABASE) -> bool:
        url = f"{self._scope(tenant, database, collection_id)}/upsert"
        self._in_batches("upsert", (ids, embeddings, metadatas, documents, uris),
                         lambda part: self._submit_batch(cast(Any, part), url))
        return True

    @override
    def _update(self, collection_id: UUID, ids: Any, embeddings: Any = None, metadatas: Any = None,
                documents: Any = None, uris: Any = None, tenant: str = DEFAULT_TENANT,
                database: str = DEFAULT_DATABASE) -> bool:
        url = f"{self._scope(tenant, database, collection_id)}/update"
        self._in_batches("update", (ids, embeddings, metadatas, documents, uris),
                         lambda part: self._submit_batch(cast(Any, part), url))
        return True

    @override
    def _delete(self, collection_id: UUID, ids: Any = None, where: Any = None, where_document: Any = None,
                limit: int | None = None, tenant: str = DEFAULT_TENANT,
                database: str = DEFAULT_DATABASE) -> DeleteResult:
        if ids is None or where is not None or where_document is not None or limit is not None:
            return super()._delete(collection_id, ids, where, where_document, limit, tenant, database)
        deleted = 0

        def send(part: batching.Batch) -> None:
            nonlocal deleted
            deleted += int(super(ResilientFastAPI, self)._delete(collection_id, list(part[0]), None, None, None,
                                                                  tenant, database).get("deleted", 0) or 0)

        self._in_batches("delete", (ids,), send)
        return DeleteResult(deleted=deleted)


def _error_name(response: httpx.Response) -> str:
    try:
        return str(orjson.loads(response.content).get("error", "no error name"))
    except (orjson.JSONDecodeError, AttributeError):
        return "no body"


class ResilientClient(Client):  # type: ignore[misc]
    """chromadb's Client; the server API it sets up (`self._server`) is replaced, as it is set, by a
    ResilientFastAPI on the same System, so even the calls Client makes while it starts are retried."""

    @property
    def _server(self) -> ResilientFastAPI:
        return self._resilient_server

    @_server.setter
    def _server(self, plain: FastAPI) -> None:
        self._resilient_server = ResilientFastAPI(self._system)

    @property
    def server(self) -> ResilientFastAPI:
        """The server API, for what a client has no method for: tenants, databases, and collections by model
        (chroma-ops move-tenant)."""
        return self._resilient_server
