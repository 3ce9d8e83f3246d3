"""Check the question set against the documentation it is about.

    .venv/bin/python -m benchmarks.python_docs.verify [--questions FILE] [--fast-pages FILE]

Checks: the schema and unique ids; every gold page exists in the corpus; every answer-key entry
occurs in the tag-stripped text of at least one of the question's gold pages; an unanswerable
question's absent identifiers occur in no HTML page at all; the set's size and shape (at least
150 questions, 15 unanswerable, every style); the fast subset's gold pages lie inside the fast page
list. Prints one line per failure and exits 1, or one summary line and exits 0.
"""

from __future__ import annotations

import argparse
import sys
from collections import Counter
from pathlib import Path

from benchmarks.python_docs.corpus import (
    DocsMissingError,
    all_html_ids,
    docs_root,
    load_page,
    page_ids,
)
from benchmarks.python_docs.questions import (
    FAST_PAGES_FILE,
    QUESTIONS_FILE,
    STYLES,
    Question,
    key_matches,
    load_fast_pages,
    normalise,
    parse_questions,
)

MIN_QUESTIONS = 150
MIN_UNANSWERABLE = 15
FAST_QUESTIONS = (20, 90)
FAST_PAGES = (30, 70)


def check_shape(questions: list[Question]) -> list[str]:
    problems: list[str] = []
    if len(questions) < MIN_QUESTIONS:
        problems.append(f"only {len(questions)} questions; at least {MIN_QUESTIONS} are needed")
    unanswerable = sum(not q.answerable for q in questions)
    if unanswerable < MIN_UNANSWERABLE:
        problems.append(f"only {unanswerable} unanswerable questions; {MIN_UNANSWERABLE} needed")
    styles: Counter[str] = Counter(q.style for q in questions)
    problems += [f"no question of style {s!r}" for s in STYLES if not styles[s]]
    texts = Counter(normalise(q.question) for q in questions)
    problems += [f"question asked twice: {t!r}" for t, n in texts.items() if n > 1]
    return problems


def check_fast(questions: list[Question], fast_pages: list[str], corpus: set[str]) -> list[str]:
    problems: list[str] = []
    fast = [q for q in questions if q.fast]
    lo, hi = FAST_QUESTIONS
    if not lo <= len(fast) <= hi:
        problems.append(f"{len(fast)} fast questions; between {lo} and {hi} expected")
    lo, hi = FAST_PAGES
    if not lo <= len(fast_pages) <= hi:
        problems.append(f"{len(fast_pages)} fast pages; between {lo} and {hi} expected")
    dupes = [p for p, n in Counter(fast_pages).items() if n > 1]
    problems += [f"fast page listed twice: {p}" for p in dupes]
    problems += [f"fast page {p} is not a corpus page" for p in fast_pages if p not in corpus]
    listed = set(fast_pages)
    for q in fast:
        problems += [
            f"{q.id}: gold page {p} is not in the fast page list"
            for p in q.gold_pages
            if p not in listed
        ]
    if fast and all(q.answerable for q in fast):
        problems.append("the fast subset has no unanswerable question")
    return problems


def check_against_docs(questions: list[Question], root: Path) -> list[str]:
    problems: list[str] = []
    corpus = set(page_ids(root))
    for q in questions:
        missing = [p for p in q.gold_pages if p not in corpus]
        problems += [f"{q.id}: gold page {p} is not a corpus page" for p in missing]
        texts = [normalise(load_page(root, p).text) for p in q.gold_pages if p in corpus]
        for key in q.answer_key:
            if texts and not any(key_matches(key, t, prepared=True) for t in texts):
                problems.append(f"{q.id}: answer key {key!r} is in none of its gold pages")
    unanswerable = [q for q in questions if not q.answerable]
    if unanswerable:
        every_page = {p: normalise(load_page(root, p).text) for p in sorted(all_html_ids(root))}
        for q in unanswerable:
            for ident in q.absent:
                found = [p for p, t in every_page.items() if key_matches(ident, t, prepared=True)]
                if found:
                    problems.append(
                        f"{q.id}: absent identifier {ident!r} occurs in {found[0]}"
                        + (f" and {len(found) - 1} more pages" if len(found) > 1 else "")
                    )
    return problems


def verify(
    questions_file: Path = QUESTIONS_FILE,
    fast_pages_file: Path = FAST_PAGES_FILE,
    root: Path | None = None,
) -> tuple[list[str], list[Question]]:
    """Every problem found (empty when the set is sound), and the questions that parsed."""
    problems, questions = parse_questions(
        questions_file.read_text(encoding="utf-8").splitlines(), questions_file
    )
    root = root or docs_root()
    problems += check_shape(questions)
    problems += check_fast(questions, load_fast_pages(fast_pages_file), set(page_ids(root)))
    problems += check_against_docs(questions, root)
    return problems, questions


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--questions", type=Path, default=QUESTIONS_FILE)
    parser.add_argument("--fast-pages", type=Path, default=FAST_PAGES_FILE)
    args = parser.parse_args(argv)
    try:
        problems, questions = verify(args.questions, args.fast_pages)
    except DocsMissingError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    for line in problems:
        print(line)
    if problems:
        print(f"FAILED: {len(problems)} problems", file=sys.stderr)
        return 1
    styles: Counter[str] = Counter(q.style for q in questions)
    print(
        f"ok: {len(questions)} questions ({sum(q.fast for q in questions)} fast), "
        + ", ".join(f"{s} {styles[s]}" for s in STYLES)
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
