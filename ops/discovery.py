"""Find an environment's endpoint and token: SSM parameters first (/chroma/<env>/...), stack outputs second."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from botocore.exceptions import BotoCoreError, ClientError

from cdk_app.constants import SERVICE_NAME, SSM_ENDPOINT_URL, SSM_TOKEN_SECRET_ARN, ssm_parameter_prefix
from ops.errors import OpsError, UsageError

if TYPE_CHECKING:
    import boto3
    from mypy_boto3_cloudformation import CloudFormationClient
    from mypy_boto3_ssm import SSMClient


@dataclass(frozen=True)
class Endpoint:
    url: str
    token: str
    source: str  # where the endpoint was found, for the report (never the token)


def _output_key(parameter: str) -> str:
    return "".join(part.capitalize() for part in parameter.split("-"))


def _from_ssm(ssm: SSMClient, environment: str) -> dict[str, str]:
    prefix = ssm_parameter_prefix(environment)
    names = [f"{prefix}/{SSM_ENDPOINT_URL}", f"{prefix}/{SSM_TOKEN_SECRET_ARN}"]
    found = ssm.get_parameters(Names=names)["Parameters"]
    return {p["Name"].rsplit("/", 1)[1]: p["Value"] for p in found}


def _from_stacks(cloudformation: CloudFormationClient, environment: str) -> dict[str, str]:
    values: dict[str, str] = {}
    for stack in ("compute", "storage"):
        try:
            described = cloudformation.describe_stacks(StackName=f"{SERVICE_NAME}-{environment}-{stack}")
        except ClientError:
            continue
        outputs = {o["OutputKey"]: o["OutputValue"] for o in described["Stacks"][0].get("Outputs", [])}
        for parameter in (SSM_ENDPOINT_URL, SSM_TOKEN_SECRET_ARN):
            if _output_key(parameter) in outputs:
                values[parameter] = outputs[_output_key(parameter)]
    return values


def discover(environment: str, session: boto3.Session, known_environments: list[str]) -> Endpoint:
    if environment not in known_environments:
        raise UsageError(f"unknown environment {environment!r}; known: {', '.join(known_environments)}")
    try:
        values, source = _from_ssm(session.client("ssm"), environment), "SSM parameters"
        if len(values) < 2:
            values, source = _from_stacks(session.client("cloudformation"), environment), "stack outputs"
        if len(values) < 2:
            raise OpsError(f"environment {environment!r} is not deployed here: found neither SSM parameters "
                           f"{ssm_parameter_prefix(environment)}/{{{SSM_ENDPOINT_URL},{SSM_TOKEN_SECRET_ARN}}} "
                           f"nor the outputs of stacks {SERVICE_NAME}-{environment}-compute/storage")
        secret = session.client("secretsmanager").get_secret_value(
            SecretId=values[SSM_TOKEN_SECRET_ARN], VersionStage="AWSCURRENT")
    except (ClientError, BotoCoreError) as error:
        raise OpsError(f"cannot read environment {environment!r} from AWS: {error}") from None
    return Endpoint(url=values[SSM_ENDPOINT_URL], token=secret["SecretString"], source=source)
