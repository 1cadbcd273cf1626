"""Recovery points that restore: a copy of the node's directory taken while no write is in flight.

A copy taken while Chroma writes is torn (its SQLite runs a rollback journal; its indexes are saved in place), so
the node copies its directory only while HAProxy holds writes (503 + Retry-After; reads go on) and none is in
flight on Chroma, then lets writes flow again. The pause lasts the copy; the copy lands beside the live directory
on the same file system (`<root>/<id>`), where AWS Backup keeps it. Proof that the copy is not torn, every time:
the size and modification time of every file in the live directory are the same after the copy as before it;
otherwise the copy is thrown away and taken again (up to `attempts`), and a snapshot that could not be taken
cleanly fails loudly, never producing a torn copy. The copy is then checked (gateway.integrity) and its metadata
written beside it (`snapshot.json`: Chroma's version, every collection's record count, the pause).
"""

from __future__ import annotations

import json
import logging
import shutil
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
PARTIAL_SUFFIX = ".partial"
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
    keep: int = 1  # recovery points kept on the file system (AWS Backup keeps the history)
    # The file system's capacity budget: a copy that would take the node's directory and its recovery points
    # past it is refused, so a backup never makes a full file system fuller. None: no limit.
    budget_bytes: int | None = None


@dataclass(frozen=True)
class Snapshot:
    snapshot_id: str
    path: str
    chroma_version: str
    created_at: float
    pause_seconds: float
    bytes: int
    files: int
    attempts: int
    collections: dict[str, int] = field(default_factory=dict)  # "tenant/database/name" -> records
    quarantined: list[str] = field(default_factory=list)

    @property
    def seconds_per_gib(self) -> float:
        return self.pause_seconds / max(self.bytes / (1 << 30), 1e-9)


Signature = dict[str, tuple[int, int]]


def signature(directory: Path) -> Signature:
    """Every data file's size and modification time, by relative path."""
    return integrity.file_signatures(directory, NOT_COPIED)


def copy_files(source: Path, target: Path, files: list[str], deadline: float,
               pace: Callable[[], None] = lambda: None) -> int:
    """Copy `files` (relative paths) from source to target; stop with SnapshotError past `deadline`."""
    copied = 0
    for relative in files:
        if time.monotonic() > deadline:
            raise SnapshotError(f"the copy would hold writes longer than allowed ({copied} bytes copied)")
        destination = target / relative
        destination.parent.mkdir(parents=True, exist_ok=True)
        try:
            shutil.copy2(source / relative, destination)
        except FileNotFoundError:
            raise _Changed(f"{relative} disappeared during the copy") from None
        copied += destination.stat().st_size
        pace()
    return copied


def _bytes(directory: Path) -> int:
    return sum(size for size, _ in integrity.file_signatures(directory).values())


def make_room(settings: SnapshotSettings) -> None:
    """Before a copy: keep only the newest `keep - 1` recovery points (AWS Backup holds the older ones), so the
    file system holds at most `keep` copies even while one is taken; then refuse a copy the budget cannot hold."""
    prune(settings.root, settings.keep - 1)
    if settings.budget_bytes is None:
        return
    live = _bytes(settings.source)
    kept = _bytes(settings.root)
    if live + kept + live > settings.budget_bytes:
        raise SnapshotError(
            f"no room for a copy: the node's directory ({live} bytes) and the recovery points kept "
            f"({kept} bytes) plus a new copy ({live} bytes) exceed the capacity budget ({settings.budget_bytes} "
            "bytes); raise capacity.budget_gib or free space (runbooks/efs-capacity.md)")


def _copy_quiesced(gate: WriteGate, settings: SnapshotSettings, partial: Path) -> tuple[Signature, int, float]:
    """Hold writes, wait for none in flight, copy, release. Returns what was copied and the pause."""
    gate.hold()
    held = time.monotonic()
    try:
        while (in_flight := gate.in_flight()) > 0:
            if time.monotonic() - held > settings.drain_seconds:
                raise SnapshotError(f"{in_flight} writes still in flight after {settings.drain_seconds:g} s")
            time.sleep(POLL_SECONDS)
        before = signature(settings.source)
        copied = copy_files(settings.source, partial, sorted(before), held + settings.max_pause_seconds)
        after = signature(settings.source)
    finally:
        gate.release()
        pause = time.monotonic() - held
    if after != before:
        changed = sorted(k for k in before.keys() | after.keys() if before.get(k) != after.get(k))
        raise _Changed(f"{len(changed)} files changed during the copy, e.g. {changed[:3]}")
    return before, copied, pause


def take(gate: WriteGate, settings: SnapshotSettings, snapshot_id: str, chroma_version: str) -> Snapshot:
    """Take one recovery point at `<root>/<snapshot_id>`; raises SnapshotError if no clean copy could be made."""
    if not valid_snapshot_id(snapshot_id):
        raise SnapshotError(f"snapshot id {snapshot_id!r}: use 1-64 letters, digits and '-'")
    final = settings.root / snapshot_id
    if final.exists():
        raise SnapshotError(f"a recovery point {snapshot_id!r} already exists at {final}")
    partial = settings.root / (snapshot_id + PARTIAL_SUFFIX)
    make_room(settings)
    for attempt in range(1, settings.attempts + 1):
        shutil.rmtree(partial, ignore_errors=True)
        try:
            copied_files, copied_bytes, pause = _copy_quiesced(gate, settings, partial)
        except _Changed as changed:
            log.warning("the directory changed during the copy; taking it again",
                        extra={"event": "snapshot_retry", "snapshot_id": snapshot_id, "attempt": attempt,
                               "reason": str(changed)})
            continue
        except SnapshotError:
            shutil.rmtree(partial, ignore_errors=True)
            raise
        report = integrity.check(partial)
        snapshot = Snapshot(
            snapshot_id=snapshot_id, path=str(final), chroma_version=chroma_version, created_at=time.time(),
            pause_seconds=round(pause, 3), bytes=copied_bytes, files=len(copied_files), attempts=attempt,
            collections={f"{v.tenant}/{v.database}/{v.name}": v.records for v in report.collections},
            quarantined=[f"{v.tenant}/{v.database}/{v.name}" for v in report.quarantined])
        (partial / SNAPSHOT_FILE).write_text(json.dumps(asdict(snapshot), indent=2, sort_keys=True))
        partial.rename(final)
        prune(settings.root, settings.keep)
        log.info("recovery point taken", extra={"event": "snapshot_taken", **asdict(snapshot)})
        return snapshot
    shutil.rmtree(partial, ignore_errors=True)
    raise SnapshotError(f"the directory changed during each of {settings.attempts} copies: writes were not held "
                        "(is this node's proxy the only way in?)")


def prune(root: Path, keep: int) -> None:
    """Keep the newest `keep` finished recovery points; remove older ones and abandoned partial copies."""
    finished = sorted((p for p in root.iterdir() if (p / SNAPSHOT_FILE).exists()),
                      key=lambda p: p.stat().st_mtime, reverse=True)
    for old in finished[keep:]:
        shutil.rmtree(old)
    for abandoned in root.glob("*" + PARTIAL_SUFFIX):
        shutil.rmtree(abandoned, ignore_errors=True)


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
