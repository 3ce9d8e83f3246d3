"""The benchmark's reading of the gateway's stage histograms (pure parsing and arithmetic)."""

from __future__ import annotations

import pytest
from prometheus_client import CollectorRegistry, Histogram, generate_latest

from benchmarks.stage_metrics import quantile, stage_breakdown

pytestmark = pytest.mark.unit


def _scrape(registry: CollectorRegistry) -> str:
    return generate_latest(registry).decode()


def test_breakdown_counts_only_what_happened_between_scrapes() -> None:
    registry = CollectorRegistry()
    stages = Histogram(
        "holdfast_query_stage_duration_seconds",
        "stage time",
        ["stage"],
        buckets=(0.01, 0.1, 1.0, 10.0),
        registry=registry,
    )
    stages.labels("generate").observe(5.0)  # before the measured window
    before = _scrape(registry)
    for _ in range(9):
        stages.labels("retrieve").observe(0.05)
    stages.labels("retrieve").observe(0.5)
    stages.labels("generate").observe(2.0)
    after = _scrape(registry)

    breakdown = stage_breakdown(before, after)

    assert breakdown["retrieve"]["count"] == 10
    assert breakdown["retrieve"]["mean_ms"] == pytest.approx(95.0)
    assert 10.0 < breakdown["retrieve"]["p50_ms"] <= 100.0
    assert 100.0 < breakdown["retrieve"]["p99_ms"] <= 1000.0
    assert breakdown["generate"]["count"] == 1
    assert breakdown["generate"]["mean_ms"] == pytest.approx(2000.0)


def test_quantile_interpolates_inside_the_bucket_and_caps_infinity() -> None:
    buckets = [(1.0, 0.0), (2.0, 10.0), (float("inf"), 10.0)]
    assert quantile(0.5, buckets) == pytest.approx(1.5)
    assert quantile(0.5, [(1.0, 0.0), (float("inf"), 4.0)]) == 1.0
    assert quantile(0.5, []) == 0.0
