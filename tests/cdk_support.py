"""Synthesizes the app the way `cdk synth` does, once per test session, and reads back templates."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import sysconfig
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aws_cdk as cdk
from aws_cdk.assertions import Template

from cdk_app.app_builder import build_app
from cdk_app.config import EnvironmentConfig
from cdk_app.stage import ChromaStage

STACK_IDS = ("Network", "Storage", "Compute", "Observability")
REPO = Path(__file__).resolve().parents[1]
# The feature flags `cdk synth` applies, so tests see the templates a deploy would.
CDK_CONTEXT: dict[str, Any] = json.loads((REPO / "cdk.json").read_text())["context"]
_ASSET_HASH = re.compile(r"[0-9a-f]{64}")


@dataclass
class SynthesizedApp:
    stages: dict[str, ChromaStage]
    outdir: Path

    def stack(self, environment: str, stack_id: str) -> cdk.Stack:
        stage = self.stages[environment]
        return {s.node.id: s for s in stage.stacks}[stack_id]

    def template(self, environment: str, stack_id: str) -> Template:
        return Template.from_stack(self.stack(environment, stack_id))

    def template_json(self, environment: str, stack_id: str) -> dict[str, Any]:
        stack = self.stack(environment, stack_id)
        path = self.outdir / f"assembly-{environment}" / stack.template_file
        template: dict[str, Any] = json.loads(path.read_text())
        return template

    def template_files(self) -> list[Path]:
        return sorted(self.outdir.glob("assembly-*/*.template.json"))


def synthesize(environments: Mapping[str, EnvironmentConfig], outdir: Path,
               default_account: str | None = None, context: dict[str, Any] | None = None) -> SynthesizedApp:
    app = cdk.App(outdir=str(outdir), context={**CDK_CONTEXT, **(context or {})})
    stages = build_app(app, environments, default_account=default_account)
    app.synth()
    return SynthesizedApp(stages={stage.stage_name: stage for stage in stages}, outdir=outdir)


def normalized(template: dict[str, Any]) -> dict[str, Any]:
    """A template without what changes when unrelated code changes: asset hashes and the bootstrap version check."""
    template = dict(json.loads(_ASSET_HASH.sub("ASSET_HASH", json.dumps(template))))
    template.get("Parameters", {}).pop("BootstrapVersion", None)
    template.get("Rules", {}).pop("CheckBootstrapVersion", None)
    for section in ("Parameters", "Rules"):
        if section in template and not template[section]:
            del template[section]
    return template


# cfn-lint warnings accepted in every template, each with why.
ACCEPTED_LINT_WARNINGS = {
    "W3005",  # CDK's own custom-resource provider emits a redundant DependsOn.
    "W3010",  # Availability zones are given explicitly on purpose: synth must not look them up.
}


def cfn_lint_findings(app: SynthesizedApp) -> list[dict[str, Any]]:
    """cfn-lint's findings over every template of `app`, but the accepted warnings."""
    cfn_lint = Path(sys.executable).parent / "cfn-lint"
    result = subprocess.run([str(cfn_lint), "--format", "json", *map(str, app.template_files())],
                            capture_output=True, text=True, check=False)
    return [f for f in json.loads(result.stdout or "[]") if f["Rule"]["Id"] not in ACCEPTED_LINT_WARNINGS]


def resources(template: dict[str, Any], resource_type: str) -> dict[str, dict[str, Any]]:
    return {k: r for k, r in template["Resources"].items() if r["Type"] == resource_type}


def only(template: dict[str, Any], resource_type: str) -> dict[str, Any]:
    found = list(resources(template, resource_type).values())
    assert len(found) == 1, f"expected one {resource_type}, found {len(found)}"
    return found[0]


def container(task: dict[str, Any], name: str) -> dict[str, Any]:
    return next(c for c in task["Properties"]["ContainerDefinitions"] if c["Name"] == name)


def function_asset(synthesized: SynthesizedApp, function: dict[str, Any]) -> Path:
    return synthesized.outdir / f"asset.{function['Properties']['Code']['S3Key'].removesuffix('.zip')}"


def assert_bundle_imports(asset: Path, module: str) -> None:
    """`module` imports from the asset alone (its Powertools too); only boto3 comes from outside, as in Lambda."""
    probe = ("import sys; sys.path.insert(0, sys.argv[1]); sys.path.append(sys.argv[2]); "
             f"import {module} as h, aws_lambda_powertools as p, wrapt; "
             "assert p.__file__.startswith(sys.argv[1]), p.__file__; "
             "assert h.__file__.startswith(sys.argv[1]), h.__file__; print(h.lambda_handler.__name__)")
    env = {**os.environ, "WRAPT_DISABLE_EXTENSIONS": "1", "POWERTOOLS_TRACE_DISABLED": "1",
           "POWERTOOLS_METRICS_NAMESPACE": "Test", "AWS_DEFAULT_REGION": "us-east-1"}
    result = subprocess.run([sys.executable, "-S", "-c", probe, str(asset), sysconfig.get_paths()["purelib"]],
                            capture_output=True, text=True, env=env, check=False, cwd=Path("/"))
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "lambda_handler"
