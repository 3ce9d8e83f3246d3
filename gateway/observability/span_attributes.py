"""Span attribute helpers: only numbers, ids and fixed vocabularies ever reach a span.

Kept apart from ``tracing`` (which instruments the FastAPI app) so the query policy can label its
spans without depending on the HTTP framework.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence

from opentelemetry.trace import Span

_ENTITY = re.compile(r"^[A-Z_]{1,40}$")


def set_counts(span: Span, prefix: str, counts: Mapping[str, int]) -> None:
    """``prefix.ENTITY = n`` for entity types that look like entity types."""
    for entity, n in counts.items():
        if _ENTITY.match(entity):
            span.set_attribute(f"{prefix}.{entity}", int(n))


def set_ids(span: Span, name: str, ids: Sequence[str]) -> None:
    span.set_attribute(name, [str(i) for i in ids][:50])


def set_scores(span: Span, name: str, scores: Sequence[float]) -> None:
    span.set_attribute(name, [round(float(s), 4) for s in scores][:50])
