"""Publishes what clients and operators need as stack outputs and SSM parameters under /chroma/<env>/."""

from __future__ import annotations

import re

import aws_cdk as cdk
from aws_cdk import aws_ssm as ssm
from constructs import Construct

from cdk_app.constants import ssm_parameter_prefix


class PublishedValues(Construct):
    def __init__(self, scope: Construct, construct_id: str, *, environment: str) -> None:
        super().__init__(scope, construct_id)
        self._prefix = ssm_parameter_prefix(environment)

    def publish(self, name: str, value: str, description: str) -> None:
        """`name` is the SSM parameter's path under the prefix; the output id is its CamelCase form."""
        output_id = "".join(part.capitalize() for part in re.split(r"[-/]", name))
        cdk.CfnOutput(cdk.Stack.of(self), output_id, value=value, description=description)
        ssm.StringParameter(self, output_id, parameter_name=f"{self._prefix}/{name}", string_value=value,
                            description=description)
