"""Who changed the models, when, and what: a small SQLite table under ``$HOLDFAST_HOME/state``."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator
from contextlib import closing, contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

_SCHEMA = """
CREATE TABLE IF NOT EXISTS model_changes (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    at TEXT NOT NULL,
    actor TEXT NOT NULL,
    trigger TEXT NOT NULL,
    outcome TEXT NOT NULL,
    changes TEXT NOT NULL,
    detail TEXT NOT NULL,
    digest TEXT NOT NULL
)
"""


@dataclass(frozen=True, slots=True)
class ModelChange:
    at: datetime
    actor: str
    trigger: str  # api, sighup, watch, reindex, cli
    outcome: str  # swapped, rejected, unchanged, forced
    changes: dict[str, str]
    detail: str
    digest: str


class ModelAudit:
    """Append-only record of model swaps and rejected attempts."""

    def __init__(self, path: Path) -> None:
        self._path = path

    @contextmanager
    def _db(self) -> Iterator[sqlite3.Connection]:
        self._path.parent.mkdir(parents=True, exist_ok=True)
        with closing(sqlite3.connect(self._path, timeout=10)) as db, db:
            db.execute(_SCHEMA)
            yield db

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
        change = ModelChange(datetime.now(UTC), actor, trigger, outcome, changes, detail, digest)
        with self._db() as db:
            db.execute(
                "INSERT INTO model_changes (at, actor, trigger, outcome, changes, detail, digest)"
                " VALUES (?, ?, ?, ?, ?, ?, ?)",
                (
                    change.at.isoformat(),
                    actor,
                    trigger,
                    outcome,
                    json.dumps(changes, sort_keys=True),
                    detail,
                    digest,
                ),
            )
        return change

    def recent(self, limit: int = 50) -> list[ModelChange]:
        with self._db() as db:
            rows = db.execute(
                "SELECT at, actor, trigger, outcome, changes, detail, digest FROM model_changes"
                " ORDER BY id DESC LIMIT ?",
                (limit,),
            ).fetchall()
        return [
            ModelChange(
                datetime.fromisoformat(r[0]), r[1], r[2], r[3], json.loads(r[4]), r[5], r[6]
            )
            for r in rows
        ]
