"""After a restore, writes stay held until the restored data is verified against what was recorded at backup time.

The restore's swap (gateway.restore_swap) leaves `restore-pending.json` in the recovery points directory, with every
collection's record count from the recovery point's `snapshot.json`. A gateway that finds it starts HAProxy with
writes held (reads serve), waits for Chroma, then asks Chroma itself, over loopback: every recorded collection
exists with exactly its recorded count, no other collection exists in those databases, none was quarantined by
the start check, and one nearest-neighbour query per collection (one of its own vectors) answers. Then:
- verified: writes flow, and the file becomes `<restore id>.verified.json` (a restart does not check again);
- not verified: writes stay held (every restart checks again and holds again), `<restore id>.failed.json` says
  why; chroma-ops restore stops the node and says what to do.
Either way the verdict is answered in S3 like a recovery point, under the restore's id, for chroma-ops restore.
"""

from __future__ import annotations

import json
import time
import urllib.parse
from collections import defaultdict
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from gateway.chroma_api import ChromaApi, ChromaError
from gateway.files import write_atomically
from gateway.restore_swap import RESTORE_PENDING, read_json

REASON = "restore not verified"
LIST_PAGE = 100


@dataclass(frozen=True)
class RestoreVerdict:
    restore_id: str
    snapshot_id: str
    ok: bool
    problems: list[str] = field(default_factory=list)
    collections: int = 0
    records: int = 0
    seconds: float = 0.0


def pending(recovery_points: Path) -> dict[str, Any] | None:
    """The restore waiting to be verified, if any."""
    return read_json(recovery_points / RESTORE_PENDING) or None


def _scope(tenant: str, database: str) -> str:
    return f"/tenants/{urllib.parse.quote(tenant, safe='')}/databases/{urllib.parse.quote(database, safe='')}"


def _listed(api: ChromaApi, tenant: str, database: str) -> set[str]:
    names: set[str] = set()
    offset = 0
    while True:
        page = api.call("GET", f"{_scope(tenant, database)}/collections?limit={LIST_PAGE}&offset={offset}")
        names.update(str(c["name"]) for c in page)
        if len(page) < LIST_PAGE:
            return names
        offset += LIST_PAGE


def _check_collection(api: ChromaApi, tenant: str, database: str, name: str, recorded: int) -> str | None:
    key = f"{tenant}/{database}/{name}"
    try:
        collection = api.call("GET", f"{_scope(tenant, database)}/collections/{urllib.parse.quote(name, safe='')}")
    except ChromaError as error:
        if error.status == 404:
            return f"{key}: missing (recorded with {recorded} records)"
        raise
    base = f"{_scope(tenant, database)}/collections/{collection['id']}"
    count = int(api.call("GET", f"{base}/count"))
    if count != recorded:
        return f"{key}: {count} records, {recorded} recorded at backup time"
    if recorded:
        sample = api.call("POST", f"{base}/get", {"limit": 1, "include": ["embeddings"]})
        if not sample.get("embeddings"):
            return f"{key}: a record read back without its embedding"
        found = api.call("POST", f"{base}/query", {"query_embeddings": [sample["embeddings"][0]], "n_results": 1,
                                                   "include": ["distances"]})
        if not found.get("ids") or not found["ids"][0]:
            return f"{key}: a query with one of its own vectors found nothing"
    return None


def verify(api: ChromaApi, restore: dict[str, Any], quarantined: set[str]) -> RestoreVerdict:
    """Compare Chroma's view of the restored data with what the recovery point recorded."""
    started = time.monotonic()
    recorded: dict[str, int] = {str(k): int(v) for k, v in restore.get("collections", {}).items()}
    problems = [f"{key}: quarantined by the start check (its index disagrees with its records)"
                for key in sorted(quarantined & recorded.keys())]
    by_scope: dict[tuple[str, str], set[str]] = defaultdict(set)
    for key in recorded:
        tenant, database, name = key.split("/", 2)
        by_scope[(tenant, database)].add(name)
    try:
        for (tenant, database), names in sorted(by_scope.items()):
            problems += [f"{tenant}/{database}/{extra}: exists but is not in the recovery point"
                         for extra in sorted(_listed(api, tenant, database) - names)]
            for name in sorted(names):
                key = f"{tenant}/{database}/{name}"
                if key not in quarantined and (problem := _check_collection(api, tenant, database, name,
                                                                              recorded[key])):
                    problems.append(problem)
    except (OSError, ChromaError, ValueError, KeyError, TypeError) as error:
        problems.append(f"Chroma could not be asked: {type(error).__name__}: {error}")
    return RestoreVerdict(str(restore["restore_id"]), str(restore["snapshot_id"]), not problems, problems,
                          len(recorded), sum(recorded.values()), round(time.monotonic() - started, 3))


def record(recovery_points: Path, verdict: RestoreVerdict) -> None:
    """Verified: the pending file is renamed, so a restart does not hold writes again. Not verified: it stays."""
    outcome = "verified" if verdict.ok else "failed"
    write_atomically(recovery_points / f"{verdict.restore_id}.{outcome}.json",
                     json.dumps(asdict(verdict), indent=2))
    if verdict.ok:
        (recovery_points / RESTORE_PENDING).unlink()
