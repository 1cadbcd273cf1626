"""chroma-ops move-tenant: move one tenant to another node of its environment (issue #14), resumably.

The steps, each recorded in a state file so a rerun after any failure goes on where it stopped:
1. hold   the source node holds the tenant's writes (reads go on) and the destination accepts the tenant
          (gateway/tenant_moves.py: a control document per node in the requests bucket, answered once applied);
2. copy   databases, collections (configuration, metadata) and records (ids, embeddings, documents, metadatas,
          uris) through Chroma's API, each request addressed to its node (X-Chroma-Node); pages are upserts, so
          a page sent twice after a resume changes nothing;
3. verify counts, the full id sets, a sample of records field by field, and a sample of queries returning the same
          neighbours on both nodes;
4. switch the placement is config: the tool prints the change to make in cdk_app/environments.py and the deploy to
          run, then waits until the endpoint routes the tenant to the destination and the destination's deployed
          placement owns it (the load balancer's rules change before any node restarts: cdk_app/node/routing.py);
5. release both control documents are emptied. The source's copy stays until the operator deletes it
          (`--delete-source-copy`, once the destination holds every record the source has).

Writes to the tenant are refused (503 WritesPaused, which the production client retries for 180 s) from the hold
until the route changes: the dry run estimates that pause. It is planned maintenance (README).
"""

from __future__ import annotations

import dataclasses
import json
import math
import random
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx

from cdk_app.constants import recovery_point_prefix
from gateway.settings import NODE_HEADER
from gateway.tenant_moves import MoveControl, answer_key, control_body, control_key
from ops.errors import OpsError, UsageError
from ops.restore_verdict import read as read_json  # a JSON answer in S3, or None while there is none
from ops.waiting import wait_until

if TYPE_CHECKING:
    from chromadb.api import ClientAPI
    from mypy_boto3_s3 import S3Client

    from chroma_on_aws_client.api import ResilientFastAPI
    from chroma_on_aws_client.tokens import TokenSource

PHASES = ("hold", "copy", "verify", "switch", "release", "done")
PAGE = 500
SAMPLE_QUERIES = 20
NEIGHBOURS = 5
# HNSW is approximate: two indexes built in a different order may order near-ties differently.
MIN_RECALL = 0.95
ANSWER_POLL_SECONDS = 0.5
ROUTE_POLL_SECONDS = 2.0


@dataclass
class MoveState:
    """What a rerun needs to go on: written after every step and every copied page."""

    move_id: str
    environment: str
    tenant: str
    source: str
    destination: str
    phase: str = "hold"
    copied: dict[str, int] = field(default_factory=dict)  # "<database>/<collection>" -> records copied
    # Collection id on the source -> id of its copy (Chroma gives a new one): the destination's gateway answers
    # requests naming the old id (gateway/tenant_moves.py), so clients that hold a collection keep working.
    aliases: dict[str, str] = field(default_factory=dict)
    verified: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def load(cls, path: Path) -> MoveState:
        return cls(**json.loads(path.read_text()))

    def save(self, path: Path) -> None:
        temporary = path.with_suffix(".tmp")
        temporary.write_text(json.dumps(dataclasses.asdict(self), indent=1, sort_keys=True))
        temporary.replace(path)


@dataclass(frozen=True)
class Target:
    """Where the environment is: its endpoint and token, and the bucket of the nodes' control documents."""

    endpoint: str
    tokens: TokenSource
    s3: S3Client
    bucket: str


@dataclass(frozen=True)
class CollectionPlan:
    database: str
    name: str
    records: int
    bytes_per_record: int = 0  # sampled by the plan (dry run) only

    @property
    def key(self) -> str:
        return f"{self.database}/{self.name}"


@dataclass(frozen=True)
class Plan:
    collections: tuple[CollectionPlan, ...]
    read_seconds_per_record: float

    @property
    def records(self) -> int:
        return sum(c.records for c in self.collections)

    @property
    def bytes(self) -> int:
        return sum(c.records * c.bytes_per_record for c in self.collections)

    def pause_seconds(self) -> float:
        """Copy (a read and an upsert per record: twice the measured read) and verification (two reads)."""
        return self.records * self.read_seconds_per_record * 4 + 30


class NodeControl:
    """The nodes' control documents (gateway/tenant_moves.py) and their answers, under each node's prefix of the
    requests bucket."""

    def __init__(self, s3: S3Client, bucket: str) -> None:
        self._s3 = s3
        self._bucket = bucket

    def write(self, node: str, control: MoveControl) -> None:
        """The node's aliases of earlier moves are kept (merged under the new ones)."""
        current = self.current(node) or {}
        control = dataclasses.replace(control, aliases={**current.get("aliases", {}), **control.aliases})
        self._s3.put_object(Bucket=self._bucket, Key=control_key(recovery_point_prefix(node)),
                            Body=control_body(control), ContentType="application/json")

    def current(self, node: str) -> dict[str, Any] | None:
        return read_json(self._s3, self._bucket, control_key(recovery_point_prefix(node)))

    def answer(self, node: str, control_id: str) -> dict[str, Any] | None:
        return read_json(self._s3, self._bucket, answer_key(recovery_point_prefix(node), control_id))

    def wait(self, node: str, control_id: str, until: Callable[[dict[str, Any]], bool], timeout: float,
             what: str) -> dict[str, Any]:
        last: dict[str, Any] = {}

        def answered() -> bool:
            last["answer"] = self.answer(node, control_id)
            return last["answer"] is not None and until(last["answer"])

        if not wait_until(answered, timeout, ANSWER_POLL_SECONDS):
            raise OpsError(f"node {node} did not {what} within {timeout:g} s (control {control_id}; its last "
                           f"answer: {last['answer']}); rerun the same command to go on")
        answer: dict[str, Any] = last["answer"]
        return answer


def owns(answer: dict[str, Any], tenant: str) -> bool:
    """Whether the node's deployed placement (in its answer) has the tenant."""
    placement = answer.get("placement", {})
    return tenant in placement.get("here", ()) or (bool(placement.get("default"))
                                                   and tenant not in placement.get("elsewhere", ()))


class Mover:
    def __init__(self, target: Target, state: MoveState, state_path: Path,
                 say: Callable[[str], None], progress: Callable[[str, int, int], None],
                 answer_timeout: float = 300.0, route_timeout: float = 3600.0) -> None:
        self.target, self.state, self.state_path = target, state, state_path
        self.say, self.progress = say, progress
        self.control = NodeControl(target.s3, target.bucket)
        self.answer_timeout, self.route_timeout = answer_timeout, route_timeout

    # clients addressed to one node
    def client(self, node: str, database: str = "default_database") -> ClientAPI:
        from chroma_on_aws_client import ClientOptions, connect

        return connect(endpoint=self.target.endpoint, tokens=self.target.tokens,
                       options=ClientOptions(node=node), tenant=self.state.tenant, database=database)

    def server(self, node: str) -> ResilientFastAPI:
        from chroma_on_aws_client.api import ResilientClient

        client = self.client(node)
        assert isinstance(client, ResilientClient)
        return client.server

    # what the source holds
    def inventory(self) -> list[CollectionPlan]:
        """The tenant's collections on the source, with their counts: what copy and verify walk."""
        server, tenant = self.server(self.state.source), self.state.tenant
        return [CollectionPlan(database, model.name, self.client(self.state.source, database).get_collection(
                    model.name).count())
                for database in _databases(server, tenant) for model in _collections(server, tenant, database)]

    def plan(self) -> Plan:
        """The inventory, each collection's record size and the read speed measured on a sample (dry run)."""
        collections, read_seconds, read_records = [], 0.0, 0
        for item in self.inventory():
            collection = self.client(self.state.source, item.database).get_collection(item.name)
            started = time.monotonic()
            sample = collection.get(limit=100, include=["embeddings", "documents", "metadatas", "uris"])
            read_seconds += time.monotonic() - started
            read_records += len(sample["ids"])
            collections.append(dataclasses.replace(item, bytes_per_record=_record_bytes(sample)))
        return Plan(tuple(collections), read_seconds / max(read_records, 1))

    # the steps
    def run(self) -> MoveState:
        steps = {"hold": self.hold, "copy": self.copy, "verify": self.verify, "switch": self.switch,
                 "release": self.release}
        while self.state.phase != "done":
            steps[self.state.phase]()
            self.state.phase = PHASES[PHASES.index(self.state.phase) + 1]
            self.state.save(self.state_path)
        return self.state

    def _control_id(self, step: str) -> str:
        return f"{self.state.move_id}-{step}"

    def hold(self) -> None:
        s = self.state
        for node in (s.source, s.destination):
            current = self.control.current(node)
            if current and (current.get("held") or current.get("incoming")) and \
                    not str(current.get("id", "")).startswith(s.move_id):
                raise OpsError(f"node {node} is part of another tenant move ({current['id']}: held "
                               f"{current.get('held')}, incoming {current.get('incoming')}): finish that one first")
        control_id = self._control_id("hold")
        self.control.write(s.destination, MoveControl(control_id, incoming=(s.tenant,)))
        self.control.wait(s.destination, control_id, lambda a: True, self.answer_timeout, "accept the tenant")
        self.control.write(s.source, MoveControl(control_id, held=(s.tenant,)))
        answer = self.control.wait(s.source, control_id, lambda a: True, self.answer_timeout,
                                   "hold the tenant's writes")
        self.say(f"holding writes to {s.tenant} on {s.source} (writes in flight at the answer: "
                 f"{answer.get('writes_in_flight')}); {s.destination} accepts it")

    def copy(self) -> None:
        s = self.state
        source, destination = self.server(s.source), self.server(s.destination)
        try:
            destination.create_tenant(s.tenant)
        except Exception as error:  # chromadb raises its own errors by name: an existing tenant is fine
            if "already exists" not in str(error).lower() and "UniqueConstraint" not in type(error).__name__:
                raise
        inventory = self.inventory()
        total = sum(item.records for item in inventory)
        done = sum(s.copied.values())
        self.progress("copy", done, total)
        databases = set(_databases(destination, s.tenant))
        for item in inventory:
            if item.database not in databases:
                destination.create_database(item.database, tenant=s.tenant)
                databases.add(item.database)
            model = source.get_collection(item.name, tenant=s.tenant, database=item.database)
            copied = destination.create_collection(
                item.name, configuration=_configuration(model), metadata=model.metadata, get_or_create=True,
                tenant=s.tenant, database=item.database)
            s.aliases[str(model.id)] = str(copied.id)
            if copied.configuration_json.get("hnsw") != model.configuration_json.get("hnsw"):
                raise OpsError(f"{item.key}: the destination already has this collection with another "
                               "configuration; delete it there, then rerun")
            reader = self.client(s.source, item.database).get_collection(item.name)
            writer = self.client(s.destination, item.database).get_collection(item.name)
            offset = s.copied.get(item.key, 0)
            while offset < item.records:
                page = reader.get(limit=PAGE, offset=offset,
                                  include=["embeddings", "documents", "metadatas", "uris"])
                if not page["ids"]:
                    break
                writer.upsert(ids=page["ids"], embeddings=page["embeddings"], documents=_present(page["documents"]),
                              metadatas=_present(page["metadatas"]), uris=_present(page["uris"]))
                offset += len(page["ids"])
                s.copied[item.key] = offset
                s.save(self.state_path)
                done += len(page["ids"])
                self.progress("copy", done, total)
        # The copies answer to their old ids before the route changes (clients keep their collection objects).
        control_id = self._control_id("copied")
        self.control.write(s.destination, MoveControl(control_id, incoming=(s.tenant,), aliases=self._aliases()))
        self.control.wait(s.destination, control_id, lambda a: True, self.answer_timeout,
                          "answer to the old collection ids")
        self.say(f"copied {done:,} records in {len(inventory)} collections")

    def verify(self) -> None:
        s = self.state
        rng = random.Random(s.move_id)  # noqa: S311 - which records to sample, not a secret
        problems, checked = [], 0
        recalls = []
        for item in self.inventory():
            reader = self.client(s.source, item.database).get_collection(item.name)
            writer = self.client(s.destination, item.database).get_collection(item.name)
            source_ids, destination_ids = _ids(reader), _ids(writer)
            if source_ids != destination_ids:
                problems.append(f"{item.key}: {len(source_ids - destination_ids)} ids missing on the destination, "
                                f"{len(destination_ids - source_ids)} extra")
                continue
            if not source_ids:
                continue
            sample = rng.sample(sorted(source_ids), min(SAMPLE_QUERIES, len(source_ids)))
            include: Any = ["embeddings", "documents", "metadatas", "uris"]
            before, after = reader.get(ids=sample, include=include), writer.get(ids=sample, include=include)
            left_rows, right_rows = _by_id(before), _by_id(after)
            differing = [i for i in sample if _differences(left_rows[i], right_rows.get(i))]
            if differing:
                fields = _differences(left_rows[differing[0]], right_rows.get(differing[0]))
                problems.append(f"{item.key}: {len(differing)} of {len(sample)} sampled records differ between "
                                f"the nodes ({differing[0]!r} in {', '.join(fields)})")
                continue
            k = min(NEIGHBOURS, len(source_ids))
            embeddings = [row["embedding"] for row in left_rows.values()]
            left = reader.query(query_embeddings=embeddings, n_results=k, include=[])["ids"]
            right = writer.query(query_embeddings=embeddings, n_results=k, include=[])["ids"]
            recalls += [len(set(a) & set(b)) / k for a, b in zip(left, right, strict=True)]
            checked += len(source_ids)
        recall = sum(recalls) / len(recalls) if recalls else 1.0
        s.verified = {"records": checked, "queries": len(recalls), "recall": round(recall, 4),
                      "problems": problems}
        if problems or recall < MIN_RECALL:
            # A rerun copies everything again (upserts: what is there already changes nothing), then verifies.
            s.phase, s.copied = "copy", {}
            s.save(self.state_path)
            raise OpsError(f"verification failed: {problems or f'neighbour recall {recall:.3f} < {MIN_RECALL}'}; "
                           "writes stay held on the source; rerun the same command to copy again and verify (a "
                           "record that is only on the destination must be deleted there first)")
        self.say(f"verified {checked:,} records: ids equal, sampled records equal, {len(recalls)} queries with "
                 f"neighbour recall {recall:.3f}")

    def switch(self) -> None:
        s = self.state
        self.say(f"now change the placement and deploy:\n  in cdk_app/environments.py, environment "
                 f"{s.environment!r}: move {s.tenant!r} from NodeConfig({s.source!r}, tenants=...) to "
                 f"NodeConfig({s.destination!r}, tenants=...)\n  then: npx cdk deploy --all -c "
                 f"environments={s.environment}\nwaiting for the endpoint to route {s.tenant} to {s.destination} "
                 f"(up to {self.route_timeout:g} s)...")
        if not wait_until(lambda: self.routed_to() == s.destination, self.route_timeout, ROUTE_POLL_SECONDS):
            raise OpsError(f"{s.tenant} is still routed to {self.routed_to()}; deploy the placement change, then "
                           "rerun the same command to go on")
        control_id = self._control_id("copied")
        self.control.wait(s.destination, control_id, lambda a: owns(a, s.tenant), self.route_timeout,
                          f"restart with {s.tenant} in its deployed placement")
        self.say(f"{s.tenant} is routed to {s.destination}, which owns it")

    def _aliases(self) -> dict[str, str]:
        """Old id -> id on the destination: the source's ids, and the ids the source itself aliased (a tenant
        moved before keeps the ids its clients first saw)."""
        s = self.state
        earlier = (self.control.current(s.source) or {}).get("aliases", {})
        return {**{old: s.aliases[mid] for old, mid in earlier.items() if mid in s.aliases}, **s.aliases}

    def routed_to(self) -> str | None:
        """The node that answers a request for the tenant through the endpoint, as clients send it."""
        try:
            response = httpx.get(f"{self.target.endpoint}/api/v2/tenants/{self.state.tenant}",
                                 headers={"Authorization": f"Bearer {self.target.tokens.token()}"}, timeout=10)
        except httpx.HTTPError:
            return None
        return response.headers.get(NODE_HEADER) if response.status_code == 200 else None

    def release(self) -> None:
        s = self.state
        control_id = self._control_id("release")
        self.control.write(s.destination, MoveControl(control_id, aliases=self._aliases()))
        self.control.write(s.source, MoveControl(control_id))
        for node in (s.destination, s.source):
            self.control.wait(node, control_id, lambda a: True, self.answer_timeout, "end the move")
        self.say(f"moved {s.tenant} from {s.source} to {s.destination}; the copy on {s.source} is kept until you "
                 "delete it (the same command with --delete-source-copy --yes)")


def delete_source_copy(mover: Mover) -> list[str]:
    """The finished move's source copy: its databases deleted on the source node, once the endpoint routes the
    tenant to the destination and the destination holds every id the source has, collection by collection. The
    source node accepts the tenant only for this (its control document, then emptied again)."""
    s = mover.state
    if s.phase != "done":
        raise OpsError(f"the move of {s.tenant!r} is at step {s.phase!r}: finish it (rerun the same command) first")
    if mover.routed_to() != s.destination:
        raise OpsError(f"{s.tenant!r} is not routed to {s.destination}: the source copy is still the live one")
    control_id = f"{s.move_id}-delete"
    mover.control.write(s.source, MoveControl(control_id, incoming=(s.tenant,)))
    mover.control.wait(s.source, control_id, lambda a: True, mover.answer_timeout, "accept the tenant for deletion")
    try:
        source = mover.server(s.source)
        databases = _databases(source, s.tenant)
        for database in databases:
            for model in _collections(source, s.tenant, database):
                left = _ids(mover.client(s.source, database).get_collection(model.name))
                try:
                    right = _ids(mover.client(s.destination, database).get_collection(model.name))
                except Exception:  # the collection is gone on the destination: keep the source's
                    right = set()
                if not left <= right:
                    raise OpsError(f"{database}/{model.name}: {len(left - right)} records of the source copy are "
                                   f"not on {s.destination}; nothing was deleted")
        for database in databases:
            source.delete_database(database, tenant=s.tenant)
    finally:
        release = f"{s.move_id}-deleted"
        mover.control.write(s.source, MoveControl(release))
        mover.control.wait(s.source, release, lambda a: True, mover.answer_timeout, "end the deletion")
    mover.say(f"deleted the source copy of {s.tenant!r} on {s.source}: databases {', '.join(databases)}")
    return databases


def _present(values: list[Any] | None) -> list[Any] | None:
    """A page's field as upsert takes it: an empty metadata is none (Chroma refuses {}), and a field no record has
    is left out."""
    if values is None:
        return None
    cleaned = [value or None for value in values]
    return cleaned if any(value is not None for value in cleaned) else None


def _all(page: Callable[[int, int], Any], size: int = 100) -> Iterator[Any]:
    offset = 0
    while True:
        items = list(page(size, offset))
        yield from items
        if len(items) < size:
            return
        offset += size


def _databases(server: ResilientFastAPI, tenant: str) -> list[str]:
    return [d["name"] for d in _all(lambda limit, offset: server.list_databases(limit=limit, offset=offset,
                                                                                 tenant=tenant))]


def _collections(server: ResilientFastAPI, tenant: str, database: str) -> Iterator[Any]:
    return _all(lambda limit, offset: server.list_collections(limit=limit, offset=offset, tenant=tenant,
                                                              database=database))


def _ids(collection: Any) -> set[str]:
    ids: set[str] = set()
    offset = 0
    while True:
        page = collection.get(limit=5000, offset=offset, include=[])["ids"]
        ids.update(page)
        if len(page) < 5000:
            return ids
        offset += len(page)


def _by_id(result: Any) -> dict[str, dict[str, Any]]:
    rows = {}
    for i, record_id in enumerate(result["ids"]):
        # An empty metadata and none are the same record (Chroma returns either).
        rows[record_id] = {"embedding": [float(x) for x in result["embeddings"][i]],
                           "document": result["documents"][i], "metadata": result["metadatas"][i] or None,
                           "uri": result["uris"][i]}
    return rows


def _differences(left: dict[str, Any], right: dict[str, Any] | None) -> list[str]:
    """The fields in which two copies of a record differ. Embeddings are float32 in Chroma, sent as decimals: a copy
    may differ in the last place of a value, never more (relative 1e-6)."""
    if right is None:
        return ["presence"]
    fields = [name for name in ("document", "metadata", "uri") if left[name] != right[name]]
    a, b = left["embedding"], right["embedding"]
    if len(a) != len(b) or not all(math.isclose(x, y, rel_tol=1e-6, abs_tol=1e-12) for x, y in zip(a, b,
                                                                                                     strict=True)):
        fields.append("embedding")
    return fields


def _record_bytes(sample: Any) -> int:
    if not sample["ids"]:
        return 0
    rows = _by_id(sample).values()
    total = sum(4 * len(r["embedding"]) + len((r["document"] or "").encode())
                + len(json.dumps(r["metadata"] or {})) + len(r["uri"] or "") + 32 for r in rows)
    return total // len(sample["ids"])


def _configuration(model: Any) -> Any:
    from chromadb.api.collection_configuration import load_collection_configuration_from_json

    return load_collection_configuration_from_json(model.configuration_json)


def new_state(environment: str, tenant: str, source: str, destination: str, now: float) -> MoveState:
    if source == destination:
        raise UsageError(f"--to {destination}: {tenant!r} is already placed on {source!r}")
    return MoveState(move_id=f"move-{int(now)}", environment=environment, tenant=tenant, source=source,
                     destination=destination)
