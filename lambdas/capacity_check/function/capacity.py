"""Capacity arithmetic: how full the file system is against its budget, how fast it grows, when it fills up, and
how the data compares with the task's memory (Chroma's HNSW index must fit in RAM). Plain functions, no AWS."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime

GIB = 1 << 30
MIB = 1 << 20
SECONDS_PER_DAY = 86_400.0
# Fewer points, or a shorter span, than this cannot tell growth from noise.
MIN_HISTORY_POINTS = 3
MIN_HISTORY_SPAN_DAYS = 1.0
# A burst (say 60 GiB in six hours after two flat weeks) hardly moves a 14-day line; the last day's own line sees it.
# Days until full is the nearer of the two projections.
SHORT_WINDOW_DAYS = 1.0
MIN_SHORT_WINDOW_SPAN_DAYS = 6 / 24


@dataclass(frozen=True)
class CapacityReport:
    used_bytes: int
    used_percent: float | None = None
    growth_bytes_per_day: float | None = None  # the faster of the 14-day and the last day's growth
    days_until_full: float | None = None
    data_to_memory_percent: float | None = None
    problems: list[str] = field(default_factory=list)


def growth_per_day(history: Sequence[tuple[datetime, float]],
                   min_span_days: float = MIN_HISTORY_SPAN_DAYS) -> float | None:
    """Least-squares slope of size over time, in bytes per day; None without enough history."""
    if len(history) < MIN_HISTORY_POINTS:
        return None
    start = min(t for t, _ in history)
    xs = [(t - start).total_seconds() / SECONDS_PER_DAY for t, _ in history]
    if max(xs) < min_span_days:
        return None
    ys = [v for _, v in history]
    mean_x, mean_y = sum(xs) / len(xs), sum(ys) / len(ys)
    spread = sum((x - mean_x) ** 2 for x in xs)
    return sum((x - mean_x) * (y - mean_y) for x, y in zip(xs, ys, strict=True)) / spread


def recent_growth_per_day(history: Sequence[tuple[datetime, float]]) -> float | None:
    """The slope over the last SHORT_WINDOW_DAYS of history only."""
    if not history:
        return None
    latest = max(t for t, _ in history)
    window = [(t, v) for t, v in history if (latest - t).total_seconds() <= SHORT_WINDOW_DAYS * SECONDS_PER_DAY]
    return growth_per_day(window, MIN_SHORT_WINDOW_SPAN_DAYS)


def assess(used_bytes: int, history: Sequence[tuple[datetime, float]], budget_gib: float,
           task_memory_mib: float) -> CapacityReport:
    problems: list[str] = []
    used_percent = days_until_full = data_to_memory = None
    # The faster of the long and the recent growth: it gives the nearer (the one to act on) date when full.
    rates = [rate for rate in (growth_per_day(history), recent_growth_per_day(history)) if rate is not None]
    growth = max(rates) if rates else None
    if growth is None:
        problems.append(f"not enough StorageBytes history for a growth rate (have {len(history)} points; need "
                        f"{MIN_HISTORY_POINTS} over at least {MIN_HISTORY_SPAN_DAYS:g} day)")
    if budget_gib > 0:
        budget = budget_gib * GIB
        used_percent = 100.0 * used_bytes / budget
        if used_bytes >= budget:
            days_until_full = 0.0
        elif growth is not None and growth > 0:
            days_until_full = (budget - used_bytes) / growth
    else:
        problems.append(f"capacity budget is {budget_gib:g} GiB; percent used and days until full need a budget > 0")
    if task_memory_mib > 0:
        data_to_memory = 100.0 * used_bytes / (task_memory_mib * MIB)
    else:
        problems.append(f"task memory is {task_memory_mib:g} MiB; cannot compare the data with it")
    return CapacityReport(used_bytes=used_bytes, used_percent=used_percent, growth_bytes_per_day=growth,
                          days_until_full=days_until_full, data_to_memory_percent=data_to_memory, problems=problems)
