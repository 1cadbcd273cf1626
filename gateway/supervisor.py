"""The gateway's control plane: runs HAProxy (the data path) and keeps it supplied with tokens.

- renders HAProxy's configuration and starts it, restarting it if it dies (with a backoff; gives up, and exits
  non-zero so ECS replaces the task, after `MAX_RESTARTS` within `RESTART_WINDOW_SECONDS`);
- refreshes the token set every `token_refresh_seconds` (and when a grace period or a pending token's age runs
  out) and swaps HAProxy's token map atomically at run time: no reload, no connection dropped;
- answers liveness and readiness (tokens loaded and applied, HAProxy running, Chroma's heartbeat);
- turns HAProxy's access lines into the EMF access log (`gateway.access_log`, on its own thread);
- on SIGTERM, drains: HAProxy stops accepting at once, finishes in-flight requests within `drain_seconds`;
- on a node (node_data_dir set): before HAProxy starts, checks the node's directory while Chroma's entrypoint holds
  the writer lock (gateway.node_start), quarantines the collections that fail (HAProxy answers 503 for them;
  readiness lists them) and publishes the node's disk metrics every `disk_metrics_seconds`.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import os
import signal
import sqlite3
import subprocess
import tempfile
import time
from collections import deque
from dataclasses import asdict
from pathlib import Path

from gateway import haproxy_config, integrity, node_start, restore_check, snapshot, tenant_moves, tenants
from gateway.access_log import AccessLogReceiver
from gateway.chroma_api import ChromaApi, ChromaError
from gateway.control import HEARTBEAT_PATH, ControlServer, http_status
from gateway.files import write_atomically
from gateway.runtime_api import RuntimeApi, RuntimeApiError, digest
from gateway.settings import TENANT_NAME, Settings
from gateway.snapshot_requests import S3SnapshotRequests
from gateway.telemetry import AccessLog
from gateway.tokens import TokenCache

log = logging.getLogger("gateway")

HEARTBEAT_TIMEOUT_SECONDS = 2.0
MAX_RESTARTS = 5
RESTART_WINDOW_SECONDS = 60.0
START_TIMEOUT_SECONDS = 10.0


class ProxyError(RuntimeError):
    """HAProxy cannot be started (bad configuration, missing binary) or keeps dying."""


class Supervisor:
    def __init__(self, settings: Settings, tokens: TokenCache, access_log: AccessLog) -> None:
        self.settings = settings
        self.tokens = tokens
        self.access_log = access_log
        self.runtime_dir = Path(settings.runtime_dir or tempfile.mkdtemp(prefix="gateway-"))
        self.api = RuntimeApi(self.runtime_dir / haproxy_config.ADMIN_SOCKET)
        self.config = self.runtime_dir / haproxy_config.CONFIG_FILE
        self.tokens_map = self.runtime_dir / haproxy_config.TOKENS_MAP
        host, _, port = settings.upstream_url.removeprefix("http://").partition(":")
        self.upstream = (host, int(port or 80))
        self.proxy: asyncio.subprocess.Process | None = None
        self.applied: frozenset[str] | None = None  # digests HAProxy holds now
        self.draining = False
        self.starting = bool(settings.node_data_dir)  # the start check has not finished
        self.quarantined: tuple[integrity.Verdict, ...] = ()
        self.holds = snapshot.WriteHolds(self.api, self.runtime_dir)  # why writes are held, if they are
        self.moves = tenant_moves.MoveMaps(self.api, self.runtime_dir)  # tenants held or moving in
        self.restore: dict[str, object] | None = None  # a restore not verified yet (gateway.restore_check)
        self.restore_verdict: restore_check.RestoreVerdict | None = None
        self.tenants_ready = not settings.node_tenants  # the tenants placed on this node exist in Chroma
        self.last_snapshot: dict[str, object] | None = None
        self.started_at = time.time()
        self._restarts: deque[float] = deque(maxlen=MAX_RESTARTS)

    # tokens
    def wanted(self) -> frozenset[str]:
        return frozenset(digest(token) for token in self.tokens.tokens.active(time.time()))

    def _write_map(self, digests: frozenset[str]) -> None:
        write_atomically(self.tokens_map, "".join(f"{entry} 1\n" for entry in sorted(digests)))

    def apply_tokens(self) -> None:
        """Swap HAProxy's token map if the accepted set changed; the map file follows, for a restarted HAProxy."""
        wanted = self.wanted()
        if wanted == self.applied or self.proxy is None or self.proxy.returncode is not None:
            return
        self._write_map(wanted)
        self.api.replace_map(self.tokens_map, wanted)
        self.applied = wanted
        log.info("token set applied", extra={"event": "tokens_applied", "accepted": len(wanted)})

    async def token_loop(self) -> None:
        """Refresh every token_refresh_seconds; re-apply at once when a grace period or a pending token's age ends.
        A failed apply is logged and retried on the next turn: the loop itself never stops."""
        while True:
            interval = self.settings.token_refresh_seconds
            change = self.tokens.tokens.next_change(time.time())
            if change is not None:
                interval = min(interval, max(change - time.time(), 0.0) + 0.01)
            await asyncio.sleep(interval)
            if change is None or time.time() < change:
                await asyncio.to_thread(self.tokens.refresh)
            try:
                await asyncio.to_thread(self.apply_tokens)
            except RuntimeApiError as error:
                log.error("could not apply the token set; will retry", extra={"event": "tokens_apply_failed",
                                                                              "error": str(error)})

    # the proxy
    def check_config(self) -> None:
        try:
            result = subprocess.run([self.settings.haproxy, "-c", "-f", str(self.config)],
                                    capture_output=True, text=True, check=False, timeout=30)
        except FileNotFoundError:
            raise ProxyError(f"HAProxy not found at {self.settings.haproxy!r}: install haproxy "
                             "(make setup does) or set GATEWAY_HAPROXY") from None
        if result.returncode != 0:
            raise ProxyError(f"HAProxy refused its configuration {self.config}:\n{result.stderr or result.stdout}")

    async def start_proxy(self) -> None:
        digests = self.wanted() if self.tokens.tokens.loaded else frozenset()
        self._write_map(digests)
        self.proxy = await asyncio.create_subprocess_exec(
            self.settings.haproxy, "-db", "-f", str(self.config), "-m", str(self.settings.memory_limit_mib))
        deadline = time.monotonic() + START_TIMEOUT_SECONDS
        while True:
            try:
                await asyncio.to_thread(self.api.command, "show info")
                break
            except RuntimeApiError:
                if self.proxy.returncode is not None or time.monotonic() > deadline:
                    raise ProxyError(f"HAProxy did not start (exit {self.proxy.returncode})") from None
                await asyncio.sleep(0.05)
        self.applied = digests
        log.info("proxy started", extra={"event": "proxy_started", "pid": self.proxy.pid,
                                         "accepted": len(digests)})

    async def supervise(self) -> None:
        """Restart HAProxy when it dies; raise ProxyError when it keeps dying."""
        while True:
            assert self.proxy is not None
            code = await self.proxy.wait()
            if self.draining:
                return
            now = time.monotonic()
            self._restarts.append(now)
            log.error("proxy exited; restarting", extra={"event": "proxy_exited", "exit_code": code})
            if len(self._restarts) == MAX_RESTARTS and now - self._restarts[0] < RESTART_WINDOW_SECONDS:
                raise ProxyError(f"HAProxy exited {MAX_RESTARTS} times within {RESTART_WINDOW_SECONDS:g} s")
            await asyncio.sleep(min(0.2 * 2 ** (len(self._restarts) - 1), 5.0))
            await self.start_proxy()

    # the node
    async def check_node(self) -> None:
        report = await node_start.start_check(self.settings)
        self.quarantined = report.quarantined
        write_atomically(self.runtime_dir / haproxy_config.QUARANTINE_LIST,
                         "".join(f"/collections/{v.collection_id}\n" for v in self.quarantined))
        self.starting = False

    async def disk_metrics_loop(self) -> None:
        data_dir = Path(self.settings.node_data_dir)
        while True:
            try:
                usage = await asyncio.to_thread(integrity.disk_usage, data_dir)
                values = {"QuarantinedCollections": len(self.quarantined), "SqliteBytes": usage.sqlite_bytes,
                          "IndexBytes": usage.index_bytes, "WritesHeld": int(bool(self.holds.reasons))}
                if usage.log_rows is not None:
                    values["LogRows"] = usage.log_rows
                self.access_log.node_metrics(values)
            except (OSError, sqlite3.Error) as error:
                log.warning("could not measure the node's directory", extra={"event": "disk_metrics_failed",
                                                                             "error": str(error)})
            await asyncio.sleep(self.settings.disk_metrics_seconds)

    def details(self) -> dict[str, object]:
        return {"quarantined_collections": [
            {"id": v.collection_id, "name": v.name, "tenant": v.tenant, "database": v.database, "problem": v.problem}
            for v in self.quarantined],
            "writes": f"held: {', '.join(sorted(self.holds.reasons))}" if self.holds.reasons else "flowing",
            "node": self.settings.node,
            "tenants_moving": {"held": list(self.moves.applied.held), "incoming": list(self.moves.applied.incoming)},
            "last_recovery_point": self.last_snapshot,
            "restore": asdict(self.restore_verdict) if self.restore_verdict else self.restore}

    # recovery points
    @functools.cached_property
    def snapshot_requests(self) -> S3SnapshotRequests:
        """The node's prefix of the requests bucket: recovery point requests, their answers, restore verdicts."""
        import boto3

        return S3SnapshotRequests(boto3.client("s3"), self.settings.snapshot_bucket, self.settings.snapshot_prefix)

    async def snapshot_loop(self) -> None:
        """Take the recovery points the backup job asks for (gateway.snapshot_requests), one at a time."""
        from botocore.exceptions import BotoCoreError, ClientError

        s = self.settings
        requests = self.snapshot_requests
        gate = self.holds.gate("recovery point")
        where = snapshot.SnapshotSettings(source=Path(s.node_data_dir), root=Path(s.snapshot_dir),
                                          drain_seconds=s.upstream_timeout_seconds,
                                          max_pause_seconds=s.snapshot_max_pause_seconds,
                                          budget_bytes=int(s.snapshot_budget_gib * (1 << 30)) or None)
        while True:
            await asyncio.sleep(s.snapshot_poll_seconds)
            try:
                request = await asyncio.to_thread(requests.poll)
            except (BotoCoreError, ClientError) as error:
                log.warning("cannot read snapshot requests", extra={"event": "snapshot_poll_failed",
                                                                    "error": str(error)})
                continue
            if request is None:
                continue
            outcome = await self.take_snapshot(gate, where, request.snapshot_id)
            try:
                await asyncio.to_thread(requests.answer, request.snapshot_id, outcome)
            except (BotoCoreError, ClientError) as error:
                log.error("cannot report a recovery point", extra={"event": "snapshot_report_failed",
                                                                   "snapshot_id": request.snapshot_id,
                                                                   "error": str(error)})

    async def take_snapshot(self, gate: snapshot.WriteGate, where: snapshot.SnapshotSettings,
                            snapshot_id: str) -> dict[str, object]:
        try:
            if restore_check.REASON in self.holds.reasons:
                raise snapshot.SnapshotError("this node was restored and its data is not verified yet: no recovery "
                                             "point of it")
            point = await asyncio.to_thread(snapshot.take, gate, where, snapshot_id, self.settings.chroma_version)
        except (snapshot.SnapshotError, RuntimeApiError, OSError) as error:
            log.error("recovery point failed: no copy was kept, writes flow", extra={
                "event": "snapshot_failed", "snapshot_id": snapshot_id, "error": str(error)})
            self.access_log.node_metrics({"SnapshotFailed": 1})
            return {"status": "failed", "snapshot_id": snapshot_id, "error": str(error)}
        self.access_log.node_metrics({"SnapshotFailed": 0, "SnapshotPauseSeconds": point.pause_seconds,
                                      "SnapshotBytes": point.bytes, "SnapshotCopiedBytes": point.copied_bytes})
        self.last_snapshot = {"id": point.snapshot_id, "pause_seconds": point.pause_seconds, "bytes": point.bytes,
                              "copied_bytes": point.copied_bytes, "created_at": point.created_at}
        return {"status": "ok", **asdict(point)}

    async def _chroma_answers(self) -> ChromaApi:
        """Wait until Chroma answers its heartbeat; its API on loopback."""
        host, port = self.upstream
        while True:
            try:
                if await http_status(host, port, HEARTBEAT_PATH, HEARTBEAT_TIMEOUT_SECONDS) == 200:
                    return ChromaApi(host, port)
            except (OSError, TimeoutError):
                pass
            await asyncio.sleep(0.5)

    # tenant moves
    @functools.cached_property
    def move_control(self) -> tenant_moves.S3MoveControl:
        import boto3

        return tenant_moves.S3MoveControl(boto3.client("s3"), self.settings.snapshot_bucket,
                                          self.settings.snapshot_prefix, TENANT_NAME)

    async def read_move_control(self) -> tenant_moves.MoveControl | None:
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            return await asyncio.to_thread(self.move_control.poll)
        except (BotoCoreError, ClientError) as error:
            log.warning("cannot read the tenant-move control", extra={"event": "tenant_moves_poll_failed",
                                                                       "error": str(error)})
            return None

    async def moves_loop(self, at_start: tenant_moves.MoveControl | None) -> None:
        """Apply each new control document (gateway.tenant_moves), then answer once no write is in flight (or the
        upstream timeout has passed: a write still running in Chroma then is caught by the move's verification).
        The document applied at start is answered again: the answer carries the node's deployed placement, which
        tells the move's tool when a deploy has given the node its tenant."""
        if at_start is not None:
            await self.answer_move_control(at_start, 0)
        while True:
            await asyncio.sleep(self.settings.snapshot_poll_seconds)
            control = await self.read_move_control()
            if control is None:
                continue
            try:
                await asyncio.to_thread(self.moves.apply, control)
            except RuntimeApiError as error:
                log.error("cannot apply the tenant-move control; retrying", extra={"event": "tenant_moves_failed",
                                                                                   "error": str(error)})
                self.move_control.forget()  # read it again next turn
                continue
            in_flight = await asyncio.to_thread(snapshot.drain, self.holds.in_flight,
                                                self.settings.upstream_timeout_seconds)
            log.info("tenant-move control applied", extra={
                "event": "tenant_moves_applied", "control_id": control.control_id, "held": list(control.held),
                "incoming": list(control.incoming), "writes_in_flight": in_flight})
            await self.answer_move_control(control, in_flight)

    async def answer_move_control(self, control: tenant_moves.MoveControl, in_flight: int) -> None:
        from botocore.exceptions import BotoCoreError, ClientError

        s = self.settings
        try:
            await asyncio.to_thread(self.move_control.answer, control.control_id, {
                "status": "ok", "node": s.node, "held": list(control.held), "incoming": list(control.incoming),
                "writes_in_flight": in_flight, "started_at": self.started_at,
                "placement": {"here": list(s.node_tenants), "elsewhere": list(s.tenants_elsewhere),
                              "default": s.default_node}})
        except (BotoCoreError, ClientError) as error:
            log.error("cannot answer the tenant-move control", extra={"event": "tenant_moves_answer_failed",
                                                                      "error": str(error)})

    # tenants placed on this node
    async def tenants_loop(self) -> None:
        """Create the node's tenants once Chroma answers (readiness waits for it); retried until it works."""
        while True:
            api = await self._chroma_answers()
            try:
                created = await asyncio.to_thread(tenants.ensure, api, self.settings.node_tenants)
            except (ChromaError, OSError) as error:
                log.error("cannot create the node's tenants; retrying", extra={"event": "tenants_failed",
                                                                               "error": str(error)})
                await asyncio.sleep(2.0)
                continue
            self.tenants_ready = True
            log.info("the node's tenants exist", extra={"event": "tenants_ready", "tenants_created": created,
                                                         "tenants": list(self.settings.node_tenants)})
            return

    # restores
    async def restore_loop(self, restore: dict[str, object]) -> None:
        """Verify a restored directory once Chroma answers; writes flow only if it passes."""
        api = await self._chroma_answers()
        quarantined = {f"{v.tenant}/{v.database}/{v.name}" for v in self.quarantined}
        verdict = await asyncio.to_thread(restore_check.verify, api, restore, quarantined)
        self.restore_verdict = verdict
        recovery_points = Path(self.settings.snapshot_dir)
        await asyncio.to_thread(restore_check.record, recovery_points, verdict)
        if verdict.ok:
            await asyncio.to_thread(self.holds.release, restore_check.REASON)
            log.info("restore verified: writes flow", extra={"event": "restore_verified", **asdict(verdict)})
        else:
            log.error("restore not verified: writes stay held", extra={"event": "restore_failed",
                                                                       **asdict(verdict)})
        if self.settings.snapshot_bucket:
            from botocore.exceptions import BotoCoreError, ClientError

            try:
                outcome = {"status": "ok" if verdict.ok else "failed", **asdict(verdict)}
                await asyncio.to_thread(self.snapshot_requests.answer, verdict.restore_id, outcome)
            except (BotoCoreError, ClientError) as error:
                log.error("cannot report the restore's verdict", extra={"event": "restore_report_failed",
                                                                        "error": str(error)})

    # readiness
    async def problems(self) -> list[str]:
        problems = []
        if self.starting:
            problems.append("checking the node's directory before Chroma starts")
        if self.draining:
            problems.append("draining")
        if not self.tenants_ready:
            problems.append("creating the tenants placed on this node")
        if not self.tokens.tokens.loaded:
            problems.append("tokens not loaded")
        elif not self.applied:
            problems.append("tokens not applied to the proxy")
        if self.proxy is None or self.proxy.returncode is not None:
            problems.append("proxy not running")
        try:
            status = await http_status(*self.upstream, HEARTBEAT_PATH, HEARTBEAT_TIMEOUT_SECONDS)
            if status != 200:
                problems.append(f"chroma heartbeat returned {status}")
        except (OSError, TimeoutError):
            problems.append("chroma heartbeat failed: unreachable or timed out")
        return problems

    async def drain(self) -> None:
        self.draining = True
        log.info("draining", extra={"event": "draining", "drain_seconds": self.settings.drain_seconds})
        if self.proxy is None or self.proxy.returncode is not None:
            return
        self.proxy.send_signal(signal.SIGUSR1)  # soft stop: stop accepting now, finish what is in flight
        try:
            await asyncio.wait_for(self.proxy.wait(), self.settings.drain_seconds + 1)
        except TimeoutError:
            log.warning("drain timed out; stopping the proxy", extra={"event": "drain_timeout"})
            self.proxy.kill()
            await self.proxy.wait()

    async def run(self) -> int:
        loop = asyncio.get_running_loop()
        stop = asyncio.Event()
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(signum, stop.set)
        self.runtime_dir.mkdir(parents=True, exist_ok=True)
        haproxy_config.write(self.settings, self.runtime_dir, run_as_root=os.geteuid() == 0)
        self.check_config()
        access = AccessLogReceiver(self.access_log, self.settings.access_log_port)
        access.start()
        control = await ControlServer(self.problems, lambda: self.tokens.consecutive_failures,
                                      self.details).start(self.settings.control_port)
        if self.settings.node_data_dir:
            try:
                await self.check_node()
            except node_start.StartCheckError as error:
                log.error("start check failed: Chroma is not started", extra={"event": "start_check_failed",
                                                                              "error": str(error)})
                control.close()
                access.stop()
                return 4
        if self.settings.snapshot_dir:
            self.restore = restore_check.pending(Path(self.settings.snapshot_dir))
            if self.restore is not None:
                self.holds.hold_at_start(restore_check.REASON)
                log.warning("restored directory: writes held until it is verified", extra={
                    "event": "restore_pending", "restore_id": self.restore.get("restore_id")})
        moving = None
        if self.settings.snapshot_bucket:
            # A tenant move under way holds (or accepts) its tenant from the first request on.
            moving = await self.read_move_control()
            if moving is not None:
                self.moves.write_files(moving)
        await asyncio.to_thread(self.tokens.refresh)  # may fail: then nothing is accepted and readiness says why
        await self.start_proxy()
        background = [asyncio.create_task(self.token_loop())]
        if self.settings.node_data_dir:
            background.append(asyncio.create_task(self.disk_metrics_loop()))
        if self.settings.snapshot_dir:
            background.append(asyncio.create_task(self.snapshot_loop()))
        if self.settings.snapshot_bucket:
            background.append(asyncio.create_task(self.moves_loop(moving)))
        if self.restore is not None:
            background.append(asyncio.create_task(self.restore_loop(self.restore)))
        if self.settings.node_tenants:
            background.append(asyncio.create_task(self.tenants_loop()))
        supervised = asyncio.create_task(self.supervise())
        stopped = asyncio.create_task(stop.wait())
        try:
            done, _ = await asyncio.wait({supervised, stopped}, return_when=asyncio.FIRST_COMPLETED)
            if supervised in done and supervised.exception() is not None:
                log.error("giving up", extra={"event": "proxy_failed", "error": str(supervised.exception())})
                return 1
            await self.drain()
            return 0
        finally:
            for task in (*background, supervised, stopped):
                task.cancel()
            with contextlib.suppress(asyncio.CancelledError, ProxyError):
                await asyncio.gather(*background, supervised, stopped, return_exceptions=True)
            control.close()
            access.stop()
            log.info("gateway stopped", extra={"event": "stop"})
