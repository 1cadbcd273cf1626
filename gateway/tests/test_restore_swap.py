"""The restore's swap, as the one-off task runs it (`python -m gateway.restore_swap`, a real process, a real lock):
the restored copy takes the node's place, the live directory is kept aside, nothing moves while a writer holds the
lock, and both the swap and its undo can run twice."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from gateway import restore_swap
from gateway.restore_swap import Layout

SNAPSHOT = "prod-20261126-030000"
RESTORE = "r-20261126-101500"
ARN = "arn:aws:backup:us-east-1:111122223333:recovery-point:abc"
COUNTS = {"default_tenant/default_database/docs": 120}


def run(*args: str) -> tuple[int, dict[str, object]]:
    result = subprocess.run([sys.executable, "-m", "gateway.restore_swap", *args], capture_output=True, text=True,
                            check=False, timeout=60)
    assert result.stderr == "", result.stderr
    return result.returncode, json.loads(result.stdout)


@pytest.fixture
def root(tmp_path: Path) -> Path:
    live = tmp_path / "chroma" / "primary"
    (live / "seg-live").mkdir(parents=True)
    (live / "chroma.sqlite3").write_text("live")
    (live / "seg-live" / "data_level0.bin").write_text("live index")
    (live / ".chroma-writer.lock").write_text("")
    (tmp_path / "chroma" / "recovery-points").mkdir()
    restored = tmp_path / "aws-backup-restore_2026-11-26T10-15-00-000Z" / "chroma" / "recovery-points" / "latest"
    (restored / "seg-old").mkdir(parents=True)
    (restored / "chroma.sqlite3").write_text("restored")
    (restored / "seg-old" / "data_level0.bin").write_text("restored index")
    (restored / "snapshot.json").write_text(json.dumps({"snapshot_id": SNAPSHOT, "chroma_version": "1.5.9",
                                                        "collections": COUNTS, "quarantined": []}))
    return tmp_path


def swap_args(root: Path) -> list[str]:
    return ["--root", str(root), "--restore-id", RESTORE, "--snapshot-id", SNAPSHOT, "--recovery-point-arn", ARN,
            "--uid", str(os.getuid()), "--gid", str(os.getgid()), "--lock-wait-seconds", "1"]


def test_the_restored_copy_takes_the_nodes_place_and_the_live_one_is_kept(root: Path) -> None:
    code, report = run(*swap_args(root))
    assert code == 0 and report["event"] == "restore_swap_done", report
    layout = Layout(root)
    assert (layout.node_dir / "chroma.sqlite3").read_text() == "restored"
    assert (layout.node_dir / "seg-old" / "data_level0.bin").read_text() == "restored index"
    assert (layout.aside(RESTORE) / "chroma.sqlite3").read_text() == "live"
    assert (layout.aside(RESTORE) / "seg-live" / "data_level0.bin").read_text() == "live index"
    assert oct(layout.node_dir.stat().st_mode & 0o777) == "0o750"
    assert not list(root.glob("aws-backup-restore_*")), "the restore's emptied wrapper folders stay behind"
    pending = json.loads(layout.pending.read_text())
    assert pending["restore_id"] == RESTORE and pending["snapshot_id"] == SNAPSHOT
    assert pending["collections"] == COUNTS and pending["recovery_point_arn"] == ARN
    assert pending["chroma_version"] == "1.5.9" and pending["kept_aside"] == str(layout.aside(RESTORE))
    assert report["files"] == 3  # chroma.sqlite3, the index file, snapshot.json

    again, second = run(*swap_args(root))
    assert again == 0 and second["already_done"] is True
    assert (layout.aside(RESTORE) / "chroma.sqlite3").read_text() == "live"


@pytest.fixture
def writer(root: Path) -> Iterator[subprocess.Popen[str]]:
    """A process holding the node's writer lock, as Chroma's entrypoint does."""
    holder = subprocess.Popen([sys.executable, "-c", (
        "import fcntl, sys, time; f = open(sys.argv[1], 'a'); fcntl.flock(f, fcntl.LOCK_EX); print('held', "
        "flush=True); time.sleep(60)"), str(Layout(root).node_dir / ".chroma-writer.lock")],
        stdout=subprocess.PIPE, text=True)
    assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
    yield holder
    holder.kill()
    holder.wait()


def test_nothing_moves_while_a_writer_holds_the_lock(root: Path, writer: subprocess.Popen[str]) -> None:
    started = time.monotonic()
    code, report = run(*swap_args(root))
    assert code == restore_swap.EXIT_LOCKED and "still holds the writer lock" in str(report["error"])
    assert time.monotonic() - started >= 1.0
    layout = Layout(root)
    assert (layout.node_dir / "chroma.sqlite3").read_text() == "live"
    assert not layout.aside(RESTORE).exists() and not layout.pending.exists()
    assert list(root.glob("aws-backup-restore_*/chroma/recovery-points/latest/chroma.sqlite3"))


def test_a_missing_restored_copy_is_reported_and_nothing_moves(root: Path) -> None:
    code, report = run(*[a if a != SNAPSHOT else "prod-20261125-030000" for a in swap_args(root)])
    assert code == restore_swap.EXIT_NOT_FOUND
    assert "no restored copy of recovery point prod-20261125-030000" in str(report["error"])
    assert (Layout(root).node_dir / "chroma.sqlite3").read_text() == "live"


def test_bad_ids_are_refused_by_name(root: Path) -> None:
    code, report = run(*[a if a != RESTORE else "../etc" for a in swap_args(root)])
    assert code == restore_swap.EXIT_USAGE and "restore id '../etc'" in str(report["error"])


def test_undo_puts_the_kept_directory_back_and_keeps_the_restored_one(root: Path) -> None:
    assert run(*swap_args(root))[0] == 0
    undo = ["--root", str(root), "--restore-id", RESTORE, "--undo", "--lock-wait-seconds", "1"]
    code, report = run(*undo)
    layout = Layout(root)
    assert code == 0 and report["status"] == "undone"
    assert (layout.node_dir / "chroma.sqlite3").read_text() == "live"
    assert (layout.failed(RESTORE) / "chroma.sqlite3").read_text() == "restored"
    assert not layout.pending.exists() and not layout.aside(RESTORE).exists()
    assert run(*undo) == (0, {"event": "restore_swap_done", "restore_id": RESTORE, "status": "already undone",
                              "restored_kept_as": str(layout.failed(RESTORE))})


@pytest.mark.skipif(os.geteuid() != 0, reason="changing a file's owner needs root (the restore task runs as root)")
def test_every_restored_file_gets_the_access_points_owner(root: Path) -> None:
    args = swap_args(root)
    args[args.index("--uid") + 1], args[args.index("--gid") + 1] = "1234", "4321"
    assert run(*args)[0] == 0
    owners = {(p.stat().st_uid, p.stat().st_gid) for p in [Layout(root).node_dir, *Layout(root).node_dir.rglob("*")]}
    assert owners == {(1234, 4321)}


def test_only_a_complete_copy_of_the_asked_recovery_point_is_swapped_in(root: Path) -> None:
    """An older restore of another recovery point, and a copy caught incomplete (no snapshot.json), are not it."""
    other = root / "aws-backup-restore_2026-11-20T10-00-00-000Z" / "chroma" / "recovery-points" / "latest"
    (other).mkdir(parents=True)
    (other / "chroma.sqlite3").write_text("other")
    (other / "snapshot.json").write_text(json.dumps({"snapshot_id": "prod-20261120-030000"}))
    incomplete = root / "aws-backup-restore_2026-11-27T10-00-00-000Z" / "chroma" / "recovery-points" / "latest"
    incomplete.mkdir(parents=True)
    (incomplete / "chroma.sqlite3").write_text("incomplete")
    assert run(*swap_args(root))[0] == 0
    assert (Layout(root).node_dir / "chroma.sqlite3").read_text() == "restored"
    assert (other / "chroma.sqlite3").exists() and (incomplete / "chroma.sqlite3").exists()  # left alone
