from __future__ import annotations

import uuid
from pathlib import Path
from typing import TYPE_CHECKING, Any

import boto3
import pytest
from moto import mock_aws

from gateway.tokens import (
    FileTokenSource,
    SecretsManagerTokenSource,
    StaticTokenSource,
    TokenCache,
    TokenSet,
    is_well_formed,
)

if TYPE_CHECKING:
    from mypy_boto3_secretsmanager import SecretsManagerClient


def test_token_set_accepts_current_pending_and_previous_only_within_grace() -> None:
    tokens = TokenSet(current=("new",), pending="next", previous="old", previous_valid_until=100.0)
    assert "new" in tokens.active(50) and "next" in tokens.active(50) and "old" in tokens.active(99.9)
    assert "old" not in tokens.active(100.0)
    assert "ne" not in tokens.active(50) and "" not in tokens.active(50)
    assert TokenSet().active(0) == []  # nothing loaded: refuse everything, never fail open


def test_pending_token_is_accepted_only_until_its_age_runs_out() -> None:
    tokens = TokenSet(current=("new",), pending="next", pending_valid_until=200.0, previous="old",
                      previous_valid_until=100.0)
    assert tokens.active(50) == ["new", "next", "old"]
    assert tokens.next_change(50) == 100.0 and tokens.next_change(150) == 200.0 and tokens.next_change(250) is None
    assert tokens.active(150) == ["new", "next"] and tokens.active(200) == ["new"]


@pytest.mark.parametrize("token,ok", [("abc", True), ("a" * 512, True), ("a" * 513, False), ("", False),
                                      ("with space", False), ("caf\u00e9", False), ("tab\t", False),
                                      ("!#$%&'()*+,-./:;<=>?@[]^_`{|}~", True)])
def test_well_formed_tokens_are_printable_ascii(token: str, ok: bool) -> None:
    assert is_well_formed(token) is ok


def test_file_source_reads_tokens_and_ignores_comments(tmp_path: Path) -> None:
    path = tmp_path / "tokens"
    path.write_text("# local tokens\n\nalpha\n  beta  \n")
    assert FileTokenSource(path).load().current == ("alpha", "beta")
    path.write_text("# nothing\n")
    with pytest.raises(ValueError, match="holds no token"):
        FileTokenSource(path).load()


def test_a_malformed_token_is_refused_without_echoing_it() -> None:
    with pytest.raises(ValueError) as caught:
        StaticTokenSource(("good", "bad token")).load()
    assert "bad token" not in str(caught.value) and "token #2" in str(caught.value)


class FlakySource:
    def __init__(self) -> None:
        self.results: list[Any] = []

    def load(self) -> TokenSet:
        result = self.results.pop(0)
        if isinstance(result, Exception):
            raise result
        assert isinstance(result, TokenSet)
        return result


def test_cache_keeps_the_last_good_set_when_a_refresh_fails() -> None:
    source = FlakySource()
    source.results = [TokenSet(current=("one",)), ConnectionError("endpoint unreachable"), TokenSet(current=("two",))]
    cache = TokenCache(source)
    assert cache.refresh() and "one" in cache.tokens.active(0.0)
    assert not cache.refresh()
    assert "one" in cache.tokens.active(0.0) and cache.consecutive_failures == 1
    assert cache.last_error == "ConnectionError: endpoint unreachable"
    assert cache.refresh() and "two" in cache.tokens.active(0.0) and "one" not in cache.tokens.active(0.0)
    assert cache.consecutive_failures == 0


def test_cache_that_never_loaded_refuses_everything() -> None:
    source = FlakySource()
    source.results = [ConnectionError("down")]
    cache = TokenCache(source)
    assert not cache.refresh()
    assert not cache.tokens.loaded and "" not in cache.tokens.active(0.0)


def record_calls(client: SecretsManagerClient) -> list[str]:
    """The API calls `client` makes from now on (each one is billed and rate-limited), via botocore's events."""
    calls: list[str] = []

    def record(model: Any, **_: Any) -> None:
        calls.append(model.name)

    client.meta.events.register("before-call.secrets-manager.*", record)
    return calls


@mock_aws
def test_a_refresh_without_changes_costs_one_call() -> None:
    client = boto3.client("secretsmanager", region_name="us-east-1")
    arn = client.create_secret(Name="chroma/test/counted", SecretString="first")["ARN"]
    calls = record_calls(client)
    source = SecretsManagerTokenSource(secret_id=arn, previous_grace_seconds=60, client=client)
    calls.clear()
    assert source.load().current == ("first",)
    assert calls == ["DescribeSecret", "GetSecretValue"]
    calls.clear()
    assert source.load().current == ("first",)
    assert calls == ["DescribeSecret"]
    client.put_secret_value(SecretId=arn, ClientRequestToken=str(uuid.uuid4()), SecretString="second",
                            VersionStages=["AWSPENDING"])
    calls.clear()
    assert source.load().pending == "second"
    assert calls == ["DescribeSecret", "GetSecretValue"]  # only the new version is fetched


@mock_aws
def test_secrets_manager_source_reads_the_stages_of_a_rotation() -> None:
    client = boto3.client("secretsmanager", region_name="us-east-1")
    arn = client.create_secret(Name="chroma/test/gateway-token", SecretString="first")["ARN"]
    source = SecretsManagerTokenSource(secret_id=arn, previous_grace_seconds=600, client=client)
    assert source.load() == TokenSet(current=("first",), previous_valid_until=source.load().previous_valid_until)

    # createSecret: the new version is AWSPENDING; both are accepted.
    pending_version = str(uuid.uuid4())
    client.put_secret_value(SecretId=arn, ClientRequestToken=pending_version, SecretString="second",
                            VersionStages=["AWSPENDING"])
    during = source.load()
    assert during.current == ("first",) and during.pending == "second" and during.previous is None

    # finishSecret: AWSCURRENT moves; Secrets Manager marks the old version AWSPREVIOUS.
    current_version = next(v for v, stages in client.describe_secret(SecretId=arn)["VersionIdsToStages"].items()
                           if "AWSCURRENT" in stages)
    client.update_secret_version_stage(SecretId=arn, VersionStage="AWSCURRENT", MoveToVersionId=pending_version,
                                       RemoveFromVersionId=current_version)
    client.update_secret_version_stage(SecretId=arn, VersionStage="AWSPENDING", RemoveFromVersionId=pending_version)
    after = source.load()
    assert after.current == ("second",) and after.pending is None and after.previous == "first"
    created = client.get_secret_value(SecretId=arn)["CreatedDate"].timestamp()
    assert after.previous_valid_until >= created + 600
    assert "first" in after.active(created + 1) and "first" not in after.active(after.previous_valid_until)
