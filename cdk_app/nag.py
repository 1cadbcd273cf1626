"""cdk-nag wiring: the AwsSolutions pack on every synth, and acknowledgments that must state why."""

from __future__ import annotations

import aws_cdk as cdk
import cdk_nag
from constructs import IConstruct

NAG_PACK = "AwsSolutions"


def enable_checks(app: cdk.App) -> None:
    """Any unacknowledged finding, warnings included, fails synth."""
    cdk.Validations.of(app).add_plugins(cdk_nag.AwsSolutionsChecks(app))


def acknowledge(construct: IConstruct, reasons: dict[str, str]) -> None:
    """Acknowledge AwsSolutions rules on `construct` and everything below it, each with its specific reason.

    Keys are rule ids ("AwsSolutions-ECS2") or rule ids with one finding ("AwsSolutions-IAM5[Resource::*]").
    """
    for rule_id, reason in reasons.items():
        if len(reason) < 40:
            raise ValueError(f"cdk-nag acknowledgment of {rule_id} needs a specific reason, got {reason!r}")
        cdk.Validations.of(construct).acknowledge(cdk.Acknowledgment(id=f"{NAG_PACK}::{rule_id}", reason=reason))


def acknowledge_image_pull(execution_role: IConstruct) -> None:
    """A task's execution role: ECR's token action is account-wide by design."""
    acknowledge(execution_role, {
        "AwsSolutions-IAM5[Resource::*]": "ecr:GetAuthorizationToken, which the execution role needs to pull the "
                                          "images, has no resource-level permissions; AWS requires '*'.",
    })
