"""Recovery points that restore: a copy of the node's directory taken while no write is in flight.

A copy taken while Chroma writes is torn (its SQLite runs a rollback journal; its indexes are saved in place), so
the node copies its directory only while HAProxy holds writes (503 + Retry-After; reads go on) and none is in
flight on Chroma, then lets writes flow again. The copy is one directory beside the live one on the same file
system (`<root>/latest`), where AWS Backup keeps it, **updated in place**: only the files that changed since the
last recovery point are copied (each to a temporary name, then renamed over), files gone from the node are removed,
and unchanged files keep their inode, size and time. So the pause lasts the copy of what changed, not of all the
data, and AWS Backup's incremental backups store only what changed too.

Proof that the copy is not torn, every time: the size and modification time of every file in the live directory
are the same after the copy as before it; otherwise the copy is taken again (up to `attempts`), and a recovery
point that could not be taken cleanly fails loudly. `snapshot.json` (Chroma's version, every collection's record
count, the pause) is removed before the copy starts and written only once it is complete and checked
(gateway.integrity): a copy without it is incomplete, and neither the restore nor the backup job ever uses one.
"""

from __future__ import annotations

import json
import logging
import shutil
import sqlite3
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Protocol

from gateway import haproxy_config, integrity
from gateway.files import write_atomically
from gateway.runtime_api import RuntimeApi
from gateway.snapshot_protocol import valid_snapshot_id

log = logging.getLogger("gateway.snapshot")

SNAPSHOT_FILE = "snapshot.json"
LATEST = "latest"  # the one copy, updated in place (AWS Backup's item path for a restore)
PARTIAL_SUFFIX = ".partial"  # copies of an earlier layout (one directory per recovery point), removed
TEMPORARY_SUFFIX = ".copying"
# Not data: the writer lock (its watchdog appends a heartbeat byte) and the start check's list of verified indexes.
NOT_COPIED = frozenset({integrity.WRITER_LOCK_FILE, integrity.VERIFIED_FILE})
POLL_SECONDS = 0.01


class SnapshotError(RuntimeError):
    """No clean copy could be taken; the message says why. Writes are flowing again when this is raised."""


class _Changed(SnapshotError):
    """Something wrote to the directory during the copy: this copy is thrown away and taken again."""


class WriteGate(Protocol):
    """The proxy's side: hold and release writes, and count the writes still in flight on Chroma."""

    def hold(self) -> None: ...

    def release(self) -> None: ...

    def in_flight(self) -> int: ...


@dataclass(frozen=True)
class SnapshotSettings:
    source: Path  # the node's directory
    root: Path  # where recovery points are written, on the same file system
    drain_seconds: float = 60.0  # longest wait for writes in flight (the gateway's upstream timeout)
    max_pause_seconds: float = 300.0  # a copy that would hold writes longer is abandoned
    attempts: int = 3
    # The file system's capacity budget: a copy that would take the node's directory and its copy past it is
    # refused, so a backup never makes a full file system fuller. None: no limit.
    budget_bytes: int | None = None

    @property
    def latest(self) -> Path:
        return self.root / LATEST


@dataclass(frozen=True)
class Snapshot:
    snapshot_id: str
    path: str
    chroma_version: str
    created_at: float
    pause_seconds: float
    bytes: int  # the copy's size
    files: int
    attempts: int
    copied_bytes: int = 0  # what this recovery point copied: the files that changed since the last one
    collections: dict[str, int] = field(default_factory=dict)  # "tenant/database/name" -> records
    quarantined: list[str] = field(default_factory=list)

    @property
    def seconds_per_gib(self) -> float:
        """Pause per GiB copied."""
        return self.pause_seconds / max(self.copied_bytes / (1 << 30), 1e-9)


Signature = dict[str, tuple[int, int]]


def signature(directory: Path) -> Signature:
    """Every data file's size and modification time, by relative path."""
    return integrity.file_signatures(directory, NOT_COPIED)


def sync_files(source: Path, target: Path, wanted: Signature, deadline: float,
               pace: Callable[[], None] = lambda: None) -> int:
    """Make `target` hold exactly the files of `wanted` (relative paths: size and time in `source`): copy those
    that differ, each to a temporary name then renamed over, and remove the others. Returns the bytes copied;
    SnapshotError past `deadline`."""
    have = integrity.file_signatures(target, frozenset({SNAPSHOT_FILE}))
    for leftover in [relative for relative in have if relative.endswith(TEMPORARY_SUFFIX)]:  # a copy cut short
        (target / leftover).unlink()
        del have[leftover]
    copied = 0
    for relative, stamp in sorted(wanted.items()):
        if have.get(relative) == stamp:
            continue
        if time.monotonic() > deadline:
            raise SnapshotError(f"the copy would hold writes longer than allowed ({copied} bytes copied)")
        destination = target / relative
        destination.parent.mkdir(parents=True, exist_ok=True)
        temporary = destination.with_name(destination.name + TEMPORARY_SUFFIX)
        try:
            shutil.copy2(source / relative, temporary)
        except FileNotFoundError:
            raise _Changed(f"{relative} disappeared during the copy") from None
        temporary.replace(destination)
        copied += stamp[0]
        pace()
    for relative in sorted(have.keys() - wanted.keys()):
        (target / relative).unlink()
    for folder in sorted((p for p in target.rglob("*") if p.is_dir()), key=lambda p: len(p.parts), reverse=True):
        if not any(folder.iterdir()):
            folder.rmdir()
    return copied


def _bytes(directory: Path) -> int:
    return sum(size for size, _ in integrity.file_signatures(directory).values())


def make_room(settings: SnapshotSettings) -> None:
    """Before a copy: remove copies of the earlier layout, then refuse a copy the budget cannot hold (the copy
    grows to the node's directory's size)."""
    settings.root.mkdir(parents=True, exist_ok=True)
    prune(settings.root)
    if settings.budget_bytes is None:
        return
    live = _bytes(settings.source)
    if live + live > settings.budget_bytes:
        raise SnapshotError(
            f"no room for a copy: the node's directory ({live} bytes) and its copy ({live} bytes) exceed the "
            f"capacity budget ({settings.budget_bytes} bytes); raise capacity.budget_gib or free space "
            "(runbooks/efs-capacity.md)")


def drain(in_flight: Callable[[], int], seconds: float) -> int:
    """Wait, at most `seconds`, until no write is in flight (writes are held already); the writes still in flight."""
    deadline = time.monotonic() + seconds
    while (count := in_flight()) > 0 and time.monotonic() < deadline:
        time.sleep(POLL_SECONDS)
    return count


def _copy_quiesced(gate: WriteGate, settings: SnapshotSettings) -> tuple[Signature, int, float]:
    """Hold writes, wait for none in flight, bring the copy up to date, release. Returns the files, the bytes
    copied and the pause."""
    gate.hold()
    held = time.monotonic()
    try:
        if in_flight := drain(gate.in_flight, settings.drain_seconds):
            raise SnapshotError(f"{in_flight} writes still in flight after {settings.drain_seconds:g} s")
        before = signature(settings.source)
        copied = sync_files(settings.source, settings.latest, before, held + settings.max_pause_seconds)
        after = signature(settings.source)
    finally:
        gate.release()
        pause = time.monotonic() - held
    if after != before:
        changed = sorted(k for k in before.keys() | after.keys() if before.get(k) != after.get(k))
        raise _Changed(f"{len(changed)} files changed during the copy, e.g. {changed[:3]}")
    return before, copied, pause


def take(gate: WriteGate, settings: SnapshotSettings, snapshot_id: str, chroma_version: str) -> Snapshot:
    """Bring `<root>/latest` up to date as recovery point `snapshot_id`; SnapshotError if no clean copy could be
    made (then the copy has no snapshot.json: incomplete, never used)."""
    if not valid_snapshot_id(snapshot_id):
        raise SnapshotError(f"snapshot id {snapshot_id!r}: use 1-64 letters, digits and '-'")
    make_room(settings)
    settings.latest.mkdir(parents=True, exist_ok=True)
    (settings.latest / SNAPSHOT_FILE).unlink(missing_ok=True)  # incomplete from here until written again
    for attempt in range(1, settings.attempts + 1):
        try:
            files, copied, pause = _copy_quiesced(gate, settings)
        except _Changed as changed:
            log.warning("the directory changed during the copy; taking it again",
                        extra={"event": "snapshot_retry", "snapshot_id": snapshot_id, "attempt": attempt,
                               "reason": str(changed)})
            continue
        try:
            report = integrity.check(settings.latest)
        except (sqlite3.Error, OSError) as error:  # the node's own directory would not start either
            raise SnapshotError(f"the copy cannot be read by the start check: {error}") from None
        point = Snapshot(
            snapshot_id=snapshot_id, path=str(settings.latest), chroma_version=chroma_version,
            created_at=time.time(), pause_seconds=round(pause, 3), bytes=sum(size for size, _ in files.values()),
            files=len(files), attempts=attempt, copied_bytes=copied,
            collections={f"{v.tenant}/{v.database}/{v.name}": v.records for v in report.collections},
            quarantined=[f"{v.tenant}/{v.database}/{v.name}" for v in report.quarantined])
        write_atomically(settings.latest / SNAPSHOT_FILE, json.dumps(asdict(point), indent=2, sort_keys=True))
        log.info("recovery point taken", extra={"event": "snapshot_taken", **asdict(point)})
        return point
    raise SnapshotError(f"the directory changed during each of {settings.attempts} copies: writes were not held "
                        "(is this node's proxy the only way in?)")


def prune(root: Path) -> None:
    """Remove copies of the earlier layout (a directory per recovery point) and abandoned partial ones."""
    for old in root.iterdir():
        if old.name != LATEST and old.is_dir() and ((old / SNAPSHOT_FILE).exists() or
                                                    old.name.endswith(PARTIAL_SUFFIX)):
            shutil.rmtree(old)


def read(path: Path) -> Snapshot:
    return Snapshot(**json.loads((path / SNAPSHOT_FILE).read_text()))


class WriteHolds:
    """Why writes are held now (a recovery point's copy, a restore not yet verified): the running HAProxy holds
    them while any reason stands. Its mode map is swapped through the admin socket (a versioned, atomic commit)
    and written to its file too, so a restarted HAProxy comes back in the same mode."""

    def __init__(self, api: RuntimeApi, runtime_dir: Path) -> None:
        self._api = api
        self._map = runtime_dir / haproxy_config.MODE_MAP
        self.reasons: set[str] = set()

    def hold_at_start(self, reason: str) -> None:
        """Before HAProxy starts: it reads the map file, so no write gets through even once."""
        self.reasons.add(reason)
        self._write_file()

    def hold(self, reason: str) -> None:
        self.reasons.add(reason)
        self._apply()

    def release(self, reason: str) -> None:
        self.reasons.discard(reason)
        self._apply()

    def in_flight(self) -> int:
        return self._api.sessions(haproxy_config.WRITE_BACKEND)

    def gate(self, reason: str) -> WriteGate:
        return _ReasonGate(self, reason)

    def _entries(self) -> list[str]:
        return [haproxy_config.WRITES_HELD_KEY] if self.reasons else []

    def _write_file(self) -> None:
        write_atomically(self._map, "".join(f"{entry} 1\n" for entry in self._entries()))

    def _apply(self) -> None:
        self._write_file()
        self._api.replace_map(self._map, self._entries())


@dataclass(frozen=True)
class _ReasonGate:
    holds: WriteHolds
    reason: str

    def hold(self) -> None:
        self.holds.hold(self.reason)

    def release(self) -> None:
        self.holds.release(self.reason)

    def in_flight(self) -> int:
        return self.holds.in_flight()
