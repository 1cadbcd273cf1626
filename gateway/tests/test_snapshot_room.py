"""The node's one copy is brought up to date in place: only what changed is copied (a short pause, small
incremental backups), what is gone is removed, and a copy the capacity budget cannot hold is refused before
writes are held, so a backup never makes a full file system fuller."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from gateway import integrity, snapshot


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
    return snapshot.SnapshotSettings(source=source, root=root)


def test_only_changed_files_are_copied_and_unchanged_ones_keep_their_inode(tmp_path: Path) -> None:
    settings = _node(tmp_path, 1000)
    (settings.source / "old-segment").mkdir()
    (settings.source / "old-segment" / "header.bin").write_bytes(b"h" * 100)
    wanted = snapshot.signature(settings.source)
    assert snapshot.sync_files(settings.source, settings.latest, wanted, deadline=1e18) == 1100
    index = settings.latest / "segment" / "data_level0.bin"
    inode = index.stat().st_ino
    # A write changes the SQLite file; a collection is deleted: its folder goes.
    (settings.source / "chroma.sqlite3").write_bytes(b"t" * 600)
    os.utime(settings.source / "chroma.sqlite3", ns=(1, 1))
    (settings.source / "old-segment" / "header.bin").unlink()
    (settings.source / "old-segment").rmdir()
    copied = snapshot.sync_files(settings.source, settings.latest, snapshot.signature(settings.source), 1e18)
    assert copied == 600  # the SQLite file only
    assert index.stat().st_ino == inode  # unchanged: not rewritten, so an incremental backup skips it
    assert (settings.latest / "chroma.sqlite3").read_bytes() == b"t" * 600
    assert not (settings.latest / "old-segment").exists()
    assert integrity.file_signatures(settings.latest) == snapshot.signature(settings.source)
    assert snapshot.sync_files(settings.source, settings.latest, snapshot.signature(settings.source), 1e18) == 0


def test_a_leftover_temporary_file_is_removed_and_a_stale_snapshot_file_never_survives(tmp_path: Path) -> None:
    settings = _node(tmp_path, 100)
    settings.latest.mkdir(parents=True)
    (settings.latest / "chroma.sqlite3.copying").write_text("a copy cut short")
    (settings.latest / snapshot.SNAPSHOT_FILE).write_text(json.dumps({"snapshot_id": "stale"}))
    gate = RecordingGate()
    with pytest.raises(snapshot.SnapshotError, match="the copy cannot be read by the start check"):
        snapshot.take(gate, settings, "dev-20261126-030000", chroma_version="1.5.9")  # fake files: not Chroma's
    assert gate.calls == ["hold", "release"]
    assert not (settings.latest / "chroma.sqlite3.copying").exists()
    assert not (settings.latest / snapshot.SNAPSHOT_FILE).exists()  # incomplete: no backup or restore uses it


def test_copies_of_the_earlier_layout_are_removed_before_the_copy(tmp_path: Path) -> None:
    settings = _node(tmp_path, 1000)
    old = settings.root / "dev-20261101-030000"
    old.mkdir(parents=True)
    (old / snapshot.SNAPSHOT_FILE).write_text("{}")
    (settings.root / "dev-20261102-030000.partial").mkdir()
    (settings.root / "restore-pending.json").write_text("{}")  # a restore's marker is not a copy
    snapshot.make_room(settings)
    assert sorted(p.name for p in settings.root.iterdir()) == ["restore-pending.json"]


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
    assert (settings.source / "chroma.sqlite3").stat().st_size == 500
    snapshot.make_room(snapshot.SnapshotSettings(settings.source, settings.root, budget_bytes=2000))
