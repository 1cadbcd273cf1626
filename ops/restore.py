"""chroma-ops restore: a recovery point back into the node, in one command.

1. choose the recovery point (`latest` or an ARN) and refuse one without a quiesced copy or from another Chroma
   release (ops.recovery_points);
2. stop the node (desired count 0) and wait until no task runs: one writer, always;
3. restore the recovery point's copy of the node's directory beside the live one (AWS Backup item-level restore
   into the same file system);
4. swap them with the one-off restore task (gateway.restore_swap): the live directory is kept aside, never deleted;
5. start the node: it holds writes until its gateway has verified the restored data against the counts recorded at
   backup time, one query per collection (gateway.restore_check);
6. report. A restore that fails verification leaves the node stopped with both directories intact and says how to
   go back (`--undo RESTORE_ID`) or try another recovery point.

The steps talk to a `Node`: AwsNode (ops.restore_aws) in an environment; the tests drive the same steps against
real Chroma and gateway processes on loopback.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

from gateway.snapshot_protocol import snapshot_id
from ops.errors import OpsError
from ops.recovery_points import RecoveryPoint, choose


class Node(Protocol):
    def recovery_points(self) -> list[RecoveryPoint]: ...

    def stop(self) -> str: ...

    def restore_copy(self, point: RecoveryPoint, restore_id: str) -> str: ...

    def swap(self, point: RecoveryPoint | None, restore_id: str, undo: bool = False) -> str: ...

    def discard(self, restore_id: str) -> str: ...

    def start(self) -> str: ...

    def verdict(self, restore_id: str) -> dict[str, Any]: ...


@dataclass(frozen=True)
class Step:
    name: str
    seconds: float
    detail: str


@dataclass
class Report:
    restore_id: str
    recovery_point: dict[str, Any] | None = None
    steps: list[Step] = field(default_factory=list)
    verdict: dict[str, Any] | None = None
    ok: bool = False


class RestoreFailed(OpsError):
    """The restore stopped; the report holds what was done, the message what to do now."""

    def __init__(self, message: str, report: Report) -> None:
        super().__init__(message)
        self.report = report


def restore_id(environment: str, now: datetime) -> str:
    """`restore-<env>-YYYYMMDD-HHMMSS`: a recovery point's id (the same protocol: it names the node's verdict)."""
    return f"restore-{snapshot_id(environment, now)}"


def _timed(report: Report, name: str, announce: Callable[[str], None],
           action: Callable[[], str]) -> None:
    announce(f"{name} ...")
    started = time.monotonic()
    detail = action()
    report.steps.append(Step(name, round(time.monotonic() - started, 1), detail))
    announce(f"{name}: done in {report.steps[-1].seconds:g} s{f' ({detail})' if detail else ''}")


def restore(node: Node, environment: str, wanted: str, running_version: str, force_version: bool, now: datetime,
            announce: Callable[[str], None] = lambda _: None) -> Report:
    report = Report(restore_id(environment, now))
    point = choose(node.recovery_points(), wanted, running_version, force_version)
    report.recovery_point = point.as_dict()
    announce(f"restore {report.restore_id}: recovery point {point.arn} (snapshot {point.snapshot_id}, "
             f"{point.records} records, Chroma {point.chroma_version})")
    undo_hint = f"chroma-ops restore --env {environment} --undo {report.restore_id}"
    _timed(report, "stop the node", announce, node.stop)
    untouched = ("The node is stopped and its directory untouched: start it again with `aws ecs update-service "
                 "--desired-count 1` (runbooks/restore-from-backup.md), or fix the cause and run the restore again.")
    try:
        _timed(report, "restore the copy beside the live directory", announce,
               lambda: node.restore_copy(point, report.restore_id))
        _timed(report, "swap the directories (live one kept aside)", announce,
               lambda: node.swap(point, report.restore_id))
    except OpsError as error:
        raise RestoreFailed(f"{error}. {untouched}", report) from None
    verdict: dict[str, Any] = {}

    def verify() -> str:
        verdict.update(node.verdict(report.restore_id))
        return f"{verdict.get('collections')} collections, {verdict.get('records')} records"

    try:
        _timed(report, "start the node (writes held)", announce, node.start)
        _timed(report, "verify against the recorded counts", announce, verify)
    except OpsError as error:
        node.stop()
        raise RestoreFailed(f"{error}. The node is stopped; the restored directory is in place (writes were held) "
                            f"and the one from before is kept: `{undo_hint}` puts it back.", report) from None
    report.verdict = verdict
    if verdict.get("status") != "ok":
        node.stop()
        problems = "; ".join(str(p) for p in verdict.get("problems", [])) or "no reason given"
        raise RestoreFailed(
            f"the restored data does not match recovery point {point.snapshot_id}: {problems}. The node is stopped "
            f"(it held writes: nothing was written to the restored copy). Both directories are kept. Go back to "
            f"the directory from before the restore with `{undo_hint}`, or restore another recovery point.", report)
    report.ok = True
    return report


def undo(node: Node, environment: str, undone: str, announce: Callable[[str], None] = lambda _: None) -> Report:
    """Put back the directory a restore kept aside (the restored one is kept as <node>.failed-<id>)."""
    report = Report(undone)
    _timed(report, "stop the node", announce, node.stop)
    _timed(report, "swap back (restored directory kept aside)", announce,
           lambda: node.swap(None, undone, undo=True))
    _timed(report, "start the node", announce, node.start)
    report.ok = True
    return report



def discard(node: Node, discarded: str, announce: Callable[[str], None] = lambda _: None) -> Report:
    """Delete the directories a restore kept aside (the node keeps running: its own directory is never touched)."""
    report = Report(discarded)
    _timed(report, "delete what the restore kept aside", announce, lambda: node.discard(discarded))
    report.ok = True
    return report
