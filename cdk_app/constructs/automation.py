"""SSM Automation documents of this app: every parameter defaulted to the environment's own resources (so an
operator runs one by name, with no parameters), each document running as its own least-privilege role."""

from __future__ import annotations

from typing import Any

from aws_cdk import aws_ssm as ssm
from constructs import Construct

SSM_PRINCIPAL = "ssm.amazonaws.com"
# A parameter: (what it is, its default). A list default makes a StringList parameter.
Parameter = tuple[str, str | list[str]]


def automation_content(description: str, parameters: dict[str, Parameter], steps: list[dict[str, Any]],
                       **extra: Any) -> dict[str, Any]:
    """An Automation document's content, running as its AutomationAssumeRole parameter."""
    declared = {name: {"type": "StringList" if isinstance(default, list) else "String", "description": what,
                       "default": default} for name, (what, default) in parameters.items()}
    return {"schemaVersion": "0.3", "description": description, "assumeRole": "{{ AutomationAssumeRole }}",
            "parameters": declared, "mainSteps": steps, **extra}


def automation_document(scope: Construct, construct_id: str, name: str, content: dict[str, Any]) -> ssm.CfnDocument:
    return ssm.CfnDocument(scope, construct_id, name=name, document_type="Automation", document_format="JSON",
                           content=content, update_method="NewVersion")
