"""Who changed the models, when, and what: admin actions in the unified audit log.

``ModelAudit.record(actor=, trigger=, outcome=, changes=, detail=, digest=)`` is what the reload
code (and ``holdfast reindex``) call; each call becomes one admin record (``endpoint`` is
``model-config``, ``action`` is ``model.<outcome>`` or ``reindex.<outcome>``), so the audit log
is the single place a security officer reads.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from gateway.audit.records import AuditFilter, AuditRecord, Decision
from gateway.audit.store import AuditLog, SqliteAuditLog

ENDPOINT = "model-config"
AUDIT_DB_NAME = "audit.db"


@dataclass(frozen=True, slots=True)
class ModelChange:
    at: datetime
    actor: str
    trigger: str  # api, sighup, watch, reindex, cli
    outcome: str  # swapped, rejected, unchanged, forced
    changes: dict[str, str]
    detail: str
    digest: str


def _decision(outcome: str) -> Decision:
    return "refused" if outcome == "rejected" else "answered"


class ModelAudit:
    """Append-only record of model swaps, rejected attempts and forced reindexes.

    Give it the audit log to write to. A ``Path`` (the old form: a file in the state directory)
    means the SQLite audit log beside that file."""

    def __init__(self, target: Path | AuditLog) -> None:
        self.log: AuditLog = (
            SqliteAuditLog(target.parent / AUDIT_DB_NAME) if isinstance(target, Path) else target
        )

    def record(
        self,
        *,
        actor: str,
        trigger: str,
        outcome: str,
        changes: dict[str, str],
        detail: str = "",
        digest: str = "",
    ) -> ModelChange:
        family = "reindex" if trigger == "reindex" else "model"
        facts = {f"change.{alias}": what for alias, what in changes.items()}
        if detail:
            facts["detail"] = detail
        if digest:
            facts["digest"] = digest
        written = self.log.append(
            AuditRecord(
                kind="admin",
                principal=actor,
                endpoint=ENDPOINT,
                decision=_decision(outcome),
                action=f"{family}.{outcome}",
                reason=trigger,
                detail=facts,
            )
        )
        return _change(written)

    def recent(self, limit: int = 50) -> list[ModelChange]:
        page = self.log.query(AuditFilter(limit=limit, kind="admin", endpoint=ENDPOINT))
        return [_change(r) for r in page.records]


def _change(r: AuditRecord) -> ModelChange:
    changes = {k[len("change.") :]: v for k, v in r.detail.items() if k.startswith("change.")}
    return ModelChange(
        at=r.at,
        actor=r.principal,
        trigger=r.reason,
        outcome=r.action.split(".", 1)[1],
        changes=changes,
        detail=r.detail.get("detail", ""),
        digest=r.detail.get("digest", ""),
    )
