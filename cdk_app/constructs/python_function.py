"""A Python Lambda function of this repository: its unit's runtime package plus Powertools, bundled without Docker.

The asset mirrors the repository (`lambdas/<unit>/function/...` and the shared `lambdas/env_settings.py`), so the
function imports exactly as its tests do. Bundling also copies the pure-Python Powertools dependencies, at the
versions pinned in requirements-dev.txt and installed in the synthesizing environment. No network, no Docker.
The asset hash is computed over the bundled output, so a change to shared code or a pinned dependency redeploys.
"""

from __future__ import annotations

import importlib.util
import shutil
from pathlib import Path
from typing import Any

import aws_cdk as cdk
import jsii
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from constructs import Construct

from cdk_app.log_retention import retention
from cdk_app.nag import acknowledge

# Powertools with its Tracer: all pure Python (wrapt runs without its C extension, see WRAPT_DISABLE_EXTENSIONS).
BUNDLED_PACKAGES = ("aws_lambda_powertools", "jmespath", "typing_extensions", "aws_xray_sdk", "wrapt")
_IGNORED = shutil.ignore_patterns("__pycache__", "*.pyc", "*.so", "*.c", "tests")
RUNTIME = lambda_.Runtime.PYTHON_3_14


def _installed_path(package: str) -> Path:
    spec = importlib.util.find_spec(package)
    if spec is None or spec.origin is None:
        raise RuntimeError(f"{package} is not installed: run `make setup` (it is pinned in requirements-dev.txt)")
    origin = Path(spec.origin)
    return origin.parent if origin.name == "__init__.py" else origin


REPOSITORY = Path(__file__).resolve().parents[2]
LAMBDAS_DIR = REPOSITORY / "lambdas"
# Shared by every function's runtime code (standard library only).
SHARED_MODULES = ("__init__.py", "env_settings.py")


@jsii.implements(cdk.ILocalBundling)
class _CopyBundler:
    def __init__(self, unit: str, files: tuple[str, ...]) -> None:
        self._unit = unit
        self._files = files

    def try_bundle(self, output_dir: str, *_: Any, **__: Any) -> bool:
        out = Path(output_dir)
        (out / "lambdas" / self._unit).mkdir(parents=True, exist_ok=True)
        for name in SHARED_MODULES:
            shutil.copy2(LAMBDAS_DIR / name, out / "lambdas" / name)
        shutil.copy2(LAMBDAS_DIR / self._unit / "__init__.py", out / "lambdas" / self._unit / "__init__.py")
        shutil.copytree(LAMBDAS_DIR / self._unit / "function", out / "lambdas" / self._unit / "function",
                        ignore=_IGNORED, dirs_exist_ok=True)
        for relative in self._files:
            (out / relative).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(REPOSITORY / relative, out / relative)
        for package in BUNDLED_PACKAGES:
            source = _installed_path(package)
            if source.is_dir():
                shutil.copytree(source, out / source.name, ignore=_IGNORED, dirs_exist_ok=True)
            else:
                shutil.copy2(source, out / source.name)
        return True


class PythonFunction(Construct):
    """The runtime of `lambdas/<unit>/function/`; `handler` is relative to it (e.g. "handler.lambda_handler")."""

    def __init__(self, scope: Construct, construct_id: str, *, unit: str, handler: str, description: str,
                 service: str, log_group_name: str, log_retention_days: int, log_key: kms.IKey,
                 removal_policy: cdk.RemovalPolicy,
                 environment: dict[str, str] | None = None, timeout: cdk.Duration | None = None,
                 network: tuple[ec2.IVpc, ec2.SubnetSelection, ec2.ISecurityGroup] | None = None,
                 retry_attempts: int | None = None, bundled_files: tuple[str, ...] = ()) -> None:
        """`network`: (vpc, subnets, security group) for a function that must reach private endpoints;
        `bundled_files`: repository-relative files (standard library only) the runtime imports from outside
        `lambdas/`, bundled at the same paths; `retry_attempts`: Lambda's retries of a failed asynchronous run."""
        super().__init__(scope, construct_id)
        self.log_group = logs.LogGroup(self, "Logs", log_group_name=log_group_name,
                                       retention=retention(log_retention_days),
                                       encryption_key=log_key, removal_policy=removal_policy)
        code = lambda_.Code.from_asset(str(LAMBDAS_DIR / unit / "function"),
                                       asset_hash_type=cdk.AssetHashType.OUTPUT,
                                       bundling=cdk.BundlingOptions(image=RUNTIME.bundling_image,
                                                                    local=_CopyBundler(unit, bundled_files)))
        self.function = lambda_.Function(
            self, "Function",
            runtime=RUNTIME,
            architecture=lambda_.Architecture.ARM_64,
            handler=f"lambdas.{unit}.function.{handler}",
            code=code,
            description=description,
            timeout=timeout or cdk.Duration.seconds(30),
            memory_size=256,
            vpc=network[0] if network else None,
            vpc_subnets=network[1] if network else None,
            security_groups=[network[2]] if network else None,
            log_group=self.log_group,
            retry_attempts=retry_attempts,
            tracing=lambda_.Tracing.ACTIVE,
            environment={
                "POWERTOOLS_SERVICE_NAME": service,
                "WRAPT_DISABLE_EXTENSIONS": "1",
                **(environment or {}),
            },
        )
        role = self.function.role
        assert isinstance(role, iam.Role)
        reasons = {
            "AwsSolutions-IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/"
            "AWSLambdaBasicExecutionRole]": "AWS's minimal managed policy for a function to write its own logs.",
            "AwsSolutions-IAM5[Resource::*]": "X-Ray's PutTraceSegments and PutTelemetryRecords, added by active "
                                              "tracing, have no resource-level permissions.",
        }
        if network:
            reasons["AwsSolutions-IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/"
                    "AWSLambdaVPCAccessExecutionRole]"] = ("AWS's managed policy for the network interfaces a "
                                                            "function in a VPC needs; ENI actions have no "
                                                            "resource-level scoping.")
        acknowledge(role, reasons)
