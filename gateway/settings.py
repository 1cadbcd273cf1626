"""Gateway settings, read from the environment. The CDK compute stack sets these same variables."""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass

DEFAULT_PORT = 8080
LIVENESS_PATH = "/gateway/live"
READINESS_PATH = "/gateway/ready"
# Chroma's default max_payload_size_bytes: larger bodies would be refused by Chroma anyway.
DEFAULT_MAX_BODY_BYTES = 41_943_040
DEFAULT_METRICS_NAMESPACE = "ChromaGateway"
# A rotation's pending token is accepted only this long after its version was created. A rotation takes minutes
# (four steps, each bounded by the rotation function's timeout); a pending version left by a failed rotation must
# not stay a valid credential. The rotation function refuses to go on with an older pending version.
PENDING_MAX_AGE_SECONDS = 3600

ENV_PORT = "GATEWAY_PORT"
ENV_LISTEN_ADDRESS = "GATEWAY_LISTEN_ADDRESS"
ENV_UPSTREAM_URL = "GATEWAY_UPSTREAM_URL"
ENV_UPSTREAM_TIMEOUT_SECONDS = "GATEWAY_UPSTREAM_TIMEOUT_SECONDS"
ENV_MAX_BODY_BYTES = "GATEWAY_MAX_BODY_BYTES"
ENV_TOKEN_SECRET_ID = "GATEWAY_TOKEN_SECRET_ID"
ENV_TOKEN_FILE = "GATEWAY_TOKEN_FILE"
ENV_TOKENS = "GATEWAY_TOKENS"
ENV_TOKEN_REFRESH_SECONDS = "GATEWAY_TOKEN_REFRESH_SECONDS"
ENV_PREVIOUS_TOKEN_GRACE_SECONDS = "GATEWAY_PREVIOUS_TOKEN_GRACE_SECONDS"
ENV_DRAIN_SECONDS = "GATEWAY_DRAIN_SECONDS"
ENV_CLIENT_TIMEOUT_SECONDS = "GATEWAY_CLIENT_TIMEOUT_SECONDS"
ENV_KEEPALIVE_SECONDS = "GATEWAY_KEEPALIVE_SECONDS"
ENV_METRICS_NAMESPACE = "GATEWAY_METRICS_NAMESPACE"
ENV_ENVIRONMENT = "GATEWAY_ENVIRONMENT"
ENV_HEADER_TIMEOUT_SECONDS = "GATEWAY_HEADER_TIMEOUT_SECONDS"
ENV_MAX_CONNECTIONS = "GATEWAY_MAX_CONNECTIONS"
ENV_MEMORY_LIMIT_MIB = "GATEWAY_MEMORY_LIMIT_MIB"
ENV_RUNTIME_DIR = "GATEWAY_RUNTIME_DIR"
ENV_CONTROL_PORT = "GATEWAY_CONTROL_PORT"
ENV_ACCESS_LOG_PORT = "GATEWAY_ACCESS_LOG_PORT"
ENV_HAPROXY = "GATEWAY_HAPROXY"
ENV_PENDING_MAX_AGE_SECONDS = "GATEWAY_PENDING_MAX_AGE_SECONDS"
ENV_NODE_DATA_DIR = "GATEWAY_NODE_DATA_DIR"
ENV_NODE_START_DIR = "GATEWAY_NODE_START_DIR"
ENV_START_CHECK_WAIT_SECONDS = "GATEWAY_START_CHECK_WAIT_SECONDS"
ENV_DISK_METRICS_SECONDS = "GATEWAY_DISK_METRICS_SECONDS"
ENV_CHROMA_VERSION = "GATEWAY_CHROMA_VERSION"
ENV_SNAPSHOT_DIR = "GATEWAY_SNAPSHOT_DIR"
ENV_SNAPSHOT_BUCKET = "GATEWAY_SNAPSHOT_BUCKET"
ENV_SNAPSHOT_PREFIX = "GATEWAY_SNAPSHOT_PREFIX"
ENV_SNAPSHOT_POLL_SECONDS = "GATEWAY_SNAPSHOT_POLL_SECONDS"
ENV_SNAPSHOT_MAX_PAUSE_SECONDS = "GATEWAY_SNAPSHOT_MAX_PAUSE_SECONDS"
ENV_SNAPSHOT_BUDGET_GIB = "GATEWAY_SNAPSHOT_BUDGET_GIB"
ENV_NODE_TENANTS = "GATEWAY_NODE_TENANTS"
ENV_TENANTS_ELSEWHERE = "GATEWAY_TENANTS_ELSEWHERE"
ENV_DEFAULT_NODE = "GATEWAY_DEFAULT_NODE"
ENV_NODE = "GATEWAY_NODE"
# Tenants placed on nodes: names the load balancer's path rules can match exactly (no %XX, no case folding).
# Requests may name the node they are meant for; the load balancer routes them there (cdk_app/node/routing.py)
# and every node answers with its name, so a tool can check which node served it.
NODE_HEADER = "X-Chroma-Node"
NODE_NAME = re.compile(r"^[a-z][a-z0-9-]{1,11}$")
TENANT_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{2,62}$")


class SettingsError(ValueError):
    """A gateway setting is missing or out of range; the message names the variable."""


@dataclass(frozen=True)
class Settings:
    upstream_url: str
    port: int = DEFAULT_PORT
    listen_address: str = "0.0.0.0"
    upstream_timeout_seconds: float = 60.0
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES
    token_secret_id: str | None = None
    token_file: str | None = None
    tokens: tuple[str, ...] = ()
    token_refresh_seconds: float = 15.0
    previous_token_grace_seconds: float = 3600.0
    drain_seconds: float = 25.0
    # A client must send the request line and headers within this, or gets 408.
    header_timeout_seconds: float = 10.0
    # A client that sends (or reads) nothing for this long in the middle of a request is disconnected.
    client_timeout_seconds: float = 30.0
    # Idle keep-alive connections close after this; keep it above the load balancer's idle timeout.
    keepalive_seconds: float = 120.0
    # Client connections the proxy holds at once; more wait in the kernel's accept queue. With the buffer size
    # (haproxy_config.BUFFER_BYTES), this bounds the proxy's memory: see memory_limit_mib.
    max_connections: int = 1024
    # Hard ceiling on the proxy's allocations (HAProxy -m): 1024 connections x 2 sides x 2 buffers x 16 KiB = 64 MiB,
    # plus HAProxy's own structures. The task's memory is Chroma's memory: the proxy cannot take more.
    memory_limit_mib: int = 160
    pending_max_age_seconds: float = float(PENDING_MAX_AGE_SECONDS)
    metrics_namespace: str = DEFAULT_METRICS_NAMESPACE
    environment: str = "local"
    # Writable directory for the rendered configuration, the token map and the admin socket (a task volume in ECS:
    # the root filesystem is read-only). Empty: a fresh temporary directory.
    runtime_dir: str = ""
    # Loopback ports of the control plane: readiness/liveness (TCP) and the proxy's access log (UDP).
    control_port: int = 8081
    access_log_port: int = 8082
    haproxy: str = "haproxy"
    # The node's directory (mounted read-only) and the task volume shared with the Chroma container's entrypoint:
    # with both set, the gateway runs the start check (gateway.node_start) and publishes disk metrics.
    node_data_dir: str = ""
    node_start_dir: str = ""
    # How long to wait for the entrypoint to hold the writer lock (it waits for the lock itself first).
    start_check_wait_seconds: float = 600.0
    disk_metrics_seconds: float = 60.0
    # Recovery points (gateway.snapshot): where they are written (beside the node's directory on the same file
    # system), and the S3 bucket and prefix where the backup job asks for one and reads the outcome.
    snapshot_dir: str = ""
    snapshot_bucket: str = ""
    # The Chroma image tag the node runs, recorded with every recovery point (Chroma's API reports its API
    # version, not its release): a restore into another release is refused unless forced.
    chroma_version: str = ""
    snapshot_prefix: str = ""
    snapshot_poll_seconds: float = 5.0
    # A copy that would hold writes longer than this is abandoned (writes flow again) and the backup fails.
    snapshot_max_pause_seconds: float = 300.0
    # The file system's capacity budget (capacity.budget_gib); 0: none. A copy that would pass it is refused.
    snapshot_budget_gib: float = 0.0
    # Tenant placement (several nodes behind one endpoint): the tenants placed on this node, the tenants placed on
    # others, and whether this node serves every tenant not placed anywhere. A request for a tenant that belongs
    # elsewhere is refused (421), never written here. One node (the default, no lists) serves every tenant.
    node_tenants: tuple[str, ...] = ()
    tenants_elsewhere: tuple[str, ...] = ()
    default_node: bool = True
    # The node's name: a dimension of its metrics, so each node of an environment has its own alarms.
    node: str = "primary"

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        """Settings from GATEWAY_* variables; an unset variable takes the field's default above."""
        env = os.environ if env is None else env
        upstream = env.get(ENV_UPSTREAM_URL, "").strip()
        if not upstream.startswith(("http://", "https://")):
            raise SettingsError(f"{ENV_UPSTREAM_URL} must be an http(s) URL such as http://127.0.0.1:8000")

        def number(name: str, field: str, low: float, high: float) -> float:
            default = getattr(cls, field)
            return _number(env, name, type(default), default, low, high)

        settings = cls(
            upstream_url=upstream.rstrip("/"),
            port=int(number(ENV_PORT, "port", 1, 65535)),
            listen_address=env.get(ENV_LISTEN_ADDRESS, cls.listen_address),
            upstream_timeout_seconds=number(ENV_UPSTREAM_TIMEOUT_SECONDS, "upstream_timeout_seconds", 0.1, 3600),
            max_body_bytes=int(number(ENV_MAX_BODY_BYTES, "max_body_bytes", 1, 1 << 31)),
            token_secret_id=env.get(ENV_TOKEN_SECRET_ID) or None,
            token_file=env.get(ENV_TOKEN_FILE) or None,
            tokens=tuple(t for t in env.get(ENV_TOKENS, "").split(",") if t),
            token_refresh_seconds=number(ENV_TOKEN_REFRESH_SECONDS, "token_refresh_seconds", 0.05, 30),
            previous_token_grace_seconds=number(ENV_PREVIOUS_TOKEN_GRACE_SECONDS, "previous_token_grace_seconds",
                                                0, 7 * 86400),
            drain_seconds=number(ENV_DRAIN_SECONDS, "drain_seconds", 0, 120),
            header_timeout_seconds=number(ENV_HEADER_TIMEOUT_SECONDS, "header_timeout_seconds", 0.1, 600),
            client_timeout_seconds=number(ENV_CLIENT_TIMEOUT_SECONDS, "client_timeout_seconds", 0.1, 600),
            keepalive_seconds=number(ENV_KEEPALIVE_SECONDS, "keepalive_seconds", 1, 4000),
            max_connections=int(number(ENV_MAX_CONNECTIONS, "max_connections", 1, 100_000)),
            memory_limit_mib=int(number(ENV_MEMORY_LIMIT_MIB, "memory_limit_mib", 32, 65_536)),
            pending_max_age_seconds=number(ENV_PENDING_MAX_AGE_SECONDS, "pending_max_age_seconds", 1, 7 * 86400),
            metrics_namespace=env.get(ENV_METRICS_NAMESPACE, cls.metrics_namespace),
            environment=env.get(ENV_ENVIRONMENT, cls.environment),
            runtime_dir=env.get(ENV_RUNTIME_DIR, cls.runtime_dir),
            control_port=int(number(ENV_CONTROL_PORT, "control_port", 1, 65535)),
            access_log_port=int(number(ENV_ACCESS_LOG_PORT, "access_log_port", 1, 65535)),
            haproxy=env.get(ENV_HAPROXY, cls.haproxy),
            node_data_dir=env.get(ENV_NODE_DATA_DIR, cls.node_data_dir),
            node_start_dir=env.get(ENV_NODE_START_DIR, cls.node_start_dir),
            start_check_wait_seconds=number(ENV_START_CHECK_WAIT_SECONDS, "start_check_wait_seconds", 1, 3600),
            disk_metrics_seconds=number(ENV_DISK_METRICS_SECONDS, "disk_metrics_seconds", 1, 3600),
            snapshot_dir=env.get(ENV_SNAPSHOT_DIR, cls.snapshot_dir),
            snapshot_bucket=env.get(ENV_SNAPSHOT_BUCKET, cls.snapshot_bucket),
            chroma_version=env.get(ENV_CHROMA_VERSION, cls.chroma_version),
            snapshot_prefix=env.get(ENV_SNAPSHOT_PREFIX, cls.snapshot_prefix).strip("/"),
            snapshot_poll_seconds=number(ENV_SNAPSHOT_POLL_SECONDS, "snapshot_poll_seconds", 0.1, 300),
            snapshot_max_pause_seconds=number(ENV_SNAPSHOT_MAX_PAUSE_SECONDS, "snapshot_max_pause_seconds", 1, 3600),
            snapshot_budget_gib=number(ENV_SNAPSHOT_BUDGET_GIB, "snapshot_budget_gib", 0, 1 << 20),
            node_tenants=_names(env, ENV_NODE_TENANTS),
            tenants_elsewhere=_names(env, ENV_TENANTS_ELSEWHERE),
            default_node=_flag(env, ENV_DEFAULT_NODE, cls.default_node),
            node=env.get(ENV_NODE, cls.node),
        )
        snapshot_fields = (settings.snapshot_dir, settings.snapshot_bucket, settings.snapshot_prefix,
                           settings.chroma_version)
        if (settings.snapshot_dir or settings.chroma_version) and not (all(snapshot_fields)
                                                                       and settings.node_data_dir):
            raise SettingsError(f"recovery points need {ENV_SNAPSHOT_DIR}, {ENV_SNAPSHOT_BUCKET}, "
                                f"{ENV_SNAPSHOT_PREFIX} and {ENV_CHROMA_VERSION} together, and {ENV_NODE_DATA_DIR}")
        if bool(settings.snapshot_bucket) != bool(settings.snapshot_prefix):
            raise SettingsError(f"set {ENV_SNAPSHOT_BUCKET} and {ENV_SNAPSHOT_PREFIX} together (the node's prefix "
                                "of the requests bucket: recovery points and tenant moves), or neither")
        if bool(settings.node_data_dir) != bool(settings.node_start_dir):
            raise SettingsError(f"set both {ENV_NODE_DATA_DIR} and {ENV_NODE_START_DIR} (the start check needs the "
                                "node's directory and the volume shared with Chroma's entrypoint), or neither")
        if both := sorted(set(settings.node_tenants) & set(settings.tenants_elsewhere)):
            raise SettingsError(f"tenants {both} are in both {ENV_NODE_TENANTS} and {ENV_TENANTS_ELSEWHERE}: "
                                "a tenant is placed on exactly one node")
        if not NODE_NAME.match(settings.node):
            raise SettingsError(f"{ENV_NODE}={settings.node!r}: use 2-12 characters: lowercase letters, digits and "
                                "'-', starting with a letter")
        if not settings.default_node and not settings.node_tenants:
            raise SettingsError(f"{ENV_DEFAULT_NODE}=false needs the node's tenants in {ENV_NODE_TENANTS}")
        sources = sum(bool(s) for s in (settings.token_secret_id, settings.token_file, settings.tokens))
        if sources != 1:
            raise SettingsError(f"set exactly one token source: {ENV_TOKEN_SECRET_ID}, {ENV_TOKEN_FILE} or "
                                f"{ENV_TOKENS} (found {sources})")
        return settings


def _number(env: Mapping[str, str], name: str, kind: type[int] | type[float], default: float, low: float,
            high: float) -> float:
    raw = env.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = kind(raw)
    except ValueError:
        raise SettingsError(f"{name}={raw!r} is not {'an integer' if kind is int else 'a number'}") from None
    if not low <= value <= high:
        raise SettingsError(f"{name}={raw!r} is out of range: use {low} to {high}")
    return value


def _names(env: Mapping[str, str], name: str) -> tuple[str, ...]:
    names = tuple(n.strip() for n in env.get(name, "").split(",") if n.strip())
    if bad := [n for n in names if not TENANT_NAME.match(n)]:
        raise SettingsError(f"{name}: {bad} are not tenant names a load balancer rule can match: use 3 to 63 "
                            "letters, digits, '.', '_' or '-', starting with a letter or digit")
    return names


def _flag(env: Mapping[str, str], name: str, default: bool) -> bool:
    value = env.get(name, "").strip().lower()
    if not value:
        return default
    if value not in ("true", "false"):
        raise SettingsError(f"{name} = {value!r}: use true or false")
    return value == "true"
