"""The Python-docs question set: its schema, its answer-key matching, and the verifier that
checks it against the documentation (run here on the real set)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from benchmarks.python_docs import verify
from benchmarks.python_docs.corpus import DocsMissingError, docs_root
from benchmarks.python_docs.questions import key_matches, load_questions, parse_questions

pytestmark = pytest.mark.unit


def _root() -> Path:
    try:
        return docs_root()
    except DocsMissingError as exc:  # a machine set up without the docs: say how to fix it
        pytest.fail(str(exc))


def _line(**fields: object) -> str:
    base: dict[str, object] = {
        "id": "api-001",
        "question": "functools.lru_cache maxsize",
        "style": "api",
        "gold_pages": {"library/functools.html": 2},
        "answer_key": ["128"],
        "answerable": True,
    }
    return json.dumps(base | fields)


def test_the_shipped_question_set_passes_verification() -> None:
    problems, questions = verify.verify(root=_root())
    assert problems == []
    assert len(questions) >= 150
    assert sum(not q.answerable for q in questions) >= 15


def test_verifier_names_each_broken_question_once_per_problem(tmp_path: Path) -> None:
    shipped = load_questions()
    good = [q.model_dump_json() for q in shipped]
    broken = [
        _line(id="api-901", question="lru_cache page", gold_pages={"library/nope.html": 2}),
        _line(id="api-902", question="lru_cache typed", answer_key=["frobnicate the cache"]),
        _line(
            id="una-901",
            question="the lru_cache looks like this",
            style="unanswerable",
            answerable=False,
            gold_pages={},
            answer_key=[],
            absent=["lru_cache"],
        ),
        _line(id="api-902", question="a second question under the same id"),
        _line(id="api-903", question="answerable without gold", gold_pages={}),
    ]
    questions = tmp_path / "questions.jsonl"
    questions.write_text("\n".join(good + broken) + "\n", encoding="utf-8")
    problems, _ = verify.verify(questions, root=_root())
    assert any("api-901: gold page library/nope.html is not a corpus page" in p for p in problems)
    assert any("api-902: answer key 'frobnicate the cache'" in p for p in problems)
    assert any("una-901: absent identifier 'lru_cache' occurs in" in p for p in problems)
    assert any("duplicate id api-902" in p for p in problems)
    assert any("gold page of relevance 2" in p for p in problems)
    assert len(problems) == 5, problems


def test_verify_command_exits_non_zero_with_one_line_per_problem(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _root()
    questions = tmp_path / "q.jsonl"
    questions.write_text(_line(gold_pages={"library/missing.html": 2}) + "\n", encoding="utf-8")
    assert verify.main(["--questions", str(questions)]) == 1
    lines = capsys.readouterr().out.splitlines()
    assert any("gold page library/missing.html is not a corpus page" in line for line in lines)
    assert any("at least 150 are needed" in line for line in lines)


@pytest.mark.parametrize(
    ("fields", "reason"),
    [
        ({"gold_pages": {"library/functools.html": 1}}, "relevance 2"),
        ({"answer_key": []}, "needs an answer key"),
        ({"answerable": False}, "has no gold pages"),
        ({"style": "unanswerable"}, "needs answerable: false"),
        ({"id": "API 1"}, "pattern"),
        ({"style": "riddle"}, "Input should be"),
        ({"gold_pages": {"library/functools.html": 3}}, "Input should be"),
        ({"colour": "blue"}, "Extra inputs"),
    ],
)
def test_schema_refuses_inconsistent_records(fields: dict[str, object], reason: str) -> None:
    problems, questions = parse_questions([_line(**fields)], Path("q.jsonl"))
    assert questions == []
    assert len(problems) == 1
    assert reason in problems[0]


def test_unanswerable_record_needs_absent_identifiers_and_no_gold() -> None:
    record = _line(
        id="una-001",
        style="unanswerable",
        answerable=False,
        gold_pages={},
        answer_key=[],
    )
    problems, _ = parse_questions([record], Path("q.jsonl"))
    assert problems and "absent identifiers" in problems[0]
    ok = json.loads(record) | {"absent": ["math.clamp"]}
    problems, questions = parse_questions([json.dumps(ok)], Path("q.jsonl"))
    assert problems == [] and not questions[0].answerable


def test_answer_keys_match_literally_across_whitespace_and_case_or_as_regex() -> None:
    text = "The default\n  tolerance is 1E-09, which assures"
    assert key_matches("default tolerance", text)
    assert key_matches("1e-09", text)
    assert not key_matches("1e-9", text)
    assert key_matches(r"re:tolerance\s+is\s+1e-0\d", text)
    assert not key_matches("re:^tolerance", text)
