"""The start check against directories written by a real Chroma, each damaged one way, and the kill -9 loop.

Each damage is one a crash or a bad copy leaves; the check must name it (and nothing in a healthy directory).
The loop (gateway.crash_trials) is the proof: CRASH_TRIALS kills (default 30) during writes, read back against the
client's ledger; it fails on any broken collection the check passed, and when too few kills broke anything.
"""

from __future__ import annotations

import json
import os
import pickle
import shutil
import sqlite3
import struct
from collections.abc import Callable
from pathlib import Path

import chromadb
import pytest
from chromadb.config import Settings as ChromaSettings

from gateway import crash_trials, integrity
from gateway.local import LOOPBACK, chroma_server

pytestmark = pytest.mark.servers

RECORDS = 300
# CI runs the defaults: 30 kills at least, and more (up to 60) until 3 of them broke a collection.
CRASH_TRIALS = int(os.environ.get("CRASH_TRIALS", "30"))
CRASH_MIN_TORN = int(os.environ.get("CRASH_MIN_TORN", "3"))


@pytest.fixture(scope="module")
def saved(tmp_path_factory: pytest.TempPathFactory) -> Path:
    data = tmp_path_factory.mktemp("integrity") / "data"
    with chroma_server(data) as server:
        api = chromadb.HttpClient(host=LOOPBACK, port=server.port, settings=ChromaSettings(anonymized_telemetry=False))
        collection = api.create_collection("docs", configuration={"hnsw": {"sync_threshold": 100, "batch_size": 100}})
        collection.add(ids=[f"r{i}" for i in range(RECORDS)],
                       embeddings=[[float(i), float(i % 13), float(i % 5)] for i in range(RECORDS)])
        collection.delete(ids=["r7"])  # a deleted element stays in the index, flagged
    return data


@pytest.fixture
def data(saved: Path, tmp_path: Path) -> Path:
    return Path(shutil.copytree(saved, tmp_path / "data"))


def segment(data: Path) -> Path:
    (directory,) = [p for p in data.iterdir() if p.is_dir()]
    return directory


def problem(data: Path) -> str:
    (verdict,) = integrity.check(data).collections
    return str(verdict.problem)


def test_a_healthy_directory_passes(data: Path) -> None:
    report = integrity.check(data)
    (verdict,) = report.collections
    assert verdict.problem is None and verdict.records == RECORDS - 1 and report.quarantined == ()
    assert report.disk.sqlite_bytes > 0 and report.disk.index_bytes > 0 and report.disk.log_rows is not None


def _header(data: Path) -> tuple[int, ...]:
    return integrity._HEADER.unpack_from((segment(data) / integrity.HEADER_FILE).read_bytes())


def _patch(path: Path, offset: int, value: bytes) -> None:
    content = bytearray(path.read_bytes())
    content[offset:offset + len(value)] = value
    path.write_bytes(bytes(content))


def truncate_data(data: Path) -> None:
    path = segment(data) / integrity.DATA_FILE
    path.write_bytes(path.read_bytes()[:-100])


def duplicate_label(data: Path) -> None:
    stride, label_offset = _header(data)[4], _header(data)[5]
    path = segment(data) / integrity.DATA_FILE
    first_label = path.read_bytes()[label_offset:label_offset + 8]
    _patch(path, stride + label_offset, first_label)


def link_outside(data: Path) -> None:
    _patch(segment(data) / integrity.DATA_FILE, 4, struct.pack("<I", 10_000_000))


def newer_index_than_id_map(data: Path) -> None:
    """What a kill between the index files and the id map leaves: the header counts elements the map lacks."""
    id_map_path = segment(data) / integrity.ID_MAP_FILE
    id_map = pickle.loads(id_map_path.read_bytes())  # noqa: S301 - our own test fixture
    id_map["total_elements_added"] -= 1
    id_map_path.write_bytes(pickle.dumps(id_map))


def torn_id_map(data: Path) -> None:
    path = segment(data) / integrity.ID_MAP_FILE
    path.write_bytes(path.read_bytes()[:200])


def id_map_with_code(data: Path) -> None:
    (segment(data) / integrity.ID_MAP_FILE).write_bytes(pickle.dumps(os.getcwd))


def id_map_missing(data: Path) -> None:
    (segment(data) / integrity.ID_MAP_FILE).unlink()


def header_garbage(data: Path) -> None:
    (segment(data) / integrity.HEADER_FILE).write_bytes(b"\x00" * 100)


def record_missing_from_index(data: Path) -> None:
    """Chroma's records say a record exists that neither the index nor the unapplied log has."""
    db = sqlite3.connect(data / "chroma.sqlite3")
    with db:
        (metadata,) = db.execute("SELECT id FROM segments WHERE scope = 'METADATA'").fetchone()
        db.execute("INSERT INTO embeddings (segment_id, embedding_id, seq_id) VALUES (?, 'ghost', 1)", (metadata,))
    db.close()


DAMAGES: dict[str, tuple[Callable[[Path], None], str]] = {
    "data file cut short": (truncate_data, "the header needs"),
    "two elements with one label": (duplicate_label, "another element carries"),
    "a link outside the index": (link_outside, "links outside the index"),
    "index newer than its id map": (newer_index_than_id_map, "a save was cut short"),
    "id map cut short": (torn_id_map, "unreadable"),
    "id map that would run code": (id_map_with_code, "not a Chroma id map"),
    "id map missing": (id_map_missing, f"has no {integrity.ID_MAP_FILE}"),
    "header zeroed": (header_garbage, "not a consistent index header"),
    "a record the index lacks": (record_missing_from_index, "1 missing, e.g. ['ghost']"),
}


@pytest.mark.parametrize("damage", DAMAGES)
def test_each_damage_is_named(data: Path, damage: str) -> None:
    apply, expected = DAMAGES[damage]
    apply(data)
    assert expected in problem(data)


def test_the_log_not_yet_applied_counts_as_part_of_the_index(data: Path) -> None:
    """Records written after the last save are in the log only; that is normal, not damage."""
    with chroma_server(data) as server:
        api = chromadb.HttpClient(host=LOOPBACK, port=server.port, settings=ChromaSettings(anonymized_telemetry=False))
        api.get_collection("docs").add(ids=["late1", "late2"], embeddings=[[0.5, 0.5, 0.5], [0.25, 0.5, 1.0]])
    report = integrity.check(data)
    (verdict,) = report.collections
    assert verdict.problem is None and verdict.records == RECORDS + 1
    assert report.disk.log_rows is not None and report.disk.log_rows >= 2


def _remember(data: Path) -> None:
    (data / integrity.VERIFIED_FILE).write_text(json.dumps(integrity.check(data).verified()))


def test_an_index_unchanged_since_it_passed_is_not_read_again_element_by_element(data: Path) -> None:
    _remember(data)
    (verdict,) = integrity.check(data).collections
    assert verdict.problem is None and not verdict.scanned and verdict.signature


def test_an_index_written_since_it_passed_is_read_again(data: Path) -> None:
    _remember(data)
    link_outside(data)  # writing the file changes its size or modification time
    (verdict,) = integrity.check(data).collections
    assert verdict.scanned and "links outside the index" in str(verdict.problem) and not verdict.signature


def test_a_remembered_list_that_cannot_be_read_means_scanning_everything(data: Path) -> None:
    (data / integrity.VERIFIED_FILE).write_text("{not json")
    (verdict,) = integrity.check(data).collections
    assert verdict.scanned and verdict.problem is None


def test_kill_9_during_writes_never_leaves_a_broken_collection_undetected() -> None:
    lines: list[str] = []
    outcome = crash_trials.run(trials=CRASH_TRIALS, records=10_000, dim=64, seed=1, log=lines.append,
                               min_torn=CRASH_MIN_TORN, max_trials=2 * CRASH_TRIALS)
    print("\n".join(lines) + "\n" + outcome.summary())  # the figures, in the test log (pytest -s or on failure)
    assert outcome.failures == [], "\n".join(outcome.failures)
    assert outcome.trials >= CRASH_TRIALS
    assert outcome.torn_trials >= CRASH_MIN_TORN, f"too few kills broke a collection: {outcome.summary()}"
