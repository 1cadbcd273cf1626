"""chroma-ops against a real local Chroma and gateway, discovery against moto, and every error path."""

from __future__ import annotations

import json
import uuid
from pathlib import Path
from typing import Any

import boto3
import pytest
from moto import mock_aws

from gateway.local import Server
from gateway.tests.conftest import TOKEN, GatewayFactory
from ops.cli import main
from ops.discovery import discover
from ops.errors import OpsError, UsageError


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def smoke_collections(chroma: Server) -> list[str]:
    """Collections a smoke test left behind on the Chroma server (read directly, not through the gateway)."""
    import chromadb

    return [c.name for c in chromadb.HttpClient(host="127.0.0.1", port=chroma.port).list_collections()
            if c.name.startswith("chroma-ops-smoke-")]


def test_smoke_passes_and_cleans_up(chroma: Server, start_gateway: GatewayFactory,
                                    capsys: pytest.CaptureFixture[str]) -> None:
    gateway = start_gateway(chroma.url)
    code, out, _ = run(capsys, "smoke", "--endpoint", gateway.url, "--token", TOKEN, "--json")
    report = json.loads(out)
    assert code == 0 and report["ok"] is True
    assert [s["name"] for s in report["steps"]] == ["heartbeat", "create collection", "add", "query", "get",
                                                     "delete collection"]
    assert smoke_collections(chroma) == []


def test_smoke_cleans_up_when_a_step_after_create_fails(chroma: Server, start_gateway: GatewayFactory,
                                                        capsys: pytest.CaptureFixture[str]) -> None:
    gateway = start_gateway(chroma.url, max_body_bytes="800")  # creating fits; adding 20 records does not (413)
    code, out, _ = run(capsys, "smoke", "--endpoint", gateway.url, "--token", TOKEN, "--json")
    steps = {s["name"]: s for s in json.loads(out)["steps"]}
    assert code == 1
    assert steps["create collection"]["ok"] and not steps["add"]["ok"]
    assert steps["cleanup"]["ok"] and "query" not in steps
    assert smoke_collections(chroma) == []


def test_smoke_human_output(chroma: Server, start_gateway: GatewayFactory, capsys: pytest.CaptureFixture[str],
                            monkeypatch: pytest.MonkeyPatch) -> None:
    gateway = start_gateway(chroma.url)
    monkeypatch.setenv("CHROMA_OPS_TOKEN", TOKEN)
    code, out, _ = run(capsys, "smoke", "--endpoint", gateway.url)
    assert code == 0 and "all steps passed" in out and "heartbeat" in out


def test_smoke_with_a_wrong_token_fails_clearly(chroma: Server, start_gateway: GatewayFactory,
                                                capsys: pytest.CaptureFixture[str]) -> None:
    gateway = start_gateway(chroma.url)
    code, out, err = run(capsys, "smoke", "--endpoint", gateway.url, "--token", "wrong-token")
    assert code == 1 and "FAILED" in out
    assert "the endpoint refused the token (401)" in out
    assert "Traceback" not in out + err and "wrong-token" not in out + err


def test_smoke_unreachable_endpoint(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(capsys, "smoke", "--endpoint", "http://127.0.0.1:9", "--token", "t")
    assert code == 1 and "cannot reach http://127.0.0.1:9" in out and "Traceback" not in out + err


@pytest.mark.parametrize("argv,message", [
    (["smoke"], "smoke needs --env ENV or --endpoint URL"),
    (["smoke", "--env", "qa"], "unknown environment 'qa'; known: dev, staging, prod"),
    (["smoke", "--endpoint", "http://x"], "--endpoint needs a token"),
    (["smoke", "--env", "dev", "--endpoint", "http://x"], "give either --env or --endpoint, not both"),
    (["cost", "--env", "qa"], "unknown environment 'qa'"),
    (["capacity", "--vectors", "-5", "--dim", "8"], "--vectors = -5: use a positive number of vectors"),
    (["capacity", "--vectors", "10"], "capacity needs --vectors and --dim"),
    (["bench", "--vectors", "10", "--k", "50"], "--k = 50: use 1 to the number of vectors (10)"),
])
def test_bad_input_gets_one_message_and_exit_2(argv: list[str], message: str,
                                               capsys: pytest.CaptureFixture[str],
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CHROMA_OPS_TOKEN", raising=False)
    code, _, err = run(capsys, *argv)
    assert code == 2
    assert message in err and err.count("\n") == 1 and "Traceback" not in err


def test_capacity_says_the_case_study_does_not_fit(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "capacity", "--vectors", "5000000", "--dim", "1024", "--env", "prod", "--json")
    report = json.loads(out)
    assert code == 1  # exit 1: the environment cannot hold it
    assert report["environment"]["fits"] is False and report["estimate"]["required_task_mib"] > 8192
    code, out, _ = run(capsys, "capacity", "--vectors", "100000", "--dim", "384", "--env", "prod")
    assert code == 0 and "holds it" in out
    assert "collections of this size in memory at once" in out


def test_capacity_beyond_any_fargate_size(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "capacity", "--vectors", "100000000", "--dim", "1536")
    assert code == 1 and "no Fargate task is large enough" in out


def test_cost_table_and_json(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "cost", "--env", "prod")
    assert code == 0 and "ECS Fargate" in out and "total" in out and "$380.00/month" in out
    code, out, _ = run(capsys, "cost", "--env", "dev", "--json", "--nat-gb", "100")
    report = json.loads(out)
    nat = next(line for line in report["lines"] if line["component"] == "NAT gateway")
    assert nat["monthly_usd"] == round(730 * 0.045 + 100 * 0.045, 2)
    assert report["total_usd"] == pytest.approx(sum(line["monthly_usd"] for line in report["lines"]), abs=0.01)


def test_bench_against_a_local_gateway(chroma: Server, start_gateway: GatewayFactory,
                                       capsys: pytest.CaptureFixture[str]) -> None:
    gateway = start_gateway(chroma.url)
    code, out, _ = run(capsys, "bench", "--endpoint", gateway.url, "--token", TOKEN, "--vectors", "300",
                       "--dim", "16", "--concurrency", "1", "2", "--batch-sizes", "50", "100", "--seconds", "0.5",
                       "--json")
    report = json.loads(out)
    assert code == 0
    assert [i["batch_size"] for i in report["insert"]] == [50, 100]
    assert sum(i["vectors"] for i in report["insert"]) == 300
    assert [q["concurrency"] for q in report["query"]] == [1, 2]
    assert all(q["requests"] > 0 and q["errors"] == 0 and q["p50_ms"] > 0 for q in report["query"])
    assert report["dataset"] == {"vectors": 300, "dim": 16, "space": "cosine", "seed": 7}


@pytest.mark.servers
def test_bench_starts_its_own_chroma_on_a_fresh_machine(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "bench", "--vectors", "200", "--dim", "8", "--concurrency", "1",
                       "--batch-sizes", "100", "--seconds", "0.3")
    assert code == 0 and "local gateway" in out and "queries/s" in out and "vectors/s" in out


def test_bench_with_a_wrong_token(chroma: Server, start_gateway: GatewayFactory,
                                  capsys: pytest.CaptureFixture[str]) -> None:
    gateway = start_gateway(chroma.url)
    code, _, err = run(capsys, "bench", "--endpoint", gateway.url, "--token", "nope", "--vectors", "10",
                       "--dim", "4", "--k", "3")
    assert code == 1 and "refused the token (401)" in err


@pytest.fixture
def aws(monkeypatch: pytest.MonkeyPatch) -> Any:
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    with mock_aws():
        yield boto3.Session(region_name="us-east-1")


def _secret(session: Any, value: str) -> str:
    return str(session.client("secretsmanager").create_secret(Name=f"chroma/t/{uuid.uuid4().hex}",
                                                              SecretString=value)["ARN"])


def test_discovery_from_ssm_parameters(aws: Any) -> None:
    arn = _secret(aws, "from-ssm")
    ssm = aws.client("ssm")
    ssm.put_parameter(Name="/chroma/prod/endpoint-url", Value="https://chroma.example.com", Type="String")
    ssm.put_parameter(Name="/chroma/prod/token-secret-arn", Value=arn, Type="String")
    found = discover("prod", aws, ["dev", "prod"])
    assert (found.url, found.token, found.source) == ("https://chroma.example.com", "from-ssm",
                                                      "SSM parameters /chroma/prod/")


def test_discovery_falls_back_to_stack_outputs(aws: Any) -> None:
    arn = _secret(aws, "from-stacks")
    cloudformation = aws.client("cloudformation")
    for stack, key, value in (("compute", "EndpointUrl", "http://internal-alb.example"),
                              ("storage", "TokenSecretArn", arn)):
        template = {"Resources": {"Marker": {"Type": "AWS::SNS::Topic"}},
                    "Outputs": {key: {"Value": value}}}
        cloudformation.create_stack(StackName=f"chroma-dev-{stack}", TemplateBody=json.dumps(template))
    found = discover("dev", aws, ["dev"])
    assert (found.url, found.token) == ("http://internal-alb.example", "from-stacks")
    assert found.source == "outputs of stacks chroma-dev-compute and -storage"


def test_discovery_of_an_environment_that_is_not_deployed(aws: Any) -> None:
    with pytest.raises(OpsError, match="environment 'staging' is not deployed here"):
        discover("staging", aws, ["staging"])
    with pytest.raises(UsageError, match="unknown environment 'qa'"):
        discover("qa", aws, ["staging"])


@pytest.mark.parametrize("argv", [["restore", "--env", "dev"],
                                  ["restore", "--env", "dev", "--list", "--undo", "restore-dev-20261126-101500"]])
def test_restore_needs_exactly_one_action(capsys: pytest.CaptureFixture[str], argv: list[str]) -> None:
    code, _, err = run(capsys, *argv)
    assert code == 2
    assert "restore needs exactly one of --recovery-point ARN|latest, --list, --undo RESTORE_ID, --discard" in err


def test_restore_of_an_environment_that_is_not_deployed_says_what_is_missing(
        capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    for key, value in {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing"}.items():
        monkeypatch.setenv(key, value)
    with mock_aws():
        code, _, err = run(capsys, "restore", "--env", "dev", "--list")
    assert code == 1 and "environment 'dev' does not publish cluster-name" in err


def test_cost_what_if_names_the_task_and_compares_with_the_case_study(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "cost", "--env", "prod", "--vectors", "5000000", "--dim", "768")
    assert code == 0
    assert "what-if: 5,000,000 vectors x 768 dimensions on prod's layout: the cheapest task that holds them is 4 " \
           "vCPU / 22 GB" in out
    assert "case study design" in out
    code, _, err = run(capsys, "cost", "--env", "prod", "--vectors", "5000000")
    assert code == 2 and "the what-if needs both --vectors and --dim" in err


def test_smoke_of_a_node_needs_the_environment_and_a_node_it_has(capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(capsys, "smoke", "--endpoint", "http://127.0.0.1:9", "--token", "t", "--node", "search")
    assert code == 2 and "--node needs --env" in err
    code, _, err = run(capsys, "smoke", "--env", "dev", "--node", "search")
    assert code == 2 and "--node search: environment 'dev' has the nodes primary" in err


def test_capacity_places_tenants_and_prints_the_config(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "capacity", "--tenant", "acme=3000000:768", "--tenant", "globex=1000000:1536",
                       "--node-memory-mib", "16384")
    assert code == 0 and "2 tenants on 2 node(s) of 16 GB" in out
    assert "NodeConfig('node2', tenants=('globex',)" in out
    code, _, err = run(capsys, "capacity", "--tenant", "acme=90000000:1536", "--node-memory-mib", "16384")
    assert code == 2 and "tenant 'acme'" in err and "nodes of 16,384 MiB cannot hold it" in err


def test_move_tenant_refuses_a_node_the_environment_does_not_have(capsys: pytest.CaptureFixture[str],
                                                                 tmp_path: Path) -> None:
    code, _, err = run(capsys, "move-tenant", "--env", "dev", "--tenant", "acme", "--to", "search",
                       "--state", str(tmp_path / "state.json"))
    assert code == 2 and "--to search: environment 'dev' has the nodes primary" in err
    code, _, err = run(capsys, "move-tenant", "--env", "dev", "--tenant", "acme", "--to", "primary",
                       "--state", str(tmp_path / "state.json"))
    assert code == 2 and "'acme' is already placed on 'primary'" in err
