"""A recovery point never makes a full file system fuller: older copies go first, and a copy the capacity budget
cannot hold is refused before writes are held."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from gateway import snapshot


class RecordingGate:
    def __init__(self) -> None:
        self.calls: list[str] = []

    def hold(self) -> None:
        self.calls.append("hold")

    def release(self) -> None:
        self.calls.append("release")

    def in_flight(self) -> int:
        return 0


def _node(tmp_path: Path, data_bytes: int) -> snapshot.SnapshotSettings:
    source, root = tmp_path / "data", tmp_path / "recovery-points"
    (source / "segment").mkdir(parents=True)
    (source / "chroma.sqlite3").write_bytes(b"s" * (data_bytes // 2))
    (source / "segment" / "data_level0.bin").write_bytes(b"i" * (data_bytes - data_bytes // 2))
    root.mkdir()
    return snapshot.SnapshotSettings(source=source, root=root)


def _finished(root: Path, name: str, data_bytes: int) -> Path:
    point = root / name
    point.mkdir()
    (point / "chroma.sqlite3").write_bytes(b"o" * data_bytes)
    (point / snapshot.SNAPSHOT_FILE).write_text(json.dumps({"snapshot_id": name}))
    return point


def test_older_recovery_points_are_removed_before_the_copy_not_after(tmp_path: Path) -> None:
    settings = _node(tmp_path, 1000)
    _finished(settings.root, "dev-20261101-030000", 1000)
    (settings.root / "dev-20261102-030000.partial").mkdir()
    snapshot.make_room(settings)  # keep=1: the new copy will be the one kept
    assert list(settings.root.iterdir()) == []
    assert sorted(p.name for p in settings.source.rglob("*") if p.is_file()) == ["chroma.sqlite3",
                                                                                  "data_level0.bin"]


def test_with_keep_two_the_newest_older_point_stays(tmp_path: Path) -> None:
    settings = _node(tmp_path, 100)
    older, newer = (_finished(settings.root, f"dev-2026110{day}-030000", 10) for day in (1, 2))
    os.utime(older, (1, 1))
    snapshot.make_room(snapshot.SnapshotSettings(settings.source, settings.root, keep=2))
    assert [p.name for p in settings.root.iterdir()] == [newer.name]


def test_a_copy_past_the_budget_is_refused_before_writes_are_held(tmp_path: Path) -> None:
    settings = _node(tmp_path, 1000)
    gate = RecordingGate()
    tight = snapshot.SnapshotSettings(settings.source, settings.root, budget_bytes=1999)
    with pytest.raises(snapshot.SnapshotError) as refused:
        snapshot.take(gate, tight, "dev-20261126-030000", chroma_version="1.5.9")
    message = str(refused.value)
    assert "no room for a copy" in message and "(1000 bytes)" in message and "(1999 bytes)" in message
    assert "capacity.budget_gib" in message
    assert gate.calls == [], "writes were held for a copy that was refused"
    assert list(settings.root.iterdir()) == [] and (settings.source / "chroma.sqlite3").stat().st_size == 500


def test_the_budget_counts_the_copies_kept(tmp_path: Path) -> None:
    settings = _node(tmp_path, 1000)
    _finished(settings.root, "dev-20261101-030000", 600)
    roomy = snapshot.SnapshotSettings(settings.source, settings.root, keep=2, budget_bytes=2500)
    with pytest.raises(snapshot.SnapshotError, match=r"recovery points kept \(6\d\d bytes\)"):
        snapshot.make_room(roomy)
    snapshot.make_room(snapshot.SnapshotSettings(settings.source, settings.root, keep=2, budget_bytes=2700))
