"""The node's start, end to end with real processes: the entrypoint takes the writer lock, the gateway checks the
directory while Chroma waits, Chroma starts, and a collection with a torn index is refused, loudly, while the others
serve. A directory that cannot be read, or no verdict, keeps Chroma from starting at all.
"""

from __future__ import annotations

import contextlib
import json
import shutil
import sqlite3
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import chromadb
import pytest
from chromadb.config import Settings as ChromaSettings

from cdk_app.node.tests.nodes import Node, node
from gateway import integrity, node_start
from gateway import settings as gw
from gateway.local import LOOPBACK, Server, chroma_server, free_port, gateway_server
from gateway.tests.test_proxy import _wait_for as wait_for

pytestmark = pytest.mark.servers

TOKEN = "start-check-token-0123456789"  # noqa: S105 - loopback-only test token
HNSW = {"sync_threshold": 100, "batch_size": 100}


def _vectors(start: int, count: int) -> tuple[list[str], list[list[float]]]:
    return [f"r{i}" for i in range(start, start + count)], [[float(i), float(i % 7), 1.0] for i in
                                                              range(start, start + count)]


def _vector_segment(data: Path, collection: str) -> Path:
    db = sqlite3.connect(data / "chroma.sqlite3")
    try:
        (segment,) = db.execute("SELECT s.id FROM segments s JOIN collections c ON c.id = s.collection "
                                "WHERE c.name = ? AND s.scope = 'VECTOR'", (collection,)).fetchone()
    finally:
        db.close()
    return data / str(segment)


def make_node_directory(data: Path) -> None:
    """Two collections; `torn`'s index is then left as a kill -9 between a save's index files and its id map leaves
    it (newer index files, older id map), the signature the kill loop (gateway.crash_trials) produces."""
    with chroma_server(data) as server:
        api = chromadb.HttpClient(host=LOOPBACK, port=server.port, settings=ChromaSettings(anonymized_telemetry=False))
        for name in ("healthy", "torn"):
            api.create_collection(name, configuration={"hnsw": HNSW}).add(*_vectors(0, 300))
    older_id_map = (_vector_segment(data, "torn") / integrity.ID_MAP_FILE).read_bytes()
    with chroma_server(data) as server:
        api = chromadb.HttpClient(host=LOOPBACK, port=server.port, settings=ChromaSettings(anonymized_telemetry=False))
        api.get_collection("torn").add(*_vectors(300, 100))
    (_vector_segment(data, "torn") / integrity.ID_MAP_FILE).write_bytes(older_id_map)


@pytest.fixture(scope="module")
def node_directory(tmp_path_factory: pytest.TempPathFactory) -> Path:
    data = tmp_path_factory.mktemp("start-check") / "template"
    make_node_directory(data)
    return data


@pytest.fixture
def data(node_directory: Path, tmp_path: Path) -> Path:
    copy = tmp_path / "node-data"
    shutil.copytree(node_directory, copy)
    return copy


def test_the_check_quarantines_the_torn_collection_and_passes_the_healthy_one(data: Path) -> None:
    report = integrity.check(data)
    verdicts = {v.name: v for v in report.collections}
    assert verdicts["healthy"].problem is None and verdicts["healthy"].records == 300
    assert "a save was cut short" in str(verdicts["torn"].problem)
    assert [v.name for v in report.quarantined] == ["torn"]


def request(port: int, path: str) -> tuple[int, dict[str, object]]:
    call = urllib.request.Request(f"http://{LOOPBACK}:{port}{path}", headers={"X-Chroma-Token": TOKEN})
    try:
        with urllib.request.urlopen(call, timeout=10) as answer:  # noqa: S310 - loopback
            return int(answer.status), json.loads(answer.read() or b"null")
    except urllib.error.HTTPError as error:
        return int(error.code), json.loads(error.read() or b"null")


@contextlib.contextmanager
def started_node(data: Path, start_dir: Path, check_wait: int = 60) -> Iterator[Node]:
    start_dir.mkdir(exist_ok=True)
    with node(data, NODE_START_DIR=str(start_dir), START_CHECK_WAIT_SECONDS=str(check_wait)) as chroma:
        yield chroma


@contextlib.contextmanager
def checking_gateway(data: Path, start_dir: Path, chroma_port: int, wait_ready: bool = True) -> Iterator[Server]:
    env = {gw.ENV_TOKENS: TOKEN, gw.ENV_NODE_DATA_DIR: str(data), gw.ENV_NODE_START_DIR: str(start_dir),
           gw.ENV_DISK_METRICS_SECONDS: "1", gw.ENV_START_CHECK_WAIT_SECONDS: "60"}
    with gateway_server(f"http://{LOOPBACK}:{chroma_port}", start_dir.parent, env, timeout=90,
                        wait_ready=wait_ready) as gateway:
        yield gateway


def test_chroma_starts_after_the_check_and_the_torn_collection_is_refused(data: Path, tmp_path: Path) -> None:
    start_dir = tmp_path / "node-start"
    with started_node(data, start_dir) as chroma:
        wait_for(lambda: "writer_lock_acquired" in chroma.events(), timeout=30)
        assert not chroma.serving()  # holding the lock, waiting for the verdict: Chroma has not started
        with checking_gateway(data, start_dir, chroma.port) as gateway:
            assert chroma.events()[:3] == ["writer_lock_acquired", "start_check_passed", "chroma_starting"]
            status, ready = request(gateway.port, gw.READINESS_PATH)
            assert status == 200
            assert isinstance(ready, dict)
            quarantined = ready["quarantined_collections"]
            assert isinstance(quarantined, list) and [q["name"] for q in quarantined] == ["torn"]
            torn_id = quarantined[0]["id"]
            api = chromadb.HttpClient(host=LOOPBACK, port=gateway.port, headers={"X-Chroma-Token": TOKEN},
                                      settings=ChromaSettings(anonymized_telemetry=False))
            assert api.get_collection("healthy").count() == 300
            torn = api.get_collection("torn")  # its metadata is readable: operators can see what is out
            assert torn.id.hex == torn_id.replace("-", "")
            base = f"/api/v2/tenants/default_tenant/databases/default_database/collections/{torn_id}"
            for path in (f"{base}/count", f"{base}/get"):
                status, body = request(gateway.port, path)
                assert status == 503 and isinstance(body, dict) and body["error"] == "CollectionQuarantined"
            with pytest.raises(Exception, match=r"quarantined|503"):
                torn.add(ids=["new"], embeddings=[[1.0, 2.0, 3.0]])
            log = gateway.log()
            event = next(json.loads(line) for line in log.splitlines() if '"collection_quarantined"' in line)
            assert event["collection"] == "torn" and "cut short" in event["problem"]
            wait_for(lambda: '"QuarantinedCollections": 1' in gateway.log(), timeout=10)
            metrics = next(json.loads(line) for line in gateway.log().splitlines() if '"type": "node"' in line)
            assert metrics["SqliteBytes"] > 0 and metrics["IndexBytes"] > 0 and metrics["LogRows"] >= 0
            assert (start_dir / node_start.REPORT).exists()
            # The healthy index is remembered, so the next start reads only what was written since; the torn one
            # is not, so it is read (and refused) again.
            remembered = json.loads((data / integrity.VERIFIED_FILE).read_text())
            assert list(remembered) == [v.segment_id for v in integrity.check(data).collections if v.name == "healthy"]


def test_an_unreadable_directory_keeps_chroma_from_starting(data: Path, tmp_path: Path) -> None:
    (data / "chroma.sqlite3").write_bytes(b"this is not a database" * 100)
    start_dir = tmp_path / "node-start"
    with started_node(data, start_dir) as chroma:
        with pytest.raises(RuntimeError, match=r"(?s)gateway exited with 4.*start_check_failed.*not a database"), \
                checking_gateway(data, start_dir, free_port(), wait_ready=False):
            pass
        assert chroma.process.wait(30) == 78
        assert chroma.events()[-1] == "start_check_failed" and "chroma_starting" not in chroma.events()


def test_no_verdict_in_time_keeps_chroma_from_starting(data: Path, tmp_path: Path) -> None:
    """No gateway (it never started, or died): the entrypoint does not start Chroma unchecked."""
    with started_node(data, tmp_path / "node-start", check_wait=2) as chroma:
        assert chroma.process.wait(30) == 78
        assert chroma.events()[-1] == "start_check_timeout" and not chroma.serving()
