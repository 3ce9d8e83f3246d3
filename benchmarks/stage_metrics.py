"""Per-stage latency from the gateway's Prometheus histograms, the way a dashboard would read it.

The gateway only exports bucket counts, so percentiles are interpolated inside the bucket that
holds them (as PromQL's ``histogram_quantile`` does); the mean is exact (sum / count).
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from prometheus_client.parser import text_string_to_metric_families

STAGE_METRIC = "holdfast_query_stage_duration_seconds"


def bucket_counts(metrics_text: str, metric: str = STAGE_METRIC) -> dict[str, dict[str, Any]]:
    """``{stage: {"buckets": [(upper_bound_s, cumulative_count)], "sum": s, "count": n}}``."""
    stages: dict[str, dict[str, Any]] = defaultdict(lambda: {"buckets": [], "sum": 0.0, "count": 0})
    for family in text_string_to_metric_families(metrics_text):
        if family.name != metric:
            continue
        for sample in family.samples:
            stage = sample.labels.get("stage", "")
            if sample.name.endswith("_bucket"):
                stages[stage]["buckets"].append((float(sample.labels["le"]), sample.value))
            elif sample.name.endswith("_sum"):
                stages[stage]["sum"] = sample.value
            elif sample.name.endswith("_count"):
                stages[stage]["count"] = int(sample.value)
    for data in stages.values():
        data["buckets"].sort()
    return dict(stages)


def quantile(q: float, buckets: list[tuple[float, float]]) -> float:
    """Linear interpolation inside the bucket holding rank q; the last finite bound caps +Inf."""
    if not buckets or buckets[-1][1] == 0:
        return 0.0
    rank = q * buckets[-1][1]
    lower_bound, lower_count = 0.0, 0.0
    for bound, count in buckets:
        if count >= rank:
            if bound == float("inf"):
                return lower_bound
            width = count - lower_count
            share = (rank - lower_count) / width if width else 0.0
            return lower_bound + (bound - lower_bound) * share
        lower_bound, lower_count = bound, count
    return lower_bound


def stage_breakdown(before: str, after: str) -> dict[str, dict[str, float]]:
    """Per stage, what happened between two scrapes: count, mean and p50/p95/p99 in ms."""
    old, new = bucket_counts(before), bucket_counts(after)
    out: dict[str, dict[str, float]] = {}
    for stage, data in sorted(new.items()):
        prev = old.get(stage, {"buckets": [], "sum": 0.0, "count": 0})
        prev_counts = dict(prev["buckets"])
        buckets = [(b, c - prev_counts.get(b, 0.0)) for b, c in data["buckets"]]
        count = data["count"] - prev["count"]
        if count <= 0:
            continue
        out[stage] = {
            "count": count,
            "mean_ms": round((data["sum"] - prev["sum"]) / count * 1000, 2),
            **{f"p{int(q * 100)}_ms": round(quantile(q, buckets) * 1000, 2) for q in QUANTILES},
        }
    return out


QUANTILES = (0.50, 0.95, 0.99)
