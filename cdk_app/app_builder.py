"""Builds the CDK app: one stage per selected environment, cdk-nag on all of them."""

from __future__ import annotations

from collections.abc import Mapping

import aws_cdk as cdk

from cdk_app.config import EnvironmentConfig
from cdk_app.nag import enable_checks
from cdk_app.stage import ChromaStage

# `cdk synth -c environments=dev,prod` builds only those; the default builds them all.
ENVIRONMENTS_CONTEXT_KEY = "environments"


class UnknownEnvironmentError(ValueError):
    pass


def select_environments(requested: str | None, available: Mapping[str, EnvironmentConfig]) -> list[str]:
    if requested is None or not requested.strip():
        return list(available)
    names = [name.strip() for name in requested.split(",") if name.strip()]
    unknown = [name for name in names if name not in available]
    if unknown:
        raise UnknownEnvironmentError(
            f"context {ENVIRONMENTS_CONTEXT_KEY}: unknown environment(s) {', '.join(map(repr, unknown))}; "
            f"known: {', '.join(available)}")
    return names


def build_app(app: cdk.App, environments: Mapping[str, EnvironmentConfig],
              default_account: str | None) -> list[ChromaStage]:
    requested = app.node.try_get_context(ENVIRONMENTS_CONTEXT_KEY)
    names = select_environments(str(requested) if requested is not None else None, environments)
    stages = [ChromaStage(app, environments[name].with_account(default_account)) for name in names]
    enable_checks(app)
    return stages
