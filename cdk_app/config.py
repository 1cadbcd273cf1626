"""Typed, frozen configuration of one deployment environment.

Every field is checked by `cdk_app.validation` when the config is built, so a mistake fails at synth with a
message naming the field, the bad value and what is allowed, never at deploy.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from enum import StrEnum

from cdk_app.constants import SERVICE_NAME


class CpuArchitecture(StrEnum):
    ARM64 = "ARM64"
    X86_64 = "X86_64"


class EfsThroughputMode(StrEnum):
    # Elastic is AWS's recommendation for spiky workloads and needs no burst-credit babysitting.
    ELASTIC = "elastic"
    BURSTING = "bursting"
    PROVISIONED = "provisioned"


@dataclass(frozen=True)
class ChromaImage:
    """The official Chroma image, mirrored into the environment's ECR at deploy (see `chroma_image/`)."""

    repository: str = "chromadb/chroma"
    tag: str = "1.5.9"

    @property
    def reference(self) -> str:
        return f"{self.repository}:{self.tag}"


@dataclass(frozen=True)
class NetworkConfig:
    vpc_cidr: str
    # Given explicitly so synth never looks them up; at least two, all in the environment's region.
    availability_zones: tuple[str, ...]
    # NAT gateways for outbound internet; 0 means private subnets reach AWS only through VPC endpoints.
    nat_gateways: int = 0
    # Interface endpoints (ECR, Logs, Secrets Manager, KMS, ...); required when there is no NAT gateway.
    interface_endpoints: bool = True
    # The zones (the first N of availability_zones) that hold the interface endpoints; None: every zone. Each
    # endpoint costs ~$7.30/month per zone: one zone saves 5 x $7.30 per other zone, and a task in another zone
    # reaches it across zones, but an outage of that zone stops image pulls, logs and token reads everywhere (a
    # node that restarts then cannot start). For environments that can wait for a zone to come back.
    endpoint_zones: int | None = None
    flow_log_retention_days: int = 90


@dataclass(frozen=True)
class CollectionSize:
    vectors: int
    dim: int


@dataclass(frozen=True)
class TaskConfig:
    # Fargate task size: CPU units and memory (MiB) must be a valid Fargate pair. Chroma's HNSW index must fit in
    # the task's memory (Chroma: ~0.245 x RAM-in-GB million 1024-d vectors); the Rust server honours no other limit.
    cpu: int = 1024
    memory_mib: int = 4096
    architecture: CpuArchitecture = CpuArchitecture.ARM64
    # Seconds the gateway waits for Chroma (the first query after a restart loads the index from EFS).
    upstream_timeout_seconds: int = 60
    # Grace period before load balancer health checks count, covering Chroma start and index warm-up.
    health_check_grace_seconds: int = 120
    log_retention_days: int = 30
    # The largest collection you expect on this node. Chroma keeps at most as many collections' indexes loaded as
    # fit the task's memory at this size (its index cache capacity, from the capacity model in ops/capacity.py),
    # so memory stays bounded however many collections exist; others load from EFS when used.
    collection_size: CollectionSize = CollectionSize(vectors=50_000, dim=768)


@dataclass(frozen=True)
class LoadBalancerConfig:
    internet_facing: bool = False
    # Who may connect. An internal load balancer with neither accepts the VPC's own CIDR.
    allowed_client_cidrs: tuple[str, ...] = ()
    allowed_client_security_group_ids: tuple[str, ...] = ()
    access_log_retention_days: int = 90


@dataclass(frozen=True)
class TlsConfig:
    """HTTPS on the load balancer with an existing ACM certificate for `domain_name`."""

    certificate_arn: str
    domain_name: str
    # Optional Route 53 zone (id and name) in which to create an alias record for domain_name.
    hosted_zone_id: str | None = None
    hosted_zone_name: str | None = None


@dataclass(frozen=True)
class StorageConfig:
    throughput_mode: EfsThroughputMode = EfsThroughputMode.ELASTIC
    # Only for PROVISIONED throughput.
    provisioned_throughput_mibps: int | None = None


class Automation(StrEnum):
    """Safe remediations an alarm may start (SSM Automation documents; operators can run them by hand too)."""

    RESTART_SERVICE = "restart-service"  # a new deployment, honouring the single-writer settings
    BACKUP_NOW = "backup-now"  # an on-demand AWS Backup of the file system


@dataclass(frozen=True)
class CapacityConfig:
    """What the EFS capacity check measures against, and when its alarms fire."""

    budget_gib: int = 100
    check_every_minutes: int = 60
    warning_percent: int = 80
    critical_percent: int = 90
    # Alarm when, at the current growth rate, the budget is full in fewer days than this.
    days_to_full_threshold: int = 14


@dataclass(frozen=True)
class AlarmConfig:
    """Alarm thresholds. Defaults are tight on purpose (see runbooks/README.md for why each is what it is)."""

    alb_5xx_percent: float = 1.0
    response_time_p95_ms: int = 250
    # Gateway p99 latency per Chroma operation (ms).
    operation_p99_ms: tuple[tuple[str, int], ...] = (("query", 500), ("get", 1000), ("add", 2000),
                                                     ("upsert", 2000))
    gateway_5xx_per_5_minutes: int = 5
    auth_failures_per_5_minutes: int = 50
    memory_percent: int = 85
    cpu_percent: int = 80
    efs_io_limit_percent: int = 90
    rotation_overdue_margin_days: int = 2
    # The restart automation does nothing (and raises restart-suppressed instead) within this long of the service's
    # last deployment: a working set that really is too big must be resized, not restarted in a loop.
    restart_cooldown_minutes: int = 60
    # Rows in Chroma's write-ahead log (embeddings_queue) that never go away for an hour: the log has stopped being
    # purged. Purged normally, it holds what indexes have not saved yet (under sync_threshold, 1000 by default, per
    # collection written to), so this is well above a busy node's steady state.
    log_rows_max: int = 100_000
    # (alarm id, automation): an alarm entering ALARM starts that automation.
    automations: tuple[tuple[str, Automation], ...] = ()


@dataclass(frozen=True)
class BackupConfig:
    """A daily quiesced recovery point at hour:minute UTC (lambdas/recovery_point), kept retention_days."""

    hour_utc: int = 3
    minute_utc: int = 0
    retention_days: int = 35
    # The longest the node may hold writes while it copies its directory: a longer copy is abandoned, writes flow
    # again and the backup fails loudly (alarm recovery-point-failed). Measured: ~0.3 s/GiB locally; see
    # docs/recovery-points.md for the EFS estimate.
    max_write_pause_seconds: int = 300
    # A pause longer than this raises write-pause-long: the data is outgrowing a pause clients ride through.
    pause_alarm_seconds: int = 30


# The node every environment has: today's single node. It keeps its resources' names and logical ids, its directory
# (/chroma/primary) and takes every tenant not placed on another node (and every request naming no tenant).
PRIMARY_NODE = "primary"


@dataclass(frozen=True)
class VectorBudget:
    """What a node is sized for, in the capacity model's units (ops/capacity.py): vectors of `dim` dimensions in
    all its tenants' collections, and the metadata bytes each record carries."""

    vectors: int
    dim: int
    metadata_bytes_per_vector: int = 0


@dataclass(frozen=True)
class NodeConfig:
    """One single-writer Chroma node: its own ECS service, file system, writer lock, target group, alarms.

    Requests naming a tenant in `tenants` (path /api/v2/tenants/<tenant>/...) are routed to this node by the load
    balancer; the node creates those tenants at start and refuses (421) any tenant placed on another node.
    """

    name: str
    tenants: tuple[str, ...] = ()
    # The node's Fargate task; None: the environment's `task`.
    task: TaskConfig | None = None
    # The workload the node must hold; validated against its task's memory at synth. None: not declared.
    budget: VectorBudget | None = None


@dataclass(frozen=True)
class EnvironmentConfig:
    name: str
    region: str
    network: NetworkConfig
    # 12-digit account id; None means CDK_DEFAULT_ACCOUNT, or an account-agnostic template when that is unset.
    account: str | None = None
    chroma_image: ChromaImage = field(default_factory=ChromaImage)
    task: TaskConfig = field(default_factory=TaskConfig)
    load_balancer: LoadBalancerConfig = field(default_factory=LoadBalancerConfig)
    tls: TlsConfig | None = None
    storage: StorageConfig = field(default_factory=StorageConfig)
    backup: BackupConfig = field(default_factory=BackupConfig)
    capacity: CapacityConfig = field(default_factory=CapacityConfig)
    alarms: AlarmConfig = field(default_factory=AlarmConfig)
    # Keep the file system, key, vault, secret and logs bucket when the stack or environment is deleted.
    retain_data: bool = True
    termination_protection: bool = False
    alarm_emails: tuple[str, ...] = ()
    runbook_base_url: str = "https://github.com/example-org/chroma-on-aws/blob/main/runbooks"
    cost_centre: str = "vector-search"
    # Days between gateway token rotations (by the rotation Lambda).
    token_rotation_days: int = 30
    # Minutes the gateway still accepts the previous token after a rotation, so clients can pick up the new one.
    previous_token_grace_minutes: int = 60
    # The Chroma nodes (scale-out by tenant, docs/nodes.md). One of them is always PRIMARY_NODE, the default node.
    nodes: tuple[NodeConfig, ...] = (NodeConfig(PRIMARY_NODE),)

    def __post_init__(self) -> None:
        from cdk_app.validation import validate_environment

        validate_environment(self)

    def with_account(self, account: str | None) -> EnvironmentConfig:
        """This config with `account` filled in when the config itself names none."""
        if self.account is not None or account is None:
            return self
        return replace(self, account=account)

    def node(self, name: str) -> NodeConfig:
        for node in self.nodes:
            if node.name == name:
                return node
        raise KeyError(f"environment {self.name!r} has no node {name!r}; its nodes: "
                       f"{', '.join(n.name for n in self.nodes)}")

    def node_task(self, node: NodeConfig) -> TaskConfig:
        return node.task or self.task

    @property
    def tenant_placement(self) -> dict[str, str]:
        """Tenant -> the node it is placed on (tenants not listed are on PRIMARY_NODE)."""
        return {tenant: node.name for node in self.nodes for tenant in node.tenants}

    @property
    def tags(self) -> dict[str, str]:
        return {"env": self.name, "service": SERVICE_NAME, "cost-centre": self.cost_centre}
