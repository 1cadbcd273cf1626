"""Capacity and cost arithmetic with answers worked out by hand."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest

from cdk_app.config import NodeConfig
from cdk_app.environments import DEV, PROD
from ops import capacity, cost
from ops.errors import OpsError, UsageError

PRICES = cost.load_prices()


def test_capacity_estimate_by_hand() -> None:
    model = capacity.Model(baseline_bytes=100 * capacity.MIB, overhead_bytes_per_record=200,
                           disk_vector_factor=2.0, disk_overhead_bytes_per_record=100, disk_baseline_bytes=0,
                           overhead_bytes_per_collection=2 * capacity.MIB)
    result = capacity.estimate(1_000_000, 256, max_neighbors=16, headroom=0.5, model=model, collections=4)
    per_vector = 4 * 256 + 2 * 16 * 4 + 200  # raw + links + overhead = 1352 bytes
    assert result.ram_bytes == 100 * capacity.MIB + 4 * 2 * capacity.MIB + 1_000_000 * per_vector
    assert result.disk_bytes == 1_000_000 * (2.0 * 4 * 256 + 128 + 100)
    ram_mib = (108 * capacity.MIB + 1_000_000 * per_vector) / capacity.MIB
    assert result.required_task_mib == int(-(-ram_mib * 1.5 // 1)) + 1024 + 128


def test_collections_per_task_by_hand() -> None:
    """4096 MiB: (4096 - 1024 OS - 128 gateway) / 1.25 headroom = 2355.2 MiB for Chroma; minus the 122 MB baseline;
    one collection of 50,000 x 768 = 50,000 x (3072 + 128 + 300) B + 3 MiB."""
    usable = (4096 - 1024 - 128) * capacity.MIB / 1.25 - 122e6
    one = 50_000 * (4 * 768 + 128 + 300) + 3 * capacity.MIB
    assert capacity.collections_per_task(4096, 50_000, 768) == int(usable // one) == 13
    assert capacity.collections_per_task(2048, 5_000_000, 1024) == 0
    with pytest.raises(UsageError, match="--collections = 0"):
        capacity.estimate(100, 8, collections=0)


def test_index_bytes_limit_by_hand() -> None:
    """What an 8192 MiB task leaves Chroma, minus its baseline, over 1.8 resident bytes per index byte."""
    usable = (8192 - 1024 - 128) * capacity.MIB / 1.25
    assert capacity.index_bytes_limit(8192) == int((usable - 122e6) / 1.8)
    assert capacity.index_bytes_limit(1024) == 0  # not even the OS reserve


def test_case_study_5m_vectors_do_not_fit_in_8_gb() -> None:
    result = capacity.estimate(5_000_000, 1024)
    assert result.required_task_mib > 8192
    assert capacity.chroma_guide_max_vectors(8192, 1024) == int(0.245e6 * 7)  # Chroma's own rule: ~1.7M


def test_recommendation_is_the_cheapest_valid_size() -> None:
    def monthly(cpu: int, memory: int) -> float:
        return cost.fargate_monthly(PRICES, "ARM64", cpu, memory)

    assert capacity.recommend(3000, monthly) == (1024, 3072)
    assert capacity.recommend(9000, monthly) == (2048, 9216)
    assert capacity.recommend(100_000, monthly) == (16384, 106496)
    assert capacity.recommend(130_000, monthly) is None  # more than any Fargate task


@pytest.mark.parametrize("kwargs,message", [
    ({"vectors": 0, "dim": 384}, "--vectors = 0"),
    ({"vectors": 10, "dim": 0}, "--dim = 0"),
    ({"vectors": 10, "dim": 8, "max_neighbors": 1}, "--max-neighbors = 1"),
    ({"vectors": 10, "dim": 8, "headroom": -1}, "--headroom = -1"),
])
def test_impossible_sizes_are_refused(kwargs: dict[str, Any], message: str) -> None:
    with pytest.raises(UsageError, match=message.replace("-", r"\-")):
        capacity.estimate(**kwargs)


def test_fargate_price_by_hand() -> None:
    # 2 vCPU x $0.03238 + 8 GB x $0.00356 per hour, 730 hours.
    assert cost.fargate_monthly(PRICES, "ARM64", 2048, 8192) == pytest.approx((2 * 0.03238 + 8 * 0.00356) * 730)
    assert cost.fargate_monthly(PRICES, "X86_64", 4096, 8192) == pytest.approx((4 * 0.04048 + 8 * 0.004445) * 730)


def test_case_study_fargate_line_is_reproduced_from_the_price_table() -> None:
    two_tasks = 2 * cost.fargate_monthly(PRICES, "X86_64", 4096, 8192)
    assert two_tasks == pytest.approx(288.32, abs=0.01)  # FACTS: ~$288; the case study rounded to ~$280


def test_dev_cost_by_hand() -> None:
    report = cost.estimate(DEV, cost.Usage())
    lines = {line.component: line.monthly_usd for line in report.lines}
    assert lines["ECS Fargate"] == round((1 * 0.03238 + 2 * 0.00356) * 730, 2)
    assert lines["NAT gateway"] == round(730 * 0.045 + 10 * 0.045, 2)
    assert "VPC interface endpoints" not in lines  # dev uses NAT only
    assert lines["EFS storage (Standard)"] == 20 * 0.30  # the 20 GiB budget
    assert lines["KMS"] == 2.0  # the data key and the flow-log key
    assert report.total == pytest.approx(sum(lines.values()), abs=0.01)


def test_prod_pays_for_endpoints_in_every_zone_instead_of_nat() -> None:
    lines = {line.component: line.monthly_usd for line in cost.estimate(PROD, cost.Usage()).lines}
    assert lines["VPC interface endpoints"] == round(5 * 3 * 730 * 0.01 + 5 * 0.01, 2)
    assert "NAT gateway" not in lines


def test_cost_counts_alarms_and_metrics_from_the_code() -> None:
    assert cost.alarm_count(PROD) == 28  # 6 environment + 17 node alarms + 4 latency alarms + the composite
    # gateway per node and operation, per node, per environment; node, capacity, backup job; rotation steps, token
    # age, restarts
    assert cost.custom_metric_count() == 5 * (13 + 1 + 1) + 9 + 5 + 3 + 12 + 1 + 1
    three = replace(PROD, nodes=(NodeConfig("primary"), NodeConfig("search"), NodeConfig("archive")))
    assert cost.alarm_count(three) == 6 + 3 * (17 + 4) + 4  # a composite per node and the environment's
    assert cost.custom_metric_count(3) == 5 * (3 * 14 + 1) + 3 * (9 + 5 + 3) + 12 + 1 + 1


def test_cost_rejects_negative_usage_and_other_regions() -> None:
    with pytest.raises(UsageError, match="--nat-gb = -1"):
        cost.estimate(DEV, cost.Usage(nat_gb=-1))
    with pytest.raises(UsageError, match="is in eu-west-1; the price table is for us-east-1"):
        cost.estimate(replace(DEV, region="eu-west-1",
                              network=replace(DEV.network, availability_zones=("eu-west-1a", "eu-west-1b"))),
                      cost.Usage())


def test_what_if_prices_the_cheapest_task_that_holds_a_workload_on_the_environments_layout() -> None:
    prices = cost.load_prices()
    sized = cost.what_if(PROD, 5_000_000, 768, cost.Usage(), prices)
    needed = capacity.estimate(5_000_000, 768)
    assert sized.memory_mib >= needed.required_task_mib
    assert (sized.cpu, sized.memory_mib) == capacity.recommend(
        needed.required_task_mib, lambda c, m: cost.fargate_monthly(prices, "ARM64", c, m))
    lines = {line.component: line.monthly_usd for line in sized.report.lines}
    assert lines["ECS Fargate"] == round(cost.fargate_monthly(prices, "ARM64", sized.cpu, sized.memory_mib), 2)
    assert sized.data_gib == 2 * needed.disk_bytes / capacity.GIB  # the node's directory and its copy
    assert lines["EFS storage (Standard)"] == round(sized.data_gib * prices["efs"]["standard_gb_month"], 2)
    # The same layout otherwise: only the task and the data differ from the environment's own estimate.
    own = {line.component: line.monthly_usd for line in cost.estimate(PROD, cost.Usage(), prices).lines}
    assert {k for k in lines if lines[k] != own[k]} <= {"ECS Fargate", "EFS storage (Standard)",
                                                       "AWS Backup (EFS, warm)"}
    # Past the largest task: the fewest nodes that hold it, each priced (one Fargate and one EFS line per node).
    split = cost.what_if(PROD, 100_000_000, 768, cost.Usage(), prices)
    share = capacity.estimate(-(-100_000_000 // split.nodes), 768)
    assert split.nodes > 1 and split.memory_mib >= share.required_task_mib
    assert capacity.estimate(-(-100_000_000 // (split.nodes - 1)), 768).required_task_mib > 122880
    fargate = [line for line in split.report.lines if line.component.startswith("ECS Fargate, node ")]
    assert len(fargate) == split.nodes
    with pytest.raises(OpsError, match="need more than 8 nodes of the largest Fargate task"):
        cost.what_if(PROD, 2_000_000_000, 1536, cost.Usage(), prices)
