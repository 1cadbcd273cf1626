"""The swap of a restore: the restored recovery point becomes the node's directory; the live one is kept aside.

Runs as a one-off task (the gateway image, `python -m gateway.restore_swap`) with the file system's root mounted,
while the node is stopped (chroma-ops restore stops it first). AWS Backup restores an item of an existing file
system under `/aws-backup-restore_<time>/` at its root, keeping the item's path; the swap finds the copy by its
snapshot id, then, holding the node's writer lock (so no Chroma can be writing):

1. moves the live directory aside, to `<node>.before-<restore id>` (never deleted by a restore);
2. moves the restored copy into the node's place (a rename on the same file system: nothing is copied);
3. gives every file the access point's owner, and the directory its mode;
4. leaves `restore-pending.json` in the recovery points directory: the node's gateway starts with writes held and
   releases them only once the restored collections match the counts recorded at backup time (gateway.restore_check).

`--undo <restore id>` puts the kept directory back (the restored one is kept too, as `<node>.failed-<restore id>`).
Both are idempotent: run again after a success, they report it and change nothing. `--discard <restore id>`
deletes what that restore kept (`.before-` and `.failed-` directories), never the node's directory: the operator's
decision, once the restored node has served for a while.
"""

from __future__ import annotations

import argparse
import contextlib
import errno
import fcntl
import json
import os
import shutil
import sys
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from gateway.files import write_atomically
from gateway.integrity import WRITER_LOCK_FILE
from gateway.snapshot import SNAPSHOT_FILE
from gateway.snapshot_protocol import valid_snapshot_id

RESTORE_PENDING = "restore-pending.json"
RESTORE_FOLDER_PREFIX = "aws-backup-restore_"
NODE_MODE = 0o750
EXIT_USAGE, EXIT_NOT_FOUND, EXIT_LOCKED, EXIT_FAILED = 2, 3, 4, 1


class SwapError(RuntimeError):
    def __init__(self, message: str, exit_code: int = EXIT_FAILED) -> None:
        super().__init__(message)
        self.exit_code = exit_code


@dataclass(frozen=True)
class Layout:
    """Paths relative to the file system's root (the access points' roots, without the leading slash)."""

    root: Path
    node: str = "chroma/primary"
    recovery_points: str = "chroma/recovery-points"

    @property
    def node_dir(self) -> Path:
        return self.root / self.node

    def aside(self, restore_id: str) -> Path:
        return self.root / f"{self.node}.before-{restore_id}"

    def failed(self, restore_id: str) -> Path:
        return self.root / f"{self.node}.failed-{restore_id}"

    @property
    def pending(self) -> Path:
        return self.root / self.recovery_points / RESTORE_PENDING


@dataclass(frozen=True)
class Swapped:
    restore_id: str
    snapshot_id: str
    restored_from: str
    kept_aside: str | None
    files: int
    already_done: bool = False
    collections: dict[str, int] = field(default_factory=dict)


def find_restored(root: Path, snapshot_id: str) -> Path:
    """The newest restored copy of `snapshot_id` under the root's aws-backup-restore_* folders: a directory whose
    complete `snapshot.json` names it (an incomplete copy has none)."""
    found = [snapshot.parent for folder in root.glob(RESTORE_FOLDER_PREFIX + "*") if folder.is_dir()
             for snapshot in folder.rglob(SNAPSHOT_FILE) if _snapshot_id(snapshot.parent) == snapshot_id]
    if not found:
        raise SwapError(f"no restored copy of recovery point {snapshot_id} under {root}/{RESTORE_FOLDER_PREFIX}*: "
                        "has the AWS Backup restore job completed?", EXIT_NOT_FOUND)
    return max(found, key=lambda path: path.stat().st_mtime)


def _snapshot_id(directory: Path) -> str | None:
    try:
        return str(json.loads((directory / SNAPSHOT_FILE).read_text())["snapshot_id"])
    except (OSError, ValueError, KeyError, TypeError):
        return None


@contextlib.contextmanager
def writer_lock(directory: Path, wait_seconds: float) -> Iterator[None]:
    """The node's writer lock (the one Chroma's entrypoint takes), held for the swap; no directory, no writer."""
    if not directory.exists():
        yield
        return
    with open(directory / WRITER_LOCK_FILE, "a") as lock:
        deadline = time.monotonic() + wait_seconds
        while True:
            try:
                fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except OSError as error:
                if error.errno not in (errno.EAGAIN, errno.EACCES) or time.monotonic() > deadline:
                    raise SwapError(f"a Chroma process still holds the writer lock of {directory} after "
                                    f"{wait_seconds:g} s: stop the node first (desired count 0)",
                                    EXIT_LOCKED) from None
                time.sleep(0.2)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def own(directory: Path, uid: int, gid: int) -> int:
    """Give every file and folder the access point's owner; returns how many files there are."""
    files = 0
    os.chown(directory, uid, gid)
    directory.chmod(NODE_MODE)
    for folder, dirs, names in os.walk(directory):
        for name in dirs + names:
            os.chown(Path(folder) / name, uid, gid, follow_symlinks=False)
        files += len(names)
    return files


def _remove_empty_parents(path: Path, stop: Path) -> None:
    """rmdir the restore's now-empty wrapper folders, up to the root; anything else restored there stays."""
    for parent in path.parents:
        if parent == stop or stop not in parent.parents:
            return
        try:
            parent.rmdir()
        except OSError:
            return


def swap(layout: Layout, snapshot_id: str, restore_id: str, recovery_point_arn: str, uid: int, gid: int,
         lock_wait_seconds: float = 30.0) -> Swapped:
    for name, value in (("snapshot id", snapshot_id), ("restore id", restore_id)):
        if not valid_snapshot_id(value):
            raise SwapError(f"{name} {value!r}: use 1-64 letters, digits and '-'", EXIT_USAGE)
    node, aside = layout.node_dir, layout.aside(restore_id)
    pending = read_json(layout.pending)
    if pending.get("restore_id") == restore_id and _snapshot_id(node) == snapshot_id:
        kept_aside = pending.get("kept_aside")
        collections = pending.get("collections")
        return Swapped(restore_id, snapshot_id, str(pending.get("restored_from")),
                       str(kept_aside) if kept_aside else None, files=0, already_done=True,
                       collections=dict(collections) if isinstance(collections, dict) else {})
    restored = find_restored(layout.root, snapshot_id)
    if aside.exists():
        raise SwapError(f"{aside} already exists: restore ids must not be reused", EXIT_USAGE)
    with writer_lock(node, lock_wait_seconds):
        kept = None
        if node.exists():
            node.rename(aside)
            kept = str(aside)
        restored.rename(node)
    _remove_empty_parents(restored, layout.root)
    files = own(node, uid, gid)
    recorded = json.loads((node / SNAPSHOT_FILE).read_text())
    result = Swapped(restore_id, snapshot_id, str(restored), kept, files,
                     collections={str(k): int(v) for k, v in recorded.get("collections", {}).items()})
    layout.pending.parent.mkdir(parents=True, exist_ok=True)
    write_atomically(layout.pending, json.dumps({
        **asdict(result), "recovery_point_arn": recovery_point_arn, "chroma_version": recorded.get("chroma_version"),
        "quarantined_at_backup": recorded.get("quarantined", []), "swapped_at": time.time()}, indent=2))
    return result


def undo(layout: Layout, restore_id: str, lock_wait_seconds: float = 30.0) -> dict[str, str]:
    """Put the directory kept aside by `restore_id` back; the restored one is kept as `<node>.failed-<id>`."""
    node, aside, failed = layout.node_dir, layout.aside(restore_id), layout.failed(restore_id)
    if not aside.exists():
        if failed.exists() and node.exists():
            return {"restore_id": restore_id, "status": "already undone", "restored_kept_as": str(failed)}
        raise SwapError(f"nothing to undo: {aside} does not exist", EXIT_NOT_FOUND)
    if failed.exists():
        raise SwapError(f"{failed} already exists; move it away first", EXIT_USAGE)
    with writer_lock(node, lock_wait_seconds):
        if node.exists():
            node.rename(failed)
        aside.rename(node)
    if read_json(layout.pending).get("restore_id") == restore_id:
        layout.pending.unlink()
    return {"restore_id": restore_id, "status": "undone", "restored_kept_as": str(failed)}


def discard(layout: Layout, restore_id: str) -> dict[str, str]:
    """Delete the directories `restore_id` kept aside; the node's own directory is never among them."""
    kept = [path for path in (layout.aside(restore_id), layout.failed(restore_id)) if path.exists()]
    for path in kept:
        if path.resolve() == layout.node_dir.resolve():
            raise SwapError(f"{path} is the node's directory: not discarded", EXIT_USAGE)
        shutil.rmtree(path)
    return {"restore_id": restore_id, "status": "discarded", "deleted": ", ".join(str(p) for p in kept) or "nothing"}


def read_json(path: Path) -> dict[str, Any]:
    """The JSON object at `path`; empty if it, or the directory it would be in, does not exist."""
    try:
        return dict(json.loads(path.read_text()))
    except (FileNotFoundError, NotADirectoryError):
        return {}


def arguments(layout: Layout, restore_id: str, uid: int, gid: int, snapshot_id: str | None = None,
              recovery_point_arn: str = "", action: str = "--undo") -> list[str]:
    """The command line of one swap (with a snapshot id), or of `action` (--undo, --discard) without one: what the
    restore task is given."""
    args = ["--root", str(layout.root), "--node", layout.node, "--recovery-points", layout.recovery_points,
            "--restore-id", restore_id, "--uid", str(uid), "--gid", str(gid)]
    if snapshot_id is None:
        return [*args, action]
    return [*args, "--snapshot-id", snapshot_id, "--recovery-point-arn", recovery_point_arn]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m gateway.restore_swap", description=__doc__.split("\n")[0])
    parser.add_argument("--root", type=Path, required=True, help="where the file system's root is mounted")
    parser.add_argument("--node", default=Layout.node, help="the node's directory, relative to the root")
    parser.add_argument("--recovery-points", default=Layout.recovery_points)
    parser.add_argument("--restore-id", required=True)
    parser.add_argument("--snapshot-id", help="the recovery point's snapshot id (its chroma-snapshot-id tag)")
    parser.add_argument("--recovery-point-arn", default="")
    parser.add_argument("--uid", type=int, default=1000)
    parser.add_argument("--gid", type=int, default=1000)
    action = parser.add_mutually_exclusive_group()
    action.add_argument("--undo", action="store_true", help="put the directory kept aside by --restore-id back")
    action.add_argument("--discard", action="store_true", help="delete what --restore-id kept aside")
    parser.add_argument("--lock-wait-seconds", type=float, default=30.0)
    args = parser.parse_args(argv)
    layout = Layout(args.root, args.node.strip("/"), args.recovery_points.strip("/"))
    try:
        if not valid_snapshot_id(args.restore_id):
            raise SwapError(f"restore id {args.restore_id!r}: use 1-64 letters, digits and '-'", EXIT_USAGE)
        if args.discard:
            report: dict[str, object] = dict(discard(layout, args.restore_id))
        elif args.undo:
            report = dict(undo(layout, args.restore_id, args.lock_wait_seconds))
        else:
            if not args.snapshot_id:
                raise SwapError("--snapshot-id is required (or --undo)", EXIT_USAGE)
            report = asdict(swap(layout, args.snapshot_id, args.restore_id, args.recovery_point_arn, args.uid,
                                 args.gid, args.lock_wait_seconds))
    except SwapError as error:
        print(json.dumps({"event": "restore_swap_failed", "restore_id": args.restore_id, "error": str(error)}))
        return error.exit_code
    except OSError as error:
        print(json.dumps({"event": "restore_swap_failed", "restore_id": args.restore_id,
                          "error": f"{type(error).__name__}: {error}"}))
        return EXIT_FAILED
    print(json.dumps({"event": "restore_swap_done", **report}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
