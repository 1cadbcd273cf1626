"""Synth-time validation of environment configs.

All problems of one environment are reported together, each naming the field, the bad value and what is allowed.
"""

from __future__ import annotations

import ipaddress
import itertools
import re
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING

from cdk_app.constants import (
    OLD_WRITER_STOP_SECONDS,
    RECOVERY_POINT_MARGIN_SECONDS,
    RECOVERY_POINT_MAX_WAIT_SECONDS,
    WRITER_LOCK_STARTUP_SECONDS,
    max_write_pause_limit,
)
from cdk_app.log_retention import RETENTION_DAYS

if TYPE_CHECKING:
    from cdk_app.config import EnvironmentConfig, TaskConfig, VectorBudget
    from ops.capacity import Estimate

# Environments that hold real data: they must use TLS and keep their data when a stack is deleted.
PROTECTED_ENVIRONMENTS = frozenset({"staging", "prod"})
# Environments whose stateful stack must have termination protection.
TERMINATION_PROTECTED_ENVIRONMENTS = frozenset({"prod"})

# The writer lock wait (the grace minus the time Chroma needs to start) must outlast the old task's stop timeout.
MIN_HEALTH_CHECK_GRACE_SECONDS = OLD_WRITER_STOP_SECONDS + WRITER_LOCK_STARTUP_SECONDS

# Valid Fargate CPU units -> allowed memory (MiB) values.
FARGATE_SIZES: dict[int, tuple[int, ...]] = {
    256: (512, 1024, 2048),
    512: tuple(range(1024, 4096 + 1, 1024)),
    1024: tuple(range(2048, 8192 + 1, 1024)),
    2048: tuple(range(4096, 16384 + 1, 1024)),
    4096: tuple(range(8192, 30720 + 1, 1024)),
    8192: tuple(range(16384, 61440 + 1, 4096)),
    16384: tuple(range(32768, 122880 + 1, 8192)),
}


# Nodes per environment: each adds a service, a file system and ~30 alarms to the stacks (CloudFormation allows 500
# resources per stack; see tests/test_nodes.py, which measures the growth per node).
MAX_NODES = 8
MAX_NODES_REASON = ("each node adds ~65 resources, 36 of them to the Observability stack; CloudFormation allows "
                    "500 per stack")
# Routing by tenant (cdk_app/node/routing.py): the load balancer's default quotas.
ALB_RULES_PER_LISTENER = 100
ALB_VALUES_PER_RULE = 5
ROUTING_VALUES_PER_TENANT = 2  # /api/v2/tenants/<t> and /api/v2/tenants/<t>/*
TENANTS_PER_RULE = ALB_VALUES_PER_RULE // ROUTING_VALUES_PER_TENANT
# One rule per node routes the requests that name their node (X-Chroma-Node); the rest route tenants.
MAX_ROUTED_TENANTS = (ALB_RULES_PER_LISTENER - MAX_NODES) * TENANTS_PER_RULE
CHROMA_DEFAULT_TENANT = "default_tenant"

_ENV_NAME = re.compile(r"^[a-z][a-z0-9-]{1,15}$")
_REGION = re.compile(r"^[a-z]{2}(-gov)?-[a-z]+-\d$")
_ACCOUNT = re.compile(r"^\d{12}$")
_PINNED_TAG = re.compile(r"^\d+\.\d+\.\d+$")
_IMAGE_REPOSITORY = re.compile(r"^[a-z0-9]+([._/-][a-z0-9]+)*$")
_SECURITY_GROUP_ID = re.compile(r"^sg-[0-9a-f]{8,17}$")
_HOSTNAME = re.compile(r"^(?=.{1,253}$)([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]{2,63}$")
_HOSTED_ZONE_ID = re.compile(r"^Z[A-Z0-9]{1,31}$")
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[a-zA-Z]{2,}$")
_TAG_VALUE = re.compile(r"^[\w .:/=+\-@]{1,256}$")
_CERTIFICATE_ARN = re.compile(
    r"^arn:aws[a-z-]*:acm:(?P<region>[a-z0-9-]+):(?P<account>\d{12}):certificate/[0-9a-f-]{36}$")


class ConfigError(ValueError):
    """A user mistake in an environment config, explained field by field."""

    def __init__(self, environment: str, problems: list[str]) -> None:
        self.environment = environment
        self.problems = problems
        lines = "\n".join(f"  - {problem}" for problem in problems)
        super().__init__(f"invalid config for environment {environment!r}:\n{lines}")


def _problem(field: str, value: object, allowed: str) -> str:
    return f"{field} = {value!r}: {allowed}"


def validate_environment(config: EnvironmentConfig) -> None:
    problems = [problem for check in _CHECKS for problem in check(config)]
    if problems:
        raise ConfigError(config.name, problems)


def _identity(c: EnvironmentConfig) -> Iterator[str]:
    if not _ENV_NAME.match(c.name):
        yield _problem("name", c.name, "use 2-16 characters: lowercase letters, digits and '-', starting with a letter")
    if not _REGION.match(c.region):
        yield _problem("region", c.region, "use an AWS region code such as 'us-east-1'")
    if c.account is not None and not _ACCOUNT.match(c.account):
        yield _problem("account", c.account, "use a 12-digit AWS account id, or None for CDK_DEFAULT_ACCOUNT")
    if not _TAG_VALUE.match(c.cost_centre):
        yield _problem("cost_centre", c.cost_centre, "use 1-256 letters, digits, spaces or _ . : / = + - @")


def _network(c: EnvironmentConfig) -> Iterator[str]:
    n = c.network
    try:
        cidr = ipaddress.IPv4Network(n.vpc_cidr)
    except ValueError:
        yield _problem("network.vpc_cidr", n.vpc_cidr, "use an IPv4 network such as '10.20.0.0/16'")
    else:
        if not 16 <= cidr.prefixlen <= 22:
            yield _problem("network.vpc_cidr", n.vpc_cidr, "use a prefix length from /16 to /22")
    zones = n.availability_zones
    if len(zones) < 2 or len(set(zones)) != len(zones):
        yield _problem("network.availability_zones", zones, "list at least two distinct availability zones")
    for zone in zones:
        if not re.fullmatch(re.escape(c.region) + r"[a-z]", zone):
            yield _problem("network.availability_zones", zone,
                           f"use zones of region {c.region!r}, such as '{c.region}a'")
    if not 0 <= n.nat_gateways <= len(zones):
        yield _problem("network.nat_gateways", n.nat_gateways, f"use 0 to {len(zones)} (one per availability zone)")
    if n.endpoint_zones is not None and not (n.interface_endpoints and 1 <= n.endpoint_zones <= len(zones)):
        yield _problem("network.endpoint_zones", n.endpoint_zones,
                       f"use 1 to {len(zones)} zones (with interface_endpoints = True), or None for every zone")
    if n.nat_gateways == 0 and not n.interface_endpoints:
        yield _problem("network.interface_endpoints", False,
                       "with nat_gateways = 0 the tasks need interface endpoints to reach ECR, Logs and Secrets "
                       "Manager; set it to True or add a NAT gateway")
    yield from _retention("network.flow_log_retention_days", n.flow_log_retention_days)


def _image(c: EnvironmentConfig) -> Iterator[str]:
    image = c.chroma_image
    if not _IMAGE_REPOSITORY.match(image.repository):
        yield _problem("chroma_image.repository", image.repository,
                       "use an image repository such as 'chromadb/chroma' or 'ghcr.io/chroma-core/chroma'")
    if not _PINNED_TAG.match(image.tag):
        yield _problem("chroma_image.tag", image.tag,
                       "pin an exact Chroma version such as '1.5.9' ('latest' and other moving tags are refused: "
                       "Chroma's schema migrations are one-way)")


def _node_tasks(c: EnvironmentConfig) -> list[tuple[str, TaskConfig]]:
    """(field, task) of the environment's task and of every node that has its own."""
    return [("task", c.task)] + [(f"nodes[{n.name}].task", n.task) for n in c.nodes if n.task is not None]


def _task(c: EnvironmentConfig) -> Iterator[str]:
    for field, task in _node_tasks(c):
        yield from _task_fields(field, task)


def _nodes(c: EnvironmentConfig) -> Iterator[str]:
    from cdk_app.config import PRIMARY_NODE
    from gateway.settings import NODE_NAME, TENANT_NAME
    from ops.capacity import estimate

    names = [node.name for node in c.nodes]
    if PRIMARY_NODE not in names:
        yield _problem("nodes", tuple(names), f"keep the node {PRIMARY_NODE!r}: it holds today's data and takes "
                                              "every tenant placed on no other node")
    if not 1 <= len(names) <= MAX_NODES:
        yield _problem("nodes", tuple(names), f"use 1 to {MAX_NODES} nodes per environment ({MAX_NODES_REASON})")
    for name in dict.fromkeys(names):
        if not NODE_NAME.match(name):
            yield _problem("nodes.name", name, "use 2-12 characters: lowercase letters, digits and '-', starting "
                                               "with a letter (it names the node's service, file system and alarms)")
        elif names.count(name) > 1:
            yield _problem("nodes.name", name, "give each node its own name")
    seen: dict[str, str] = {}
    for node in c.nodes:
        for tenant in node.tenants:
            if not TENANT_NAME.match(tenant):
                yield _problem(f"nodes[{node.name}].tenants", tenant,
                               "use 3-63 characters: letters, digits, '.', '_' or '-', starting with a letter or "
                               "digit (a load balancer rule matches it exactly)")
            elif tenant in seen:
                yield _problem(f"nodes[{node.name}].tenants", tenant,
                               f"place each tenant on exactly one node; it is also on {seen[tenant]!r}")
            elif tenant == CHROMA_DEFAULT_TENANT and node.name != PRIMARY_NODE:
                yield _problem(f"nodes[{node.name}].tenants", tenant,
                               f"Chroma's default tenant stays on {PRIMARY_NODE!r}, which answers every request "
                               "naming no tenant")
            seen.setdefault(tenant, node.name)
        if node.budget is not None:
            yield from _budget(f"nodes[{node.name}]", node.budget, c.node_task(node), estimate)
    routed = sum(1 for tenant, node in seen.items() if node != PRIMARY_NODE)
    if routed > MAX_ROUTED_TENANTS:
        yield _problem("nodes.tenants", routed,
                       f"place at most {MAX_ROUTED_TENANTS} tenants on nodes other than {PRIMARY_NODE!r}: each takes "
                       f"{ROUTING_VALUES_PER_TENANT} path patterns, a load balancer rule holds "
                       f"{ALB_VALUES_PER_RULE} and a listener {ALB_RULES_PER_LISTENER} rules (AWS quotas), "
                       f"{MAX_NODES} of them for addressing nodes")


def _budget(field: str, budget: VectorBudget, task: TaskConfig,
            estimate: Callable[..., Estimate]) -> Iterator[str]:
    if budget.vectors < 1 or not 1 <= budget.dim <= 65_536 or budget.metadata_bytes_per_vector < 0:
        yield _problem(f"{field}.budget", budget, "use a positive number of vectors, a dim from 1 to 65536 and "
                                                  "metadata_bytes_per_vector of at least 0")
        return
    needed = estimate(budget.vectors, budget.dim, metadata_bytes=budget.metadata_bytes_per_vector).required_task_mib
    if needed <= task.memory_mib:
        return
    largest = max(max(memories) for memories in FARGATE_SIZES.values())
    hint = (f"use a task of at least {needed} MiB" if needed <= largest else
            f"no Fargate task holds it (at most {largest} MiB): split its tenants across nodes")
    yield _problem(f"{field}.budget", budget,
                   f"the node's task has {task.memory_mib} MiB and the budget needs {needed} MiB: {hint} "
                   f"(chroma-ops capacity --vectors {budget.vectors} --dim {budget.dim})")


def _task_fields(field: str, t: TaskConfig) -> Iterator[str]:
    if t.cpu not in FARGATE_SIZES:
        yield _problem(f"{field}.cpu", t.cpu, f"use one of the Fargate CPU sizes {sorted(FARGATE_SIZES)}")
    elif t.memory_mib not in FARGATE_SIZES[t.cpu]:
        yield _problem(f"{field}.memory_mib", t.memory_mib,
                       f"with {field}.cpu = {t.cpu} Fargate allows {_describe_sizes(FARGATE_SIZES[t.cpu])} MiB")
    if not 5 <= t.upstream_timeout_seconds <= 3600:
        yield _problem(f"{field}.upstream_timeout_seconds", t.upstream_timeout_seconds, "use 5 to 3600 seconds")
    if not MIN_HEALTH_CHECK_GRACE_SECONDS <= t.health_check_grace_seconds <= 300:
        yield _problem(f"{field}.health_check_grace_seconds", t.health_check_grace_seconds,
                       f"use {MIN_HEALTH_CHECK_GRACE_SECONDS} to 300 seconds: a new task may wait for the old task's "
                       f"stop path (deregistration, gateway drain, Chroma stop: {OLD_WRITER_STOP_SECONDS} s at worst) "
                       "before it takes the writer lock, and 300 is "
                       "the most an ECS container health check start period allows")
    yield from _retention(f"{field}.log_retention_days", t.log_retention_days)
    yield from _collection_size(field, t)


def _load_balancer(c: EnvironmentConfig) -> Iterator[str]:
    lb = c.load_balancer
    for cidr in lb.allowed_client_cidrs:
        try:
            ipaddress.IPv4Network(cidr)
        except ValueError:
            yield _problem("load_balancer.allowed_client_cidrs", cidr, "use IPv4 networks such as '10.0.0.0/8'")
    for group in lb.allowed_client_security_group_ids:
        if not _SECURITY_GROUP_ID.match(group):
            yield _problem("load_balancer.allowed_client_security_group_ids", group,
                           "use security group ids such as 'sg-0123456789abcdef0'")
    if lb.internet_facing and not (lb.allowed_client_cidrs or lb.allowed_client_security_group_ids):
        yield _problem("load_balancer.internet_facing", True,
                       "an internet-facing load balancer needs allowed_client_cidrs or "
                       "allowed_client_security_group_ids; nothing is open to the internet by default")
    if lb.internet_facing and c.network.nat_gateways == 0:
        yield _problem("load_balancer.internet_facing", True,
                       "an internet-facing load balancer needs public subnets; set network.nat_gateways >= 1 "
                       "or keep the load balancer internal")
    yield from _retention("load_balancer.access_log_retention_days", lb.access_log_retention_days)


def _tls(c: EnvironmentConfig) -> Iterator[str]:
    tls = c.tls
    if tls is None:
        if c.name in PROTECTED_ENVIRONMENTS:
            yield _problem("tls", None, f"environment {c.name!r} must serve HTTPS: give a TlsConfig with an ACM "
                                        "certificate_arn and domain_name")
        return
    arn = _CERTIFICATE_ARN.match(tls.certificate_arn)
    if arn is None:
        yield _problem("tls.certificate_arn", tls.certificate_arn,
                       "use an ACM certificate ARN such as 'arn:aws:acm:REGION:ACCOUNT:certificate/UUID'")
    else:
        if arn["region"] != c.region:
            yield _problem("tls.certificate_arn", tls.certificate_arn,
                           f"the certificate must be in the environment's region {c.region!r}")
        if c.account is not None and arn["account"] != c.account:
            yield _problem("tls.certificate_arn", tls.certificate_arn,
                           f"the certificate must be in the environment's account {c.account!r}")
    if not _HOSTNAME.match(tls.domain_name):
        yield _problem("tls.domain_name", tls.domain_name, "use a lowercase DNS name such as 'chroma.example.com'")
    if (tls.hosted_zone_id is None) != (tls.hosted_zone_name is None):
        yield _problem("tls.hosted_zone_id", tls.hosted_zone_id,
                       "give hosted_zone_id and hosted_zone_name together, or neither")
    elif tls.hosted_zone_id is not None and tls.hosted_zone_name is not None:
        if not _HOSTED_ZONE_ID.match(tls.hosted_zone_id):
            yield _problem("tls.hosted_zone_id", tls.hosted_zone_id, "use a Route 53 zone id such as 'Z0123456789ABC'")
        zone = tls.hosted_zone_name.rstrip(".")
        if not (tls.domain_name == zone or tls.domain_name.endswith("." + zone)):
            yield _problem("tls.hosted_zone_name", tls.hosted_zone_name,
                           f"the zone must contain tls.domain_name {tls.domain_name!r}")


def _storage(c: EnvironmentConfig) -> Iterator[str]:
    from cdk_app.config import EfsThroughputMode

    s = c.storage
    mibps = s.provisioned_throughput_mibps
    if s.throughput_mode is EfsThroughputMode.PROVISIONED:
        if mibps is None or not 1 <= mibps <= 3414:
            yield _problem("storage.provisioned_throughput_mibps", mibps,
                           "provisioned throughput needs 1 to 3414 MiB/s")
    elif mibps is not None:
        yield _problem("storage.provisioned_throughput_mibps", mibps,
                       f"only used with throughput_mode PROVISIONED, not {s.throughput_mode.name}; remove it")


def _backup(c: EnvironmentConfig) -> Iterator[str]:
    b = c.backup
    if not 0 <= b.hour_utc <= 23:
        yield _problem("backup.hour_utc", b.hour_utc, "use an hour from 0 to 23")
    if not 0 <= b.minute_utc <= 59:
        yield _problem("backup.minute_utc", b.minute_utc, "use a minute from 0 to 59")
    if not 1 <= b.retention_days <= 36500:
        yield _problem("backup.retention_days", b.retention_days, "use 1 to 36500 days")
    # Every node takes its recovery points with the same pause limit: the node draining longest sets the bound.
    field, task = max(_node_tasks(c), key=lambda item: item[1].upstream_timeout_seconds)
    longest = max_write_pause_limit(task.upstream_timeout_seconds)
    if longest < 1:
        most = RECOVERY_POINT_MAX_WAIT_SECONDS - RECOVERY_POINT_MARGIN_SECONDS - 1
        yield _problem(f"{field}.upstream_timeout_seconds", task.upstream_timeout_seconds,
                       f"recovery points need at most {most} s (the node drains writes in flight for this long "
                       "before its copy, within the backup job's wait)")
    elif not 1 <= b.max_write_pause_seconds <= longest:
        yield _problem("backup.max_write_pause_seconds", b.max_write_pause_seconds,
                       f"use 1 to {longest} s (the backup job waits at most {RECOVERY_POINT_MAX_WAIT_SECONDS} s for "
                       f"the node, which first waits up to task.upstream_timeout_seconds for writes in flight)")
    if not 1 <= b.pause_alarm_seconds < b.max_write_pause_seconds:
        yield _problem("backup.pause_alarm_seconds", b.pause_alarm_seconds,
                       f"use 1 s to less than backup.max_write_pause_seconds ({b.max_write_pause_seconds})")


def _capacity(c: EnvironmentConfig) -> Iterator[str]:
    cap = c.capacity
    if cap.budget_gib < 1:
        yield _problem("capacity.budget_gib", cap.budget_gib, "use a budget of at least 1 GiB")
    if not 5 <= cap.check_every_minutes <= 1440:
        yield _problem("capacity.check_every_minutes", cap.check_every_minutes, "use 5 to 1440 minutes")
    if not 1 <= cap.warning_percent < cap.critical_percent <= 100:
        yield _problem("capacity.warning_percent", (cap.warning_percent, cap.critical_percent),
                       "use 1 <= warning_percent < critical_percent <= 100")
    if cap.days_to_full_threshold < 1:
        yield _problem("capacity.days_to_full_threshold", cap.days_to_full_threshold, "use at least 1 day")


def _collection_size(field: str, t: TaskConfig) -> Iterator[str]:
    from ops.capacity import collections_per_task, estimate

    size = t.collection_size
    if size.vectors < 1 or not 1 <= size.dim <= 65_536:
        yield _problem(f"{field}.collection_size", size, "use a positive number of vectors and a dim from 1 to 65536")
    elif t.memory_mib in FARGATE_SIZES.get(t.cpu, ()) and collections_per_task(t.memory_mib, size.vectors,
                                                                                 size.dim) < 1:
        needed = estimate(size.vectors, size.dim).required_task_mib
        yield _problem(f"{field}.collection_size", size, f"a task of {t.memory_mib} MiB cannot hold one such "
                                                       f"collection in memory: use {field}.memory_mib of at least "
                                                     f"{needed} (chroma-ops capacity --vectors {size.vectors} "
                                                     f"--dim {size.dim})")


def _alarms(c: EnvironmentConfig) -> Iterator[str]:
    from cdk_app.observability.alarm_ids import ALARM_RUNBOOKS
    from gateway.operations import OPERATIONS

    a = c.alarms
    if not 0 < a.alb_5xx_percent <= 100:
        yield _problem("alarms.alb_5xx_percent", a.alb_5xx_percent, "use a percentage above 0, at most 100")
    for name in ("memory_percent", "cpu_percent", "efs_io_limit_percent"):
        if not 1 <= getattr(a, name) <= 100:
            yield _problem(f"alarms.{name}", getattr(a, name), "use a percentage from 1 to 100")
    for name in ("response_time_p95_ms", "gateway_5xx_per_5_minutes", "auth_failures_per_5_minutes",
                 "rotation_overdue_margin_days"):
        if getattr(a, name) < 1:
            yield _problem(f"alarms.{name}", getattr(a, name), "use a positive number")
    if a.log_rows_max < 1000:
        yield _problem("alarms.log_rows_max", a.log_rows_max,
                       "use at least 1000 (one collection's unsaved writes at Chroma's default sync_threshold)")
    if not 5 <= a.restart_cooldown_minutes <= 1440:
        yield _problem("alarms.restart_cooldown_minutes", a.restart_cooldown_minutes,
                       "use 5 to 1440 minutes (longer than one restart, at most a day)")
    operations = [op for op, _ in a.operation_p99_ms]
    for op, ms in a.operation_p99_ms:
        if op not in OPERATIONS or operations.count(op) > 1:
            yield _problem("alarms.operation_p99_ms", op, f"use each of {', '.join(OPERATIONS)} at most once")
        if ms < 1:
            yield _problem("alarms.operation_p99_ms", (op, ms), "use a positive number of milliseconds")
    for alarm_id, _automation in a.automations:
        if alarm_id not in ALARM_RUNBOOKS:
            yield _problem("alarms.automations", alarm_id, f"use one of the alarm ids: {', '.join(ALARM_RUNBOOKS)}")
        elif alarm_id.startswith("gateway-latency-") and alarm_id.removeprefix("gateway-latency-").replace(
                "-", "_") not in operations:
            yield _problem("alarms.automations", alarm_id, "that latency alarm is not in alarms.operation_p99_ms")
    if len({alarm_id for alarm_id, _ in a.automations}) != len(a.automations):
        yield _problem("alarms.automations", a.automations, "give each alarm at most one automation")


def _protection(c: EnvironmentConfig) -> Iterator[str]:
    if c.name in PROTECTED_ENVIRONMENTS and not c.retain_data:
        yield _problem("retain_data", False, f"environment {c.name!r} holds real data and must retain it")
    if c.name in TERMINATION_PROTECTED_ENVIRONMENTS and not c.termination_protection:
        yield _problem("termination_protection", False, f"environment {c.name!r} must enable it")
    if not 1 <= c.token_rotation_days <= 365:
        yield _problem("token_rotation_days", c.token_rotation_days, "use 1 to 365 days")
    if not 0 <= c.previous_token_grace_minutes <= 24 * 60:
        yield _problem("previous_token_grace_minutes", c.previous_token_grace_minutes,
                       "use 0 to 1440 minutes (the gateway accepts at most a day of overlap)")


def _operations(c: EnvironmentConfig) -> Iterator[str]:
    for email in c.alarm_emails:
        if not _EMAIL.match(email):
            yield _problem("alarm_emails", email, "use e-mail addresses such as 'oncall@example.com'")
    if not re.fullmatch(r"https://[^\s?#]+[^/\s?#]", c.runbook_base_url):
        yield _problem("runbook_base_url", c.runbook_base_url,
                       "use an https:// URL without a trailing slash, query or fragment")


def _describe_sizes(sizes: tuple[int, ...]) -> str:
    steps = {b - a for a, b in itertools.pairwise(sizes)}
    if len(steps) == 1 and len(sizes) > 3:
        return f"{sizes[0]} to {sizes[-1]} in steps of {steps.pop()}"
    return ", ".join(map(str, sizes))


def _retention(field: str, days: int) -> Iterator[str]:
    if days not in RETENTION_DAYS:
        yield _problem(field, days, f"use a CloudWatch Logs retention: {', '.join(map(str, RETENTION_DAYS))}")


_CHECKS: tuple[Callable[[EnvironmentConfig], Iterator[str]], ...] = (
    _identity, _network, _image, _task, _nodes, _load_balancer, _tls, _storage, _backup, _capacity, _alarms,
    _protection, _operations,
)
