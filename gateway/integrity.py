"""The node's start check: is every collection's vector index consistent with Chroma's own records?

Chroma 1.x saves a collection's HNSW index in place, without fsync, and records what the save covers (the id map in
`index_metadata.pickle`, then the segment's `max_seq_id` in SQLite) after the index files. A kill -9 during a save
(an OOM kill, a stop timeout, a host failure) can leave index files newer than the id map; Chroma then replays its
log over them, and the collection answers with wrong vectors and wrong ids, silently, from then on. This module
reads Chroma's files, read-only, before Chroma starts, and names every collection it cannot prove consistent:

- the index files: the header is sane, the files are as long as the header says, every element's label is unique
  and known to the id map, every neighbour link points inside the index (hnswlib trusts its links: a torn one is a
  crash or a wrong answer);
- the id map: both directions agree, and the active elements are exactly the mapped ids;
- against SQLite: the index's ids plus the log entries after its `max_seq_id` must give the ids that Chroma's
  metadata segment holds (plus the log after its own `max_seq_id`). A missing log entry (purged before the index
  covered it) fails this too.

Pure standard library: it runs in the gateway image (Python; the official Chroma image has none), on the node's
directory mounted read-only, while the Chroma container's entrypoint holds the writer lock and waits for the
verdict (gateway.node_start). `python -m gateway.integrity DIR` prints the report as JSON.
"""

from __future__ import annotations

import io
import json
import os
import pickle
import sqlite3
import struct
import sys
import time
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from functools import partial
from pathlib import Path
from typing import Any

HEADER_FILE = "header.bin"
DATA_FILE = "data_level0.bin"
LENGTH_FILE = "length.bin"
LINKS_FILE = "link_lists.bin"
ID_MAP_FILE = "index_metadata.pickle"
SQLITE_FILE = "chroma.sqlite3"
# In the node's directory: the signatures of the indexes that passed the last start check. The gateway cannot write
# there (read-only mount); the Chroma entrypoint copies the gateway's list in before it starts Chroma.
VERIFIED_FILE = ".chroma-verified.json"
# The writer lock Chroma's entrypoint holds (cdk_app/node/chroma_image/writer-lock.sh): not data.
WRITER_LOCK_FILE = ".chroma-writer.lock"
VECTOR_SEGMENT_TYPE = "urn:chroma:segment/vector/hnsw-local-persisted"
PERSISTENCE_VERSION = 1
# The header: version (i32), offset_level0, max_elements, cur_element_count, size_data_per_element, label_offset,
# offset_data (size_t each), maxlevel, enterpoint_node (i32 each), maxM, maxM0, M (size_t), mult (double),
# ef_construction (size_t). Little-endian: both Fargate architectures (x86_64, arm64) are.
_HEADER = struct.Struct("<iQQQQQQiiQQQdQ")
_DELETED_FLAG = 0x10000
# Chroma's log operations (embeddings_queue.operation).
ADD, UPDATE, UPSERT, DELETE = 0, 1, 2, 3
_READ_CHUNK_ELEMENTS = 4096


class IndexDamaged(Exception):
    """The index files contradict themselves or Chroma's records; the message says how."""


@dataclass(frozen=True)
class Verdict:
    collection_id: str
    name: str
    tenant: str
    database: str
    records: int
    problem: str | None = None
    segment_id: str = ""
    # The index files' sizes and modification times when they passed (see VERIFIED_FILE); "" if they did not.
    signature: str = ""
    scanned: bool = False  # every element read this time (not carried over from an earlier pass)


@dataclass(frozen=True)
class DiskUsage:
    sqlite_bytes: int
    index_bytes: int  # every collection's index directory
    log_rows: int | None  # rows in Chroma's write-ahead log (embeddings_queue); None if SQLite was busy


@dataclass(frozen=True)
class Report:
    collections: tuple[Verdict, ...]
    seconds: float
    disk: DiskUsage

    @property
    def quarantined(self) -> tuple[Verdict, ...]:
        return tuple(v for v in self.collections if v.problem)

    def verified(self) -> dict[str, str]:
        """What to remember for the next start: the signatures of the index directories that passed."""
        return {v.segment_id: v.signature for v in self.collections if v.signature}

    def to_json(self) -> dict[str, Any]:
        return {**asdict(self), "quarantined": [v.collection_id for v in self.quarantined]}


def _connect(data_dir: Path, immutable: bool) -> sqlite3.Connection:
    """Read-only. `immutable` (Chroma not running): no locks and nothing written, not even a journal check."""
    uri = f"{(data_dir / SQLITE_FILE).resolve().as_uri()}?mode=ro{'&immutable=1' if immutable else ''}"
    return sqlite3.connect(uri, uri=True, timeout=2.0)


def disk_usage(data_dir: Path, connection: sqlite3.Connection | None = None) -> DiskUsage:
    """Sizes on disk and the log's length; with Chroma running, a busy SQLite leaves log_rows None."""
    sqlite_path = data_dir / SQLITE_FILE
    if not sqlite_path.exists():
        return DiskUsage(0, 0, 0)
    index_bytes = sum(f.stat().st_size for f in data_dir.glob("*/*") if f.is_file())
    db = connection or _connect(data_dir, immutable=False)
    try:
        log_rows: int | None = int(db.execute("SELECT count(*) FROM embeddings_queue").fetchone()[0])
    except sqlite3.OperationalError:
        log_rows = None
    finally:
        if connection is None:
            db.close()
    return DiskUsage(sqlite_path.stat().st_size, index_bytes, log_rows)


class _PlainData(pickle.Unpickler):
    """The id map holds dicts, ints, strings and None only: refuse anything that would import or call code."""

    def find_class(self, module: str, name: str) -> Any:
        raise IndexDamaged(f"{ID_MAP_FILE} references {module}.{name}: not a Chroma id map")


@dataclass(frozen=True)
class IdMap:
    total_elements_added: int
    id_to_label: dict[str, int]
    label_to_id: dict[int, str]


def read_id_map(path: Path) -> IdMap:
    try:
        raw = _PlainData(io.BytesIO(path.read_bytes())).load()
        result = IdMap(int(raw["total_elements_added"]), dict(raw["id_to_label"]), dict(raw["label_to_id"]))
    except IndexDamaged:
        raise
    except Exception as error:  # a torn pickle fails in many ways; each means the same thing here
        raise IndexDamaged(f"{ID_MAP_FILE} is unreadable ({type(error).__name__}: {error})") from None
    if len(result.id_to_label) != len(result.label_to_id) or any(
            result.label_to_id.get(label) != record_id for record_id, label in result.id_to_label.items()):
        raise IndexDamaged(f"{ID_MAP_FILE}: its id→label and label→id maps disagree")
    return result


def file_signatures(directory: Path, skip: frozenset[str] = frozenset()) -> dict[str, tuple[int, int]]:
    """Every file's size and modification time under `directory`, by relative path (`skip`: relative paths left
    out). Unchanged means nothing wrote the file; a file gone while listed is left out, so a comparison differs."""
    found: dict[str, tuple[int, int]] = {}
    for folder, _dirs, files in os.walk(directory):
        for name in files:
            path = Path(folder) / name
            relative = str(path.relative_to(directory))
            if relative in skip:
                continue
            try:
                stat = path.stat()
            except FileNotFoundError:
                continue
            found[relative] = (stat.st_size, stat.st_mtime_ns)
    return found


def signature(directory: Path) -> str:
    """An index's files, sized and dated, as one string: unchanged since they passed means nothing wrote them."""
    return "|".join(f"{name}:{size}:{mtime}" for name, (size, mtime) in sorted(file_signatures(directory).items()))


def index_ids(directory: Path, scan_elements: bool = True) -> set[str]:
    """The ids the saved index holds, after checking the files against each other (IndexDamaged if they disagree).
    Without `scan_elements` (files unchanged since they passed a scan) the elements themselves are not read."""
    id_map_path = directory / ID_MAP_FILE
    if not (directory / HEADER_FILE).exists():
        if id_map_path.exists():
            raise IndexDamaged(f"{ID_MAP_FILE} exists but {HEADER_FILE} does not")
        return set()  # never saved: everything is still in the log
    header = (directory / HEADER_FILE).read_bytes()
    if len(header) < _HEADER.size:
        raise IndexDamaged(f"{HEADER_FILE} is {len(header)} bytes, shorter than a header")
    (version, offset_level0, capacity, elements, stride, label_offset, data_offset, max_level, entry_point, max_m,
     max_m0, m, _mult, _ef) = _HEADER.unpack_from(header)
    if (version != PERSISTENCE_VERSION or offset_level0 != 0 or capacity < elements or not 0 < max_m <= max_m0
            or m == 0 or data_offset != 4 + 4 * max_m0 or label_offset <= data_offset
            or (label_offset - data_offset) % 4 or stride != label_offset + 8
            or (elements and not (0 <= entry_point < elements and max_level >= 0))):
        raise IndexDamaged(f"{HEADER_FILE} is not a consistent index header")
    if not id_map_path.exists():
        if elements:
            raise IndexDamaged(f"the index holds {elements} elements but has no {ID_MAP_FILE}")
        return set()
    id_map = read_id_map(id_map_path)
    if elements != id_map.total_elements_added:
        raise IndexDamaged(f"the index holds {elements} elements but its id map says {id_map.total_elements_added} "
                           "were added: a save was cut short")
    for name, needed in ((DATA_FILE, elements * stride), (LENGTH_FILE, elements * 4)):
        size = (directory / name).stat().st_size
        if size < needed:
            raise IndexDamaged(f"{name} is {size} bytes, the header needs {needed}")
    if not scan_elements:
        return set(id_map.id_to_label)
    active = _check_elements(directory, elements, stride, label_offset, max_m0, id_map)
    _check_upper_links(directory / LINKS_FILE, elements, max_m, max_level)
    if active != set(id_map.id_to_label):
        raise IndexDamaged(f"{len(active)} active elements, {len(id_map.id_to_label)} ids in the id map")
    return active


def _check_elements(directory: Path, elements: int, stride: int, label_offset: int, max_m0: int,
                    id_map: IdMap) -> set[str]:
    active: set[str] = set()
    seen: set[int] = set()
    with (directory / DATA_FILE).open("rb") as data:
        for first in range(0, elements, _READ_CHUNK_ELEMENTS):
            count = min(_READ_CHUNK_ELEMENTS, elements - first)
            chunk = data.read(count * stride)
            for at in range(0, count * stride, stride):
                flags = int.from_bytes(chunk[at:at + 4], "little")
                degree = flags & 0xFFFF
                links = struct.unpack_from(f"<{degree}I", chunk, at + 4) if degree <= max_m0 else (elements,)
                if any(link >= elements for link in links):
                    raise IndexDamaged(f"element {first + at // stride} has links outside the index")
                label = int.from_bytes(chunk[at + label_offset:at + label_offset + 8], "little")
                if label in seen or not 0 < label <= id_map.total_elements_added:
                    raise IndexDamaged(f"element {first + at // stride} carries label {label}, which the id map "
                                       "never assigned or another element carries")
                seen.add(label)
                if not flags & _DELETED_FLAG:
                    record_id = id_map.label_to_id.get(label)
                    if record_id is None:
                        raise IndexDamaged(f"active element {first + at // stride} has label {label}, unknown to "
                                           "the id map")
                    active.add(record_id)
    return active


def _check_upper_links(path: Path, elements: int, max_m: int, max_level: int) -> None:
    block = 4 + 4 * max_m
    buffer = path.read_bytes()
    at = 0
    for element in range(elements):
        if at + 4 > len(buffer):
            raise IndexDamaged(f"{LINKS_FILE} ends before element {element}")
        size = int.from_bytes(buffer[at:at + 4], "little")
        at += 4
        if size % block or size // block > max(max_level, 0) or at + size > len(buffer):
            raise IndexDamaged(f"{LINKS_FILE}: element {element} has a malformed link list")
        for level_start in range(at, at + size, block):
            degree = int.from_bytes(buffer[level_start:level_start + 4], "little")
            if degree > max_m or any(link >= elements for link in
                                     struct.unpack_from(f"<{degree}I", buffer, level_start + 4)):
                raise IndexDamaged(f"{LINKS_FILE}: element {element} has links outside the index")
        at += size


def replay(ids: set[str], log: Iterable[tuple[int, str]]) -> set[str]:
    """The ids after applying log entries (operation, id) in order: what Chroma will hold once it catches up."""
    result = set(ids)
    for operation, record_id in log:
        if operation in (ADD, UPSERT):
            result.add(record_id)
        elif operation == DELETE:
            result.discard(record_id)
    return result


def _difference(expected: set[str], found: set[str]) -> str:
    missing, extra = sorted(expected - found), sorted(found - expected)
    return (f"the index would hold {len(found)} ids where Chroma's records hold {len(expected)} "
            f"({len(missing)} missing, e.g. {missing[:3]}; {len(extra)} extra, e.g. {extra[:3]})")


def read_verified(data_dir: Path) -> dict[str, str]:
    """The signatures remembered at the last start (none if the file is missing or unreadable: scan everything)."""
    try:
        remembered = json.loads((data_dir / VERIFIED_FILE).read_text())
    except (OSError, ValueError):
        return {}
    if not isinstance(remembered, dict):
        return {}
    return {str(k): str(v) for k, v in remembered.items()}


def check(data_dir: Path) -> Report:
    """Check every collection in a node's directory. Every element of an index is read unless its files are
    unchanged since they passed (VERIFIED_FILE); everything else is checked every time. Raises sqlite3.Error or
    OSError when the directory itself cannot be read (Chroma could not start on it either)."""
    started = time.monotonic()
    if not (data_dir / SQLITE_FILE).exists():
        return Report((), 0.0, DiskUsage(0, 0, 0))  # a fresh node: nothing to check
    db = _connect(data_dir, immutable=True)  # Chroma is not running: the writer lock is held, Chroma waits
    try:
        verified = read_verified(data_dir)
        verdicts = [_verdict(db, data_dir, verified, *row) for row in db.execute(
            "SELECT c.id, c.name, d.tenant_id, d.name FROM collections c JOIN databases d ON d.id = c.database_id "
            "ORDER BY d.tenant_id, d.name, c.name")]
        usage = disk_usage(data_dir, db)
    finally:
        db.close()
    return Report(tuple(verdicts), round(time.monotonic() - started, 3), usage)


def _verdict(db: sqlite3.Connection, data_dir: Path, verified: dict[str, str], collection_id: str, name: str,
             tenant: str, database: str) -> Verdict:
    segments = dict(db.execute("SELECT scope, id FROM segments WHERE collection = ?", (collection_id,)).fetchall())
    vector, metadata = segments.get("VECTOR"), segments.get("METADATA")
    if vector is None or metadata is None:
        return Verdict(collection_id, name, tenant, database, 0, f"segments missing: {sorted(segments)}")

    def seq(segment: str) -> int:
        row = db.execute("SELECT seq_id FROM max_seq_id WHERE segment_id = ?", (segment,)).fetchone()
        return int(row[0]) if row else 0

    def log_after(seq_id: int) -> list[tuple[int, str]]:
        return db.execute("SELECT operation, id FROM embeddings_queue WHERE topic LIKE ? AND seq_id > ? "
                          "ORDER BY seq_id", (f"%/{collection_id}", seq_id)).fetchall()

    records = replay({row[0] for row in db.execute("SELECT embedding_id FROM embeddings WHERE segment_id = ?",
                                                   (metadata,))}, log_after(seq(metadata)))
    found = partial(Verdict, collection_id, name, tenant, database, len(records), segment_id=vector)
    before = signature(data_dir / vector)
    scan = verified.get(vector) != before
    try:
        in_index = replay(index_ids(data_dir / vector, scan_elements=scan), log_after(seq(vector)))
    except IndexDamaged as damage:
        return found(str(damage), scanned=scan)
    except OSError as error:
        return found(f"index files unreadable: {error}", scanned=scan)
    if in_index != records:
        return found(_difference(records, in_index), scanned=scan)
    return found(None, signature=before, scanned=scan)


def main(argv: list[str]) -> int:
    if len(argv) != 1:
        print("usage: python -m gateway.integrity DATA_DIR", file=sys.stderr)
        return 2
    report = check(Path(argv[0]))
    print(json.dumps(report.to_json(), indent=2))
    return 1 if report.quarantined else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
