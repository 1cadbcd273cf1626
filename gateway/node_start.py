"""The gateway's side of the node's start: check the directory while the Chroma entrypoint holds the writer lock.

The Chroma container's entrypoint (cdk_app/node/chroma_image/writer-lock.sh) takes the writer lock, writes
`writer-lock-held` into a task volume both containers mount, and waits. The gateway, which has Python and the
node's directory mounted read-only, runs gateway.integrity on it, writes the report and `start-check.passed`
(Chroma starts; the collections that failed are quarantined: the proxy answers 503 for them) or, if the directory
cannot be read at all, `start-check.failed` (Chroma does not start; the task stops and ECS reports it). With the
verdict comes the list of indexes that passed and their files' signatures, which the entrypoint saves in the node's
directory: at the next start, only the indexes written since are read element by element.

While the node runs, `disk_metrics` publishes the SQLite file's size, the index directories' size, the write-ahead
log's length and the number of quarantined collections as CloudWatch metrics (EMF lines on stdout).
"""

from __future__ import annotations

import asyncio
import json
import logging
import sqlite3
import time
from pathlib import Path

from gateway import integrity
from gateway.files import write_atomically
from gateway.settings import Settings

log = logging.getLogger("gateway.node_start")

LOCK_HELD = "writer-lock-held"
PASSED = "start-check.passed"
FAILED = "start-check.failed"
REPORT = "start-check.json"
# The signatures of the indexes that passed; the entrypoint copies this into the node's directory (VERIFIED_FILE).
VERIFIED = "start-check.verified.json"
POLL_SECONDS = 0.2
REPORT_WAIT_EVERY_SECONDS = 10.0


class StartCheckError(RuntimeError):
    """The start check could not run: no writer lock in time, or the node's directory is unreadable."""


async def start_check(settings: Settings) -> integrity.Report:
    start_dir, data_dir = Path(settings.node_start_dir), Path(settings.node_data_dir)
    started = time.monotonic()
    next_report = started + REPORT_WAIT_EVERY_SECONDS
    while not (start_dir / LOCK_HELD).exists():
        now = time.monotonic()
        if now - started > settings.start_check_wait_seconds:
            raise StartCheckError(f"the Chroma entrypoint did not take the writer lock within "
                                  f"{settings.start_check_wait_seconds:g} s")
        if now >= next_report:
            next_report = now + REPORT_WAIT_EVERY_SECONDS
            log.info("waiting for the writer lock before checking the node's directory",
                     extra={"event": "start_check_waiting", "waited_seconds": round(now - started)})
        await asyncio.sleep(POLL_SECONDS)
    try:
        report = await asyncio.to_thread(integrity.check, data_dir)
    except (OSError, sqlite3.Error) as error:
        write_atomically(start_dir / FAILED, f"{type(error).__name__}: {error}\n")
        raise StartCheckError(f"cannot read the node's directory {data_dir}: {error}") from error
    write_atomically(start_dir / REPORT, json.dumps(report.to_json()))
    write_atomically(start_dir / VERIFIED, json.dumps(report.verified(), sort_keys=True))
    write_atomically(start_dir / PASSED, "")
    for verdict in report.quarantined:
        log.error("collection quarantined: its index disagrees with Chroma's records (a crash during a save); "
                  "requests to it are refused until it is restored (runbooks/collection-quarantined.md)",
                  extra={"event": "collection_quarantined", "collection_id": verdict.collection_id,
                         "collection": verdict.name, "tenant": verdict.tenant, "database": verdict.database,
                         "records": verdict.records, "problem": verdict.problem})
    log.info("start check done", extra={"event": "start_check_done", "collections": len(report.collections),
                                        "quarantined": len(report.quarantined), "seconds": report.seconds,
                                        "scanned": sum(v.scanned for v in report.collections),
                                        "sqlite_bytes": report.disk.sqlite_bytes,
                                        "index_bytes": report.disk.index_bytes, "log_rows": report.disk.log_rows})
    return report
