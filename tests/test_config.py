"""Config mistakes fail at synth with one clear message naming the field, the bad value and what is allowed."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from cdk_app.app_builder import UnknownEnvironmentError, select_environments
from cdk_app.config import (
    ChromaImage,
    CollectionSize,
    EfsThroughputMode,
    LoadBalancerConfig,
    StorageConfig,
    TaskConfig,
    TlsConfig,
)
from cdk_app.environments import DEV, ENVIRONMENTS, PROD, STAGING
from cdk_app.validation import ConfigError
from ops.capacity import estimate

REPO = Path(__file__).resolve().parents[1]
assert PROD.tls is not None
PROD_TLS: TlsConfig = PROD.tls


def problems_of(base: Any, **changes: Any) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        replace(base, **changes)
    return caught.value.problems


def test_repository_environments_are_valid() -> None:
    assert list(ENVIRONMENTS) == ["dev", "staging", "prod"]


def test_invalid_fargate_cpu_memory_pair() -> None:
    assert problems_of(DEV, task=TaskConfig(cpu=1024, memory_mib=1024)) == [
        "task.memory_mib = 1024: with task.cpu = 1024 Fargate allows 2048 to 8192 in steps of 1024 MiB"]
    assert problems_of(DEV, task=TaskConfig(cpu=256, memory_mib=4096)) == [
        "task.memory_mib = 4096: with task.cpu = 256 Fargate allows 512, 1024, 2048 MiB"]
    assert problems_of(DEV, task=TaskConfig(cpu=3000, memory_mib=4096)) == [
        "task.cpu = 3000: use one of the Fargate CPU sizes [256, 512, 1024, 2048, 4096, 8192, 16384]"]


@pytest.mark.parametrize("base", [STAGING, PROD], ids=["staging", "prod"])
def test_staging_and_prod_require_tls(base: Any) -> None:
    [problem] = problems_of(base, tls=None)
    assert problem.startswith(f"tls = None: environment '{base.name}' must serve HTTPS")


def test_availability_zone_outside_the_region() -> None:
    network = replace(DEV.network, availability_zones=("us-east-1a", "eu-west-1b"))
    assert problems_of(DEV, network=network) == [
        "network.availability_zones = 'eu-west-1b': use zones of region 'us-east-1', such as 'us-east-1a'"]
    one_zone = replace(DEV.network, availability_zones=("us-east-1a",), nat_gateways=1)
    assert problems_of(DEV, network=one_zone)[0].startswith("network.availability_zones = ('us-east-1a',)")


def test_unknown_environment_name_on_the_command_line() -> None:
    with pytest.raises(UnknownEnvironmentError, match=r"unknown environment\(s\) 'qa'; known: dev, staging, prod"):
        select_environments("dev,qa", ENVIRONMENTS)
    assert select_environments(None, ENVIRONMENTS) == ["dev", "staging", "prod"]
    assert select_environments("prod", ENVIRONMENTS) == ["prod"]


def test_invalid_environment_name() -> None:
    assert problems_of(DEV, name="Dev_1")[0].startswith("name = 'Dev_1': use 2-16 characters")


def test_internet_facing_load_balancer_without_allowed_clients() -> None:
    [problem] = problems_of(DEV, load_balancer=LoadBalancerConfig(internet_facing=True))
    assert problem.startswith("load_balancer.internet_facing = True: an internet-facing load balancer needs "
                              "allowed_client_cidrs or allowed_client_security_group_ids")


def test_internet_facing_load_balancer_needs_public_subnets() -> None:
    [problem] = problems_of(PROD, load_balancer=LoadBalancerConfig(internet_facing=True,
                                                                   allowed_client_cidrs=("203.0.113.0/24",)))
    assert "needs public subnets" in problem


@pytest.mark.parametrize("tag", ["latest", "1.5", "", "1.5.9-rc"])
def test_chroma_image_must_be_pinned(tag: str) -> None:
    [problem] = problems_of(DEV, chroma_image=ChromaImage(tag=tag))
    assert problem.startswith(f"chroma_image.tag = {tag!r}: pin an exact Chroma version such as '1.5.9'")


def test_certificate_must_be_in_the_environments_region_and_account() -> None:
    other_region = "arn:aws:acm:eu-west-1:111122223333:certificate/66666666-7777-8888-9999-000000000000"
    assert problems_of(PROD, tls=replace(PROD_TLS, certificate_arn=other_region)) == [
        f"tls.certificate_arn = {other_region!r}: the certificate must be in the environment's region 'us-east-1'"]
    other_account = PROD_TLS.certificate_arn.replace("111122223333", "444455556666")
    assert "account '111122223333'" in problems_of(PROD, tls=replace(PROD_TLS, certificate_arn=other_account))[0]
    assert problems_of(PROD, tls=replace(PROD_TLS, certificate_arn="not-an-arn"))[0].startswith(
        "tls.certificate_arn = 'not-an-arn': use an ACM certificate ARN")


def test_hosted_zone_must_contain_the_domain() -> None:
    tls = TlsConfig(certificate_arn=PROD_TLS.certificate_arn, domain_name="chroma.example.com",
                    hosted_zone_id="Z0123456789ABC", hosted_zone_name="other.org")
    assert problems_of(PROD, tls=tls) == [
        "tls.hosted_zone_name = 'other.org': the zone must contain tls.domain_name 'chroma.example.com'"]
    half = replace(tls, hosted_zone_name=None)
    assert "give hosted_zone_id and hosted_zone_name together" in problems_of(PROD, tls=half)[0]


def test_protected_environments_must_retain_data_and_prod_needs_termination_protection() -> None:
    assert problems_of(STAGING, retain_data=False) == [
        "retain_data = False: environment 'staging' holds real data and must retain it"]
    assert problems_of(PROD, termination_protection=False) == [
        "termination_protection = False: environment 'prod' must enable it"]


def test_throughput_settings_must_agree() -> None:
    assert "provisioned throughput needs 1 to 3414 MiB/s" in problems_of(
        DEV, storage=StorageConfig(throughput_mode=EfsThroughputMode.PROVISIONED))[0]
    assert "only used with throughput_mode PROVISIONED, not ELASTIC" in problems_of(
        DEV, storage=StorageConfig(provisioned_throughput_mibps=100))[0]


def test_all_problems_are_reported_together() -> None:
    problems = problems_of(PROD, tls=None, account="12345", alarm_emails=("not-an-email",),
                           runbook_base_url="http://runbooks/", network=replace(PROD.network, vpc_cidr="10.0.0.0/8"))
    fields = [p.split(" = ")[0] for p in problems]
    assert fields == ["account", "network.vpc_cidr", "tls", "alarm_emails", "runbook_base_url"]


def test_log_retention_must_be_a_cloudwatch_value() -> None:
    assert problems_of(DEV, task=replace(DEV.task, log_retention_days=10))[0].startswith(
        "task.log_retention_days = 10: use a CloudWatch Logs retention: 1, 3, 5, 7, 14, 30")


def test_default_account_fills_in_only_when_config_names_none() -> None:
    assert DEV.with_account("999988887777").account == "999988887777"
    assert PROD.with_account("999988887777").account == "111122223333"
    assert DEV.with_account(None).account is None


def _run_app(context: dict[str, Any]) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CDK_")}
    env["CDK_CONTEXT_JSON"] = json.dumps(context)
    env["CDK_OUTDIR"] = str(REPO / "cdk.out" / "test-app-errors")
    return subprocess.run([sys.executable, "app.py"], cwd=REPO, env=env, capture_output=True, text=True,
                          check=False, timeout=300)


@pytest.mark.synth
def test_app_reports_a_bad_selection_without_a_stack_trace() -> None:
    result = _run_app({"environments": "dev,qa"})
    assert result.returncode == 1
    # Our own lines only: jsii may print a banner of its own (an old Node) that is not ours to assert on.
    ours = [line for line in result.stderr.splitlines() if line.startswith(("error:", "Traceback"))]
    assert ours == ["error: context environments: unknown environment(s) 'qa'; known: dev, staging, prod"]


def test_alarm_brakes_and_log_threshold_are_bounded() -> None:
    assert problems_of(DEV, alarms=replace(DEV.alarms, log_rows_max=999, restart_cooldown_minutes=4)) == [
        "alarms.log_rows_max = 999: use at least 1000 (one collection's unsaved writes at Chroma's default "
        "sync_threshold)",
        "alarms.restart_cooldown_minutes = 4: use 5 to 1440 minutes (longer than one restart, at most a day)"]


def test_collection_size_must_fit_the_task_at_least_once() -> None:
    big = CollectionSize(vectors=2_000_000, dim=1536)
    assert problems_of(DEV, task=replace(DEV.task, collection_size=big)) == [
        "task.collection_size = CollectionSize(vectors=2000000, dim=1536): a task of 2048 MiB cannot hold one such "
        f"collection in memory: use task.memory_mib of at least {estimate(2_000_000, 1536).required_task_mib} "
        "(chroma-ops capacity --vectors 2000000 --dim 1536)"]
    assert problems_of(DEV, task=replace(DEV.task, collection_size=CollectionSize(vectors=0, dim=768))) == [
        "task.collection_size = CollectionSize(vectors=0, dim=768): use a positive number of vectors and a dim "
        "from 1 to 65536"]


def test_health_check_grace_must_cover_the_writer_lock_wait() -> None:
    assert problems_of(DEV, task=TaskConfig(cpu=1024, memory_mib=2048, health_check_grace_seconds=119)) == [
        "task.health_check_grace_seconds = 119: use 120 to 300 seconds: a new task may wait for the old task's "
        "stop path (deregistration, gateway drain, Chroma stop: 90 s at worst) before it takes the writer lock, and "
        "300 is the most an ECS container health check start period allows"]
    assert replace(DEV, task=TaskConfig(cpu=1024, memory_mib=2048, health_check_grace_seconds=120))


def test_the_write_pause_fits_the_backup_jobs_wait() -> None:
    # The job waits at most 840 s: the node drains writes in flight (upstream timeout 60 s), copies, checks (120 s).
    assert problems_of(DEV, backup=replace(DEV.backup, max_write_pause_seconds=661)) == [
        "backup.max_write_pause_seconds = 661: use 1 to 660 s (the backup job waits at most 840 s for the node, "
        "which first waits up to task.upstream_timeout_seconds for writes in flight)"]
    assert replace(DEV, backup=replace(DEV.backup, max_write_pause_seconds=660))
    assert problems_of(DEV, backup=replace(DEV.backup, pause_alarm_seconds=300)) == [
        "backup.pause_alarm_seconds = 300: use 1 s to less than backup.max_write_pause_seconds (300)"]
    assert problems_of(DEV, task=replace(DEV.task, upstream_timeout_seconds=720)) == [
        "task.upstream_timeout_seconds = 720: recovery points need at most 719 s (the node drains writes in flight "
        "for this long before its copy, within the backup job's wait)"]
