"""Monthly cost of an environment from its config and a dated price table, itemized like the case study's."""

from __future__ import annotations

import json
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from cdk_app.config import EfsThroughputMode, EnvironmentConfig, NodeConfig
from cdk_app.constants import INTERFACE_ENDPOINTS
from cdk_app.observability.alarm_ids import (
    ALARM_RUNBOOKS,
    COMPOSITE_ALARM_ID,
    ENVIRONMENT_ALARM_IDS,
    latency_alarm_id,
)
from gateway.operations import OPERATIONS
from gateway.settings import Settings
from gateway.telemetry import METRICS as GATEWAY_METRICS
from gateway.telemetry import NODE_METRICS
from lambdas.capacity_check.function.settings import METRIC_NAMES as CAPACITY_METRICS
from lambdas.recovery_point.function.settings import METRICS as RECOVERY_POINT_METRICS
from lambdas.token_rotation.function.settings import STEP_METRICS, STEPS
from ops.errors import OpsError, UsageError

PRICES_PATH = Path(__file__).resolve().parent / "prices_us_east_1.json"
# The case study's design and its published monthly figures (us-east-1).
CASE_STUDY = (("ECS Fargate (2 tasks, 4 vCPU / 8 GB, x86)", 280.0), ("Application Load Balancer", 25.0),
              ("EFS storage (100 GB)", 30.0), ("NAT gateway", 45.0))
CASE_STUDY_TOTAL = 380.0
TOKEN_AGE_METRICS = 1  # DaysSinceRotation
# The data key (Storage stack) and the flow-log key (Network stack).
CUSTOMER_MANAGED_KEYS = 2
RESTART_METRICS = 1  # RestartSuppressed (cdk_app/observability/restart_guard.py)
# Secrets Manager calls per gateway refresh: one DescribeSecret (values are fetched once per new version).
CALLS_PER_TOKEN_REFRESH = 1


@dataclass(frozen=True)
class Usage:
    """What the bill depends on beyond the config: defaults are a modest production workload."""

    data_gib: float | None = field(default=None, metadata={
        "help": "data stored on EFS: the node's directory and its one quiesced copy (default: the capacity budget)"})
    alb_lcu: float = field(default=1.0, metadata={"help": "average load balancer capacity units"})
    nat_gb: float = field(default=10.0, metadata={"help": "GB processed by NAT gateways per month"})
    endpoint_gb: float = field(default=5.0, metadata={"help": "GB through interface endpoints per month"})
    efs_read_gb: float = field(default=50.0, metadata={"help": "GB read from EFS per month"})
    efs_write_gb: float = field(default=10.0, metadata={"help": "GB written to EFS per month"})
    log_gb: float = field(default=5.0, metadata={"help": "GB of logs ingested per month"})
    backup_daily_change: float = field(default=0.02, metadata={"help": "fraction of the data changed per day"})

    def validate(self) -> None:
        for name, value in self.__dict__.items():
            if value is not None and value < 0:
                raise UsageError(f"--{name.replace('_', '-')} = {value}: use a value of 0 or more")


@dataclass
class Line:
    component: str
    detail: str
    monthly_usd: float


@dataclass
class CostReport:
    environment: str
    prices_as_of: str
    lines: list[Line] = field(default_factory=list)

    @property
    def total(self) -> float:
        return round(sum(line.monthly_usd for line in self.lines), 2)

    def as_dict(self) -> dict[str, Any]:
        return {"environment": self.environment, "prices_as_of": self.prices_as_of, "region": "us-east-1",
                "lines": [line.__dict__ for line in self.lines], "total_usd": self.total,
                "case_study_total_usd": CASE_STUDY_TOTAL,
                "case_study_lines": [{"component": c, "monthly_usd": v} for c, v in CASE_STUDY]}


def load_prices(path: Path = PRICES_PATH) -> dict[str, Any]:
    prices: dict[str, Any] = json.loads(path.read_text())
    return prices


def fargate_monthly(prices: dict[str, Any], architecture: str, cpu_units: int, memory_mib: int) -> float:
    rate = prices["fargate"][architecture]
    hours = prices["hours_per_month"]
    return float((cpu_units / 1024 * rate["vcpu_hour"] + memory_mib / 1024 * rate["gb_hour"]) * hours)


def alarm_count(config: EnvironmentConfig) -> int:
    """The environment's alarms, every node's, and the composites (one, or one per node and the environment's)."""
    latency = {latency_alarm_id(op) for op, _ in config.alarms.operation_p99_ms}
    per_node = [i for i in ALARM_RUNBOOKS if not i.startswith("gateway-latency-")
                and i not in (*ENVIRONMENT_ALARM_IDS, COMPOSITE_ALARM_ID)]
    nodes = len(config.nodes)
    composites = 1 if nodes == 1 else nodes + 1
    return len(ENVIRONMENT_ALARM_IDS) + nodes * (len(per_node) + len(latency)) + composites


def custom_metric_count(nodes: int = 1) -> int:
    # The gateway: per node and operation, per node, and per environment (gateway/telemetry.py).
    gateway = len(GATEWAY_METRICS) * (nodes * (len(OPERATIONS) + 1) + 1)
    per_node = len(NODE_METRICS) + len(CAPACITY_METRICS) + len(RECOVERY_POINT_METRICS)
    return gateway + nodes * per_node + len(STEP_METRICS) * len(STEPS) + TOKEN_AGE_METRICS + RESTART_METRICS


def node_data_gib(config: EnvironmentConfig, node: NodeConfig, usage: Usage) -> float:
    """What a node's file system holds: the usage figure (shared evenly), else its declared budget's directory and
    quiesced copy (the capacity model's disk size, twice), else the capacity budget."""
    from ops import capacity

    if usage.data_gib is not None:
        return usage.data_gib / len(config.nodes)
    if node.budget is not None:
        b = node.budget
        disk = capacity.estimate(b.vectors, b.dim, metadata_bytes=b.metadata_bytes_per_vector).disk_bytes
        return 2 * disk / capacity.GIB
    return float(config.capacity.budget_gib)


def estimate(config: EnvironmentConfig, usage: Usage, prices: dict[str, Any] | None = None) -> CostReport:
    usage.validate()
    p = prices or load_prices()
    if config.region != p["region"]:
        raise UsageError(f"environment {config.name!r} is in {config.region}; the price table is for {p['region']}")
    hours = p["hours_per_month"]
    report = CostReport(config.name, p["as_of"])
    add = report.lines.append
    many = len(config.nodes) > 1

    def per_node(component: str, node: NodeConfig) -> str:
        return f"{component}, node {node.name}" if many else component

    for node in config.nodes:
        task = config.node_task(node)
        add(Line(per_node("ECS Fargate", node), f"1 task, {task.cpu / 1024:g} vCPU / {task.memory_mib / 1024:g} "
                 f"GB, {task.architecture.value}", fargate_monthly(p, task.architecture.value, task.cpu,
                                                                   task.memory_mib)))
    add(Line("Application Load Balancer", f"{hours} h + {usage.alb_lcu:g} LCU average",
             hours * (p["alb"]["hour"] + usage.alb_lcu * p["alb"]["lcu_hour"])))
    zones = len(config.network.availability_zones)
    if config.network.nat_gateways:
        n = config.network.nat_gateways
        add(Line("NAT gateway", f"{n} x {hours} h + {usage.nat_gb:g} GB",
                 n * hours * p["nat_gateway"]["hour"] + usage.nat_gb * p["nat_gateway"]["gb"]))
    if config.network.interface_endpoints:
        count = len(INTERFACE_ENDPOINTS)
        endpoint_zones = config.network.endpoint_zones or zones
        add(Line("VPC interface endpoints", f"{count} endpoints x {endpoint_zones} AZs + {usage.endpoint_gb:g} GB",
                 count * endpoint_zones * hours * p["interface_endpoint"]["hour_per_az"]
                 + usage.endpoint_gb * p["interface_endpoint"]["gb"]))
    data_by_node = {node.name: node_data_gib(config, node, usage) for node in config.nodes}
    for node in config.nodes:
        data = data_by_node[node.name]
        add(Line(per_node("EFS storage (Standard)", node), f"{round(data, 1):g} GB",
                 data * p["efs"]["standard_gb_month"]))
    data = sum(data_by_node.values())
    if config.storage.throughput_mode is EfsThroughputMode.ELASTIC:
        add(Line("EFS Elastic throughput", f"{usage.efs_read_gb:g} GB read, {usage.efs_write_gb:g} GB written",
                 usage.efs_read_gb * p["efs"]["elastic_read_gb"] + usage.efs_write_gb * p["efs"]["elastic_write_gb"]))
    stored = data * (1 + usage.backup_daily_change * config.backup.retention_days)
    add(Line("AWS Backup (EFS, warm)", f"~{stored:,.0f} GB kept ({config.backup.retention_days} days, "
                                       f"{usage.backup_daily_change:.0%}/day change)",
             stored * p["backup"]["efs_warm_gb_month"]))
    alarms, metrics = alarm_count(config), custom_metric_count(len(config.nodes))
    cw = p["cloudwatch"]
    add(Line("CloudWatch", f"{alarms} alarms, 1 dashboard, {metrics} custom metrics, {usage.log_gb:g} GB logs",
             alarms * cw["alarm_month"] + cw["dashboard_month"] + metrics * cw["custom_metric_month"]
             + usage.log_gb * cw["logs_ingested_gb"]))
    refresh = Settings.token_refresh_seconds  # the gateway's default, which the compute stack keeps
    # Every node's gateway refreshes, and the token age check runs hourly.
    calls = len(config.nodes) * CALLS_PER_TOKEN_REFRESH * hours * 3600 / refresh + hours
    add(Line("Secrets Manager", f"1 secret, ~{calls / 1000:,.0f}k API calls (gateway refresh every {refresh:g} s)",
             p["secrets_manager"]["secret_month"] + calls / 10_000 * p["secrets_manager"]["per_10k_calls"]))
    add(Line("KMS", f"{CUSTOMER_MANAGED_KEYS} customer-managed keys (data, flow logs)",
             CUSTOMER_MANAGED_KEYS * p["kms"]["key_month"]))
    for line in report.lines:
        line.monthly_usd = round(line.monthly_usd, 2)
    return report


@dataclass(frozen=True)
class Sized:
    """A workload priced on an environment's layout: the nodes and task the capacity model sizes for it, and the
    bill."""

    vectors: int
    dim: int
    nodes: int
    cpu: int
    memory_mib: int
    data_gib: float
    report: CostReport


def what_if(config: EnvironmentConfig, vectors: int, dim: int, usage: Usage,
            prices: dict[str, Any] | None = None) -> Sized:
    """The environment's layout (network, endpoints, alarms...) with the fewest nodes, each of the cheapest task
    that holds its share of `vectors` x `dim` (ops.capacity; shared evenly: by tenant, in practice), and file
    systems holding each node's directory and its one quiesced copy."""
    from cdk_app.config import PRIMARY_NODE, NodeConfig
    from cdk_app.validation import MAX_NODES
    from ops import capacity

    p = prices or load_prices()
    architecture = config.task.architecture.value
    for nodes in range(1, MAX_NODES + 1):
        needed = capacity.estimate(-(-vectors // nodes), dim)
        size = capacity.recommend(needed.required_task_mib,
                                  lambda cpu, memory: fargate_monthly(p, architecture, cpu, memory))
        if size is not None:
            break
    else:
        raise OpsError(f"{vectors:,} vectors of {dim} dimensions need more than {MAX_NODES} nodes of the largest "
                       f"Fargate task ({needed.required_task_mib:,} MiB each): split the workload across "
                       "environments")
    data_gib = 2 * needed.disk_bytes * nodes / capacity.GIB
    task = replace(config.task, cpu=size[0], memory_mib=size[1])
    layout = (NodeConfig(PRIMARY_NODE), *(NodeConfig(f"node{i}") for i in range(2, nodes + 1)))
    sized = replace(config, task=task, nodes=layout)
    return Sized(vectors, dim, nodes, size[0], size[1], data_gib,
                 estimate(sized, replace(usage, data_gib=data_gib), p))
