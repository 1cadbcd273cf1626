"""cdk-nag (AwsSolutions) and cfn-lint over every template of every environment."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pytest

from cdk_app.config import LoadBalancerConfig, NetworkConfig
from cdk_app.environments import DEV
from tests.cdk_support import SynthesizedApp, cfn_lint_findings, synthesize


def test_every_environment_synthesizes_with_no_unacknowledged_nag_finding(synthesized: SynthesizedApp) -> None:
    # Synth raises ValidationFailed on any finding; the report confirms the pack really ran on every stack.
    report = json.loads((synthesized.outdir / "validation-report.json").read_text())
    plugins = {p["pluginName"]: p for p in report["pluginReports"]}
    assert all(p["conclusion"] == "success" and p["violations"] == [] for p in plugins.values()), plugins
    plugin = plugins["AwsSolutions"]
    # Every acknowledged finding is one we expect, in every environment, each with a specific reason.
    acknowledged = {(v["ruleName"].split("[")[0], c["constructPath"].split("/", 1)[1])
                    for v in plugin["suppressedViolations"] for c in v["violatingConstructs"]}
    assert acknowledged == {
        ("AwsSolutions-IAM4", "Storage/Backup/Role/Resource"),
        ("AwsSolutions-SMG4", "Storage/GatewayToken/Secret/Resource"),
        ("AwsSolutions-ECS2", "Compute/Chroma/Task/Resource"),
        ("AwsSolutions-IAM5", "Compute/Chroma/Task/ExecutionRole/DefaultPolicy/Resource"),
        ("AwsSolutions-IAM5", "Compute/RestoreTask/Task/ExecutionRole/DefaultPolicy/Resource"),
        # RunTask of one family on one cluster, recovery points by id, the node's verdicts (cdk_app/node/tests).
        ("AwsSolutions-IAM5", "Compute/RestoreAutomation/Role/DefaultPolicy/Resource"),
        ("AwsSolutions-S1", "Compute/LoadBalancer/AccessLogs/Resource"),
        ("AwsSolutions-S1", "Storage/RecoveryPoints/Requests/Resource"),
        # Only the node's answers, one object per recovery point id (asserted in cdk_app/node/tests).
        ("AwsSolutions-IAM5", "Compute/Chroma/Task/TaskRole/DefaultPolicy/Resource"),
        ("AwsSolutions-IAM4", "Compute/TokenRotation/Function/Function/ServiceRole/Resource"),
        ("AwsSolutions-IAM5", "Compute/TokenRotation/Function/Function/ServiceRole/DefaultPolicy/Resource"),
        ("AwsSolutions-IAM5", "Observability/Remediation/RestartRole/DefaultPolicy/Resource"),
        *((rule, f"Observability/{check}/Function/Function/ServiceRole/{resource}")
          for check in ("CapacityCheck", "TokenAgeCheck", "RecoveryPoint")
          for rule, resource in (("AwsSolutions-IAM4", "Resource"), ("AwsSolutions-IAM5", "DefaultPolicy/Resource"))),
    }
    assert all(len(v["reason"]) >= 40 for v in plugin["suppressedViolations"])
    assert len(synthesized.template_files()) == 12


@pytest.mark.synth
def test_nag_fails_synth_on_a_real_finding(tmp_path: Path) -> None:
    """Guard against a silently disabled nag pack: a world-open load balancer must fail synth (EC23)."""
    open_lb = replace(DEV, network=replace(DEV.network, nat_gateways=1),
                      load_balancer=LoadBalancerConfig(internet_facing=True, allowed_client_cidrs=("0.0.0.0/0",)))
    with pytest.raises(RuntimeError, match="ValidationFailed"):
        synthesize({"dev": open_lb}, tmp_path)
    report = (tmp_path / "validation-report.json").read_text()
    assert "AwsSolutions-EC23" in report


def test_cfn_lint_reports_no_errors(synthesized: SynthesizedApp) -> None:
    # No error, and no warning but those accepted in tests/cdk_support.py (each with why).
    findings = cfn_lint_findings(synthesized)
    assert not findings, json.dumps(findings, indent=1)


def test_network_config_without_any_egress_is_refused() -> None:
    with pytest.raises(ValueError, match=r"network\.interface_endpoints"):
        replace(DEV, network=NetworkConfig(vpc_cidr="10.0.0.0/16", availability_zones=("us-east-1a", "us-east-1b"),
                                           nat_gateways=0, interface_endpoints=False))
