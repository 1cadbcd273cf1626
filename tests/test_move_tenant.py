"""Scale-out by tenant end to end on loopback (issue #14): two real Chroma nodes behind two real gateways, a stand-in
for the load balancer that applies the synthesized listener rules, the production client writing to tenants on
both nodes, and a tenant moved from one node to the other under read and write load: zero failed reads, zero failed
writes, no record lost. The "deploy" that switches the placement applies the second synthesized template: the
stand-in takes its rules first (the services depend on the rules), then each node restarts with the placement its
task definition holds."""

from __future__ import annotations

import contextlib
import json
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import boto3
import chromadb
import pytest

from cdk_app.config import PRIMARY_NODE, EnvironmentConfig, NodeConfig
from cdk_app.environments import DEV
from cdk_app.node.names import NodeNames
from chroma_on_aws_client import ClientOptions, RetryPolicy, connect
from chroma_on_aws_client.api import ResilientClient
from chroma_on_aws_client.tokens import StaticToken
from gateway import settings as gw
from gateway.local import Server, chroma_server, gateway_server
from gateway.tests.conftest import TOKEN, aws_settings, running_moto
from ops import move_tenant
from ops.cli import main
from ops.errors import OpsError
from tests.alb_standin import AlbStandIn, routing_from_template
from tests.cdk_support import synthesize

pytestmark = [pytest.mark.servers, pytest.mark.synth]
BEFORE = replace(DEV, name="pair", nodes=(NodeConfig(PRIMARY_NODE, tenants=("acme",)),
                                          NodeConfig("search", tenants=("globex",))))
AFTER = replace(BEFORE, nodes=(NodeConfig(PRIMARY_NODE), NodeConfig("search", tenants=("globex", "acme"))))
PLACEMENT_SETTINGS = (gw.ENV_NODE_TENANTS, gw.ENV_TENANTS_ELSEWHERE, gw.ENV_DEFAULT_NODE, gw.ENV_NODE,
                      gw.ENV_SNAPSHOT_PREFIX)
DIM = 16


@dataclass
class Deployed:
    compute: dict[str, Any]
    config: EnvironmentConfig

    def gateway_settings(self, node: str) -> dict[str, str]:
        task = self.compute["Resources"][NodeNames(node).logical_id("Task")]["Properties"]
        gateway = next(c for c in task["ContainerDefinitions"] if c["Name"] == "gateway")
        return {v["Name"]: v["Value"] for v in gateway["Environment"] if v["Name"] in PLACEMENT_SETTINGS}


def deployed(config: EnvironmentConfig, outdir: Path) -> Deployed:
    app = synthesize({config.name: config}, outdir)
    return Deployed(app.template_json(config.name, "Compute"), config)


@dataclass
class Cluster:
    """The two nodes: each a Chroma server and the gateway in front of it, restartable like an ECS task."""

    work: Path
    aws: dict[str, str]
    bucket: str
    chroma: dict[str, Server]
    gateways: dict[str, Server] = field(default_factory=dict)
    stack: contextlib.ExitStack = field(default_factory=contextlib.ExitStack)

    def start_gateway(self, node: str, settings: dict[str, str], port: int | None = None) -> Server:
        env = {gw.ENV_TOKENS: TOKEN, gw.ENV_SNAPSHOT_BUCKET: self.bucket, gw.ENV_SNAPSHOT_POLL_SECONDS: "0.2",
               **self.aws, **settings}
        context = gateway_server(self.chroma[node].url, self.work / node, env, port=port)
        self.gateways[node] = self.stack.enter_context(context)
        return self.gateways[node]

    def restart_gateway(self, node: str, settings: dict[str, str]) -> None:
        """ECS's stop-then-start of a node whose task definition changed: same target port."""
        port = self.gateways[node].port
        self.gateways[node].stop()
        self.start_gateway(node, settings, port)


@contextlib.contextmanager
def two_nodes(tmp_path: Path, before: Deployed) -> Iterator[Cluster]:
    with contextlib.ExitStack() as stack:
        moto = stack.enter_context(running_moto(tmp_path))
        aws = aws_settings(moto.url)
        bucket = "chroma-pair-requests"
        boto3.client("s3", endpoint_url=moto.url, region_name="us-east-1", aws_access_key_id="testing",
                     aws_secret_access_key="testing").create_bucket(Bucket=bucket)
        chroma = {node: stack.enter_context(chroma_server(tmp_path / f"chroma-{node}" / "data"))
                  for node in (PRIMARY_NODE, "search")}
        cluster = Cluster(tmp_path, aws, bucket, chroma)
        stack.enter_context(cluster.stack)
        for node in chroma:
            (tmp_path / node).mkdir()
            cluster.start_gateway(node, before.gateway_settings(node))
        yield cluster


def vector(i: int) -> list[float]:
    return [((i * 7919 + k * 104729) % 1000) / 1000.0 for k in range(DIM)]


@dataclass
class Load:
    """Readers of the moving tenant and writers to both tenants, through the stand-in with the production client."""

    endpoint: str
    stop: threading.Event = field(default_factory=threading.Event)
    reads: int = 0
    failed_reads: list[str] = field(default_factory=list)
    acknowledged: dict[str, list[str]] = field(default_factory=lambda: {"acme": [], "globex": []})
    failed_writes: list[str] = field(default_factory=list)

    def client(self, tenant: str) -> chromadb.api.ClientAPI:
        return connect(endpoint=self.endpoint, token=TOKEN, tenant=tenant,
                       options=ClientOptions(retry=RetryPolicy(budget_seconds=170.0)))

    def read(self) -> None:
        docs = self.client("acme").get_collection("docs")
        while not self.stop.is_set():
            try:
                docs.query(query_embeddings=[vector(3)], n_results=5)
                docs.get(ids=["acme-0", "acme-1"])
                docs.count()
                self.reads += 3
            except Exception as error:  # every failure is a finding
                self.failed_reads.append(repr(error))
            time.sleep(0.02)

    def write(self, tenant: str) -> None:
        docs = self.client(tenant).get_collection("docs")
        n = 0
        while not self.stop.is_set():
            ids = [f"{tenant}-live-{n}-{k}" for k in range(5)]
            try:
                docs.add(ids=ids, embeddings=[vector(1000 + n * 5 + k) for k in range(5)],
                         documents=[f"live {i}" for i in ids])
                self.acknowledged[tenant] += ids
            except Exception as error:
                self.failed_writes.append(repr(error))
            n += 1
            time.sleep(0.05)


def seed(endpoint: str) -> None:
    for tenant, records in (("acme", 1200), ("globex", 300)):
        client = connect(endpoint=endpoint, token=TOKEN, tenant=tenant)
        docs = client.create_collection("docs", metadata={"owner": tenant},
                                        configuration={"hnsw": {"space": "cosine", "ef_construction": 120}})
        docs.add(ids=[f"{tenant}-{i}" for i in range(records)], embeddings=[vector(i) for i in range(records)],
                 documents=[f"doc {i}" for i in range(records)], metadatas=[{"i": i} for i in range(records)])
    acme_admin = connect(endpoint=endpoint, token=TOKEN, tenant="acme")
    assert isinstance(acme_admin, ResilientClient)
    acme_admin.server.create_database("archive", tenant="acme")
    archive = connect(endpoint=endpoint, token=TOKEN, tenant="acme", database="archive")
    archive.create_collection("old").add(ids=["old-1"], embeddings=[vector(1)], uris=["s3://bucket/old-1"])


def test_a_tenant_moves_under_load_with_no_failed_read_and_no_lost_record(tmp_path: Path) -> None:
    before, after = deployed(BEFORE, tmp_path / "before"), deployed(AFTER, tmp_path / "after")
    with two_nodes(tmp_path, before) as cluster:
        standin = AlbStandIn(routing_from_template(before.compute, BEFORE),
                             {node: server.port for node, server in cluster.gateways.items()})
        with standin.running():
            seed(standin.url)
            assert standin.routed == {PRIMARY_NODE: standin.routed[PRIMARY_NODE], "search": standin.routed["search"]}
            load = Load(standin.url)
            threads = [threading.Thread(target=load.read, daemon=True),
                       threading.Thread(target=load.write, args=("acme",), daemon=True),
                       threading.Thread(target=load.write, args=("globex",), daemon=True)]
            for thread in threads:
                thread.start()
            cluster.stack.callback(load.stop.set)  # stopped however the test ends
            time.sleep(1.0)
            s3 = boto3.client("s3", endpoint_url=cluster.aws["AWS_ENDPOINT_URL"], region_name="us-east-1",
                              aws_access_key_id="testing", aws_secret_access_key="testing")
            state_path = tmp_path / "move.json"
            state = move_tenant.new_state("pair", "acme", PRIMARY_NODE, "search", time.time())
            mover = move_tenant.Mover(move_tenant.Target(standin.url, StaticToken(TOKEN), s3, cluster.bucket),
                                      state, state_path, print, lambda *_: None, answer_timeout=60,
                                      route_timeout=120)
            plan = mover.plan()
            assert plan.records >= 1201 and plan.bytes > plan.records * DIM * 4  # the writers have added some
            result: dict[str, Any] = {}
            operator = threading.Thread(target=lambda: result.update(state=mover.run()), daemon=True)
            operator.start()
            # The operator's deploy, once the tool asks for it: the rules first, then each node restarts.
            deadline = time.monotonic() + 120
            while state.phase != "switch":
                assert time.monotonic() < deadline and operator.is_alive(), state
                time.sleep(0.1)
            held_at = time.monotonic()
            standin.routing = routing_from_template(after.compute, AFTER)
            for node in ("search", PRIMARY_NODE):
                cluster.restart_gateway(node, after.gateway_settings(node))
            operator.join(timeout=120)
            assert result["state"].phase == "done"
            time.sleep(1.0)
            load.stop.set()
            for thread in threads:
                thread.join(timeout=200)
            print(f"reads {load.reads}, writes acknowledged {len(load.acknowledged['acme'])} (acme) "
                  f"{len(load.acknowledged['globex'])} (globex); switch to done {time.monotonic() - held_at:.1f} s; "
                  f"verified {result['state'].verified}")

            assert load.failed_reads == [] and load.reads > 100
            assert load.failed_writes == []
            assert result["state"].verified["problems"] == [] and result["state"].verified["recall"] >= 0.95
            # No record lost: every acknowledged write is on the node that now owns its tenant, through the endpoint.
            for tenant, seeded in (("acme", 1200), ("globex", 300)):
                docs = connect(endpoint=standin.url, token=TOKEN, tenant=tenant).get_collection("docs")
                acknowledged = load.acknowledged[tenant]
                assert acknowledged, tenant
                assert docs.count() == seeded + len(acknowledged)
                assert len(docs.get(ids=acknowledged)["ids"]) == len(acknowledged)
            acme_on_search = chromadb.HttpClient(host="127.0.0.1", port=cluster.chroma["search"].port,
                                                 tenant="acme", database="archive")
            assert acme_on_search.get_collection("old").get(include=["uris"])["uris"] == ["s3://bucket/old-1"]
            moved = chromadb.HttpClient(host="127.0.0.1", port=cluster.chroma["search"].port, tenant="acme")
            assert moved.get_collection("docs").metadata == {"owner": "acme"}
            assert moved.get_collection("docs").configuration_json["hnsw"]["space"] == "cosine"
            # The source's copy is kept; the source node now refuses the tenant (421), its Chroma still has it.
            source = chromadb.HttpClient(host="127.0.0.1", port=cluster.chroma[PRIMARY_NODE].port, tenant="acme")
            assert source.get_collection("docs").count() >= 1200
            # Both nodes' control documents are empty again.
            for node in (PRIMARY_NODE, "search"):
                control = json.loads(s3.get_object(Bucket=cluster.bucket, Key=f"nodes/{node}/tenant-moves.json")[
                    "Body"].read())
                assert control["held"] == [] and control["incoming"] == []
            # The operator deletes the source copy: only its databases on the source go; the tenant's data serves.
            assert sorted(move_tenant.delete_source_copy(mover)) == ["archive", "default_database"]
            with pytest.raises(Exception, match="does not exist"):
                source.get_collection("docs")
            docs = connect(endpoint=standin.url, token=TOKEN, tenant="acme").get_collection("docs")
            assert docs.count() == 1200 + len(load.acknowledged["acme"])
            control = json.loads(s3.get_object(Bucket=cluster.bucket, Key=f"nodes/{PRIMARY_NODE}/tenant-moves.json")[
                "Body"].read())
            assert control["incoming"] == []


def test_a_move_resumes_after_a_failure_and_refuses_to_switch_on_a_bad_copy(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    before = deployed(BEFORE, tmp_path / "before")
    with two_nodes(tmp_path, before) as cluster:
        standin = AlbStandIn(routing_from_template(before.compute, BEFORE),
                             {node: server.port for node, server in cluster.gateways.items()})
        with standin.running():
            seed(standin.url)
            # The CLI's dry run sizes the move and its pause, and changes nothing.
            monkeypatch.setattr("ops.cli._environments", lambda: {"pair": BEFORE})
            for key, value in cluster.aws.items():
                monkeypatch.setenv(key, value)
            dry = ["move-tenant", "--env", "pair", "--tenant", "acme", "--to", "search", "--dry-run", "--endpoint",
                   standin.url, "--token", TOKEN, "--bucket", cluster.bucket, "--state", str(tmp_path / "dry.json")]
            assert main(dry) == 0
            out = capsys.readouterr().out
            assert "move 'acme' from primary to search in pair" in out and "1,201 records" in out
            assert "writes to 'acme' held for ~" in out and "planned maintenance" in out
            assert not (tmp_path / "dry.json").exists()
            s3 = boto3.client("s3", endpoint_url=cluster.aws["AWS_ENDPOINT_URL"], region_name="us-east-1",
                              aws_access_key_id="testing", aws_secret_access_key="testing")
            state_path = tmp_path / "move.json"
            state = move_tenant.new_state("pair", "acme", PRIMARY_NODE, "search", time.time())
            target = move_tenant.Target(standin.url, StaticToken(TOKEN), s3, cluster.bucket)
            pages: list[int] = []

            def progress(label: str, done: int, total: int) -> None:
                pages.append(done)
                if done > move_tenant.PAGE:  # a page of docs is copied: fail, as a lost connection would
                    raise KeyboardInterrupt

            with pytest.raises(KeyboardInterrupt):
                move_tenant.Mover(target, state, state_path, print, progress, answer_timeout=60).run()
            saved = move_tenant.MoveState.load(state_path)
            assert saved.phase == "copy" and saved.copied == {"archive/old": 1,
                                                              "default_database/docs": move_tenant.PAGE}
            # A write lands on the destination behind the tool's back: verification must refuse the switch.
            intruder = connect(endpoint=standin.url, token=TOKEN, tenant="acme",
                               options=ClientOptions(node="search"))
            resumed_pages: list[int] = []
            resumed = move_tenant.Mover(target, saved, state_path, print,
                                        lambda label, done, total: resumed_pages.append(done), answer_timeout=60,
                                        route_timeout=1)
            resumed.copy()
            assert resumed_pages == [501, 1001, 1201]  # went on from the saved page: none copied twice
            intruder.get_collection("docs").add(ids=["intruder"], embeddings=[vector(5)])
            resumed.state.phase = "verify"  # as run() would, after the copy
            with pytest.raises(OpsError, match="1 extra"):
                resumed.verify()
            # A rerun starts the copy again (and then verifies): what the message says to do.
            assert move_tenant.MoveState.load(state_path).phase == "copy"
            assert move_tenant.MoveState.load(state_path).copied == {}
            # Writes to the tenant stay held on the source while the move is unfinished.
            writer = connect(endpoint=standin.url, token=TOKEN, tenant="acme",
                             options=ClientOptions(retry=RetryPolicy(budget_seconds=1.0)))
            with pytest.raises(Exception, match="WritesPaused"):
                writer.get_collection("docs").add(ids=["late"], embeddings=[vector(6)])
            assert writer.get_collection("docs").count() == 1200  # reads go on
            # Its source copy cannot be deleted: the move is not finished.
            with pytest.raises(OpsError, match="at step 'copy': finish it"):
                move_tenant.delete_source_copy(resumed)  # the failed verification sent it back to the copy
            # A second move touching the same nodes is refused while this one is unfinished.
            other = move_tenant.new_state("pair", "globex", "search", PRIMARY_NODE, time.time() + 1)
            with pytest.raises(OpsError, match="part of another tenant move"):
                move_tenant.Mover(target, other, tmp_path / "other.json", print, lambda *_: None).hold()
