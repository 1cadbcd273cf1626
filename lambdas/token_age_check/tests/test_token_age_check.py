from __future__ import annotations

import json
from datetime import timedelta

import boto3
import pytest
from moto import mock_aws

from lambdas.token_age_check.function import handler
from lambdas.token_age_check.function.handler import days_since_rotation


@mock_aws
def test_never_rotated_counts_from_creation() -> None:
    client = boto3.client("secretsmanager", region_name="us-east-1")
    arn = client.create_secret(Name="chroma/test/token", SecretString="t")["ARN"]
    created = client.describe_secret(SecretId=arn)["CreatedDate"]
    assert days_since_rotation(client, arn, created + timedelta(days=3, hours=12)) == pytest.approx(3.5)


@mock_aws
def test_counts_from_the_last_rotation() -> None:
    client = boto3.client("secretsmanager", region_name="us-east-1")
    arn = client.create_secret(Name="chroma/test/token", SecretString="t")["ARN"]
    client.rotate_secret(SecretId=arn, RotationRules={"AutomaticallyAfterDays": 30}, RotateImmediately=False)
    rotated = client.describe_secret(SecretId=arn)["LastRotatedDate"]
    assert days_since_rotation(client, arn, rotated + timedelta(days=31)) == pytest.approx(31.0, abs=1e-3)


def test_handler_publishes_days_since_rotation(monkeypatch: pytest.MonkeyPatch,
                                                capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    with mock_aws():
        client = boto3.client("secretsmanager")
        arn = client.create_secret(Name="chroma/test/token", SecretString="t")["ARN"]
        monkeypatch.setenv("SECRET_ID", arn)
        monkeypatch.setenv("CHROMA_ENVIRONMENT", "test")

        class Context:
            function_name, memory_limit_in_mb = "token-age", 128
            invoked_function_arn = "arn:aws:lambda:us-east-1:123456789012:function:token-age"
            aws_request_id = "req-1"

        handler.lambda_handler({}, Context())
    line = next(json.loads(x) for x in capsys.readouterr().out.splitlines() if x.startswith('{"_aws"'))
    assert line["Environment"] == "test" and line["DaysSinceRotation"] in (0.0, [0.0])
    assert line["_aws"]["CloudWatchMetrics"][0]["Namespace"] == "ChromaTokenRotation"
