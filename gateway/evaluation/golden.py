"""The golden-set file: one JSON object a line, validated into typed records."""

from __future__ import annotations

import json
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from services.errors import InvalidRequestError


class GoldenQuestion(BaseModel):
    model_config = ConfigDict(extra="forbid")
    id: str
    question: str = Field(min_length=1)
    gold_doc_ids: list[str] = Field(default_factory=list)
    gold_sources: list[str] = Field(default_factory=list, description="File names (basenames).")
    answer_keys: list[str] = Field(default_factory=list, description="Phrases a right answer has.")
    type: str = "general"

    @property
    def answerable(self) -> bool:
        return self.type != "unanswerable"

    @model_validator(mode="after")
    def _gold_matches_type(self) -> GoldenQuestion:
        has_gold = bool(self.gold_doc_ids or self.gold_sources)
        if self.answerable and not has_gold:
            raise ValueError("an answerable question needs gold_doc_ids or gold_sources")
        if not self.answerable and has_gold:
            raise ValueError("an unanswerable question has no gold documents")
        return self


def load_golden(path: Path) -> list[GoldenQuestion]:
    questions: list[GoldenQuestion] = []
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except OSError as exc:
        raise InvalidRequestError(f"cannot read golden file {path}: {exc.strerror}") from exc
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            questions.append(GoldenQuestion.model_validate(json.loads(line)))
        except (json.JSONDecodeError, ValidationError) as exc:
            reason = exc.errors()[0]["msg"] if isinstance(exc, ValidationError) else exc.msg
            raise InvalidRequestError(f"{path}:{number}: {reason}") from exc
    if not questions:
        raise InvalidRequestError(f"{path} holds no questions")
    ids = [q.id for q in questions]
    if len(set(ids)) != len(ids):
        raise InvalidRequestError(f"{path}: question ids must be unique")
    return questions
