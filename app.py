#!/usr/bin/env python3
"""CDK entry point: `cdk synth` builds every environment; `cdk deploy 'prod/*'` deploys one."""

from __future__ import annotations

import os
import sys

import aws_cdk as cdk


def main() -> int:
    from cdk_app.validation import ConfigError

    try:
        from cdk_app.app_builder import UnknownEnvironmentError, build_app
        from cdk_app.environments import ENVIRONMENTS

        app = cdk.App()
        build_app(app, ENVIRONMENTS, default_account=os.environ.get("CDK_DEFAULT_ACCOUNT"))
    except (ConfigError, UnknownEnvironmentError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    app.synth()
    return 0


if __name__ == "__main__":
    sys.exit(main())
