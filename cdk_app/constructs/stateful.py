"""Helpers for stateful resources, whose logical ids must never change (a new id replaces the resource)."""

from __future__ import annotations

import aws_cdk as cdk
from constructs import IConstruct


def pin_logical_id(construct: IConstruct, logical_id: str) -> None:
    """Give the CloudFormation resource behind `construct` a fixed logical id, independent of the construct tree."""
    resource = construct.node.default_child if not isinstance(construct, cdk.CfnResource) else construct
    if not isinstance(resource, cdk.CfnElement):
        raise TypeError(f"{construct.node.path} has no CloudFormation resource to pin")
    resource.override_logical_id(logical_id)


def removal_policy(retain: bool) -> cdk.RemovalPolicy:
    return cdk.RemovalPolicy.RETAIN if retain else cdk.RemovalPolicy.DESTROY
