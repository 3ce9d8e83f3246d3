"""The question set file (``evals/python_docs/questions.jsonl``): typed records and loading.

One JSON object a line. Graded gold pages: 2 for the page that answers the question, 1 for a page
that helps. An answer key entry is a literal, matched case-insensitively on whitespace-collapsed
text, or a regular expression when it starts with ``re:``. Unanswerable questions ask about
features Python does not have; they carry no gold pages, and ``absent`` lists the identifiers that
must occur nowhere in the documentation (the verifier checks that).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

EVAL_DIR = Path(__file__).resolve().parents[2] / "evals" / "python_docs"
QUESTIONS_FILE = EVAL_DIR / "questions.jsonl"
FAST_PAGES_FILE = EVAL_DIR / "fast_pages.txt"

Style = Literal[
    "api", "howto", "paraphrase", "misspelled", "vague", "multipart", "table", "code",
    "unanswerable",
]  # fmt: skip
STYLES: tuple[str, ...] = Style.__args__  # type: ignore[attr-defined]
_SPACE = re.compile(r"\s+")


class Question(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    id: str = Field(pattern=r"^[a-z]+-\d{3}$")
    question: str = Field(min_length=3)
    style: Style
    gold_pages: dict[str, Literal[1, 2]] = Field(default_factory=dict)
    answer_key: list[str] = Field(default_factory=list)
    answerable: bool = True
    fast: bool = False
    absent: list[str] = Field(
        default_factory=list, description="Unanswerable only: identifiers the docs never mention."
    )
    note: str = ""

    @model_validator(mode="after")
    def _consistent(self) -> Question:
        if self.answerable:
            if not self.gold_pages or 2 not in self.gold_pages.values():
                raise ValueError("an answerable question needs a gold page of relevance 2")
            if not self.answer_key:
                raise ValueError("an answerable question needs an answer key")
            if self.absent:
                raise ValueError("only unanswerable questions list absent identifiers")
            if self.style == "unanswerable":
                raise ValueError("style 'unanswerable' needs answerable: false")
        else:
            if self.gold_pages:
                raise ValueError("an unanswerable question has no gold pages")
            if not self.absent:
                raise ValueError("an unanswerable question names its absent identifiers")
            if self.style != "unanswerable":
                raise ValueError("answerable: false needs style 'unanswerable'")
        for key in self.answer_key:
            if key.startswith("re:"):
                re.compile(key[3:])
        return self

    @property
    def relevant(self) -> set[str]:
        return set(self.gold_pages)


class QuestionFileError(ValueError):
    """The file cannot be read into questions; the message says where and why."""


def load_questions(path: Path = QUESTIONS_FILE) -> list[Question]:
    problems, questions = parse_questions(path.read_text(encoding="utf-8").splitlines(), path)
    if problems:
        raise QuestionFileError("; ".join(problems))
    return questions


def parse_questions(lines: Iterable[str], path: Path) -> tuple[list[str], list[Question]]:
    """Questions and a list of problems (bad JSON, schema errors, duplicate ids)."""
    problems: list[str] = []
    questions: list[Question] = []
    seen: set[str] = set()
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            q = Question.model_validate(json.loads(line))
        except json.JSONDecodeError as exc:
            problems.append(f"{path.name}:{number}: not JSON ({exc.msg})")
            continue
        except ValidationError as exc:
            err = exc.errors()[0]
            where = ".".join(str(p) for p in err["loc"]) or "record"
            problems.append(f"{path.name}:{number}: {where}: {err['msg']}")
            continue
        if q.id in seen:
            problems.append(f"{path.name}:{number}: duplicate id {q.id}")
        seen.add(q.id)
        questions.append(q)
    if not questions and not problems:
        problems.append(f"{path.name}: no questions")
    return problems, questions


def load_fast_pages(path: Path = FAST_PAGES_FILE) -> list[str]:
    lines = path.read_text(encoding="utf-8").splitlines()
    return [s for line in lines if (s := line.split("#", 1)[0].strip())]


def normalise(text: str) -> str:
    return _SPACE.sub(" ", text).strip().lower()


def key_matches(key: str, text: str, *, prepared: bool = False) -> bool:
    """One answer-key entry against a text (literal, case-insensitive; ``re:`` for a regex).

    ``prepared`` says the text has been through ``normalise`` already (saves time on pages).
    """
    if key.startswith("re:"):
        return re.search(key[3:], text, flags=re.IGNORECASE) is not None
    return normalise(key) in (text if prepared else normalise(text))


def keys_held(keys: Sequence[str], text: str) -> list[bool]:
    return [key_matches(k, text) for k in keys]
