"""Answer-level metrics through ``POST /v1/query``, one chat model after another on one stack.

Question by question, each chat model in turn: the harness points ``chat-default`` in the
stack's ``models.yaml`` at the model (its entry copied from the alias ``chat-<name>`` that
``ollama.extra_models`` adds, or from ``chat-default`` itself for the default model), asks
``POST /admin/reload``, and puts the question to ``/v1/query`` with a key that reads only the
product arm's group. Interleaving keeps the comparison fair when the machine's load changes
during the run, and a run cut short by its time budget has every model on the same questions.
The file is restored (and reloaded) at the end.

Per model: answer-key accuracy (an answer holds every key of ``questions.keys_held`` and is not a
refusal), refusal accuracy on unanswerable questions, false refusals of answerable ones, the share
of given answers citing at least one passage (``cited``: a sentence attributed to it, by its
``[n]`` marker or by content), the share of their sentences that no passage supports
(``unsupported_sentences``: a number, name or setting in no passage), and p50/p95 latency of the
whole request.

An arm named ``<model>+rerank`` is that model with the opt-in CPU reranker switched on
(``rerank-default`` added to ``models.yaml`` as ``RERANK_EXAMPLE`` shows it): the reranker's
effect on answers, measured on the same questions as the model without it.
"""

from __future__ import annotations

import random
import statistics
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import httpx
import yaml

from benchmarks.python_docs.questions import Question, keys_held
from gateway.models.config import RERANK_ALIAS, RERANK_EXAMPLE

CHAT_ALIAS = "chat-default"
RERANK_SUFFIX = "+rerank"


def packaged_model(arm: str) -> str:
    """The packaged chat model behind an arm name (``qwen2.5-coder-0.5b+rerank`` → its model)."""
    return arm.removesuffix(RERANK_SUFFIX)


def _rerank_entry() -> dict[str, Any]:
    """The opt-in reranker entry exactly as a new ``models.yaml`` carries it, uncommented."""
    lines = RERANK_EXAMPLE.splitlines()
    head = f"# - model_name: {RERANK_ALIAS}"
    start = next(i for i, line in enumerate(lines) if line.startswith(head))
    entry = yaml.safe_load("\n".join(line.removeprefix("# ") for line in lines[start:]))
    return dict(entry[0])


@dataclass
class AnswerRecord:
    id: str
    answerable: bool
    answer: str
    refused: bool
    refusal_reason: str | None
    cited: int
    keys_held: list[bool]
    latency_ms: float
    model: str | None
    error: str | None = None
    sentences: int = 0  # answer sentences the gateway attributed
    unsupported: int = 0  # of them, supported by no passage

    @property
    def correct(self) -> bool:
        return self.answerable and not self.refused and bool(self.keys_held) and all(self.keys_held)


@dataclass
class AnswerArm:
    model: str  # packaged model name, e.g. qwen2.5-coder-0.5b
    records: list[AnswerRecord] = field(default_factory=list)
    error: str | None = None

    def summary(self) -> dict[str, Any]:
        # an errored question (e.g. 504) stays in the denominators: not correct, not refused
        ok = [r for r in self.records if r.error is None]
        answerable = [r for r in self.records if r.answerable]
        unanswerable = [r for r in self.records if not r.answerable]
        given = [r for r in answerable if not r.refused and r.error is None]
        # every request's time, errors (a 504 after the chat timeout) included
        latencies = sorted(r.latency_ms for r in self.records)
        return {
            "questions": len(self.records),
            "errors": len(self.records) - len(ok),
            "answerable": len(answerable),
            "unanswerable": len(unanswerable),
            "keys_correct": sum(r.correct for r in answerable),
            "key_accuracy": _share(sum(r.correct for r in answerable), len(answerable)),
            "refused_unanswerable": sum(r.refused for r in unanswerable),
            "refusal_accuracy": _share(sum(r.refused for r in unanswerable), len(unanswerable)),
            "refused_answerable": sum(r.refused for r in answerable),
            "answers_given": len(given),
            "answers_citing": sum(r.cited > 0 for r in given),
            "citing_share": _share(sum(r.cited > 0 for r in given), len(given)),
            "answer_sentences": sum(r.sentences for r in given),
            "unsupported_sentences": sum(r.unsupported for r in given),
            "unsupported_share": _share(
                sum(r.unsupported for r in given), sum(r.sentences for r in given)
            ),
            "answers_with_unsupported": sum(r.unsupported > 0 for r in given),
            "latency_p50_ms": statistics.median(latencies) if latencies else None,
            "latency_p95_ms": _percentile(latencies, 0.95),
        }

    @classmethod
    def from_json(cls, body: dict[str, Any]) -> AnswerArm:
        records = [AnswerRecord(**r) for r in body.get("records", [])]
        return cls(str(body["model"]), records, body.get("error"))

    def as_json(self) -> dict[str, Any]:
        return {
            "model": self.model,
            "error": self.error,
            "summary": self.summary(),
            "records": [asdict(r) for r in self.records],
        }


def _share(n: int, total: int) -> float | None:
    return n / total if total else None


def _percentile(sorted_values: Sequence[float], q: float) -> float | None:
    """Nearest-rank percentile."""
    if not sorted_values:
        return None
    rank = max(1, min(len(sorted_values), round(q * len(sorted_values) + 0.5)))
    return sorted_values[rank - 1]


def sample_questions(
    run_questions: Sequence[Question],
    all_questions: Sequence[Question],
    *,
    answerable: int | None,
    extra_unanswerable: int,
    seed: int,
) -> list[Question]:
    """A seeded sample of ``answerable`` answerable questions of the run (all when None), every
    unanswerable question of the run, and ``extra_unanswerable`` more from the whole set (they
    are unanswerable anywhere in the docs, so in any subset of its pages too)."""
    rng = random.Random(seed)
    pool = [q for q in run_questions if q.answerable]
    chosen = pool if answerable is None or answerable >= len(pool) else rng.sample(pool, answerable)
    unans = [q for q in run_questions if not q.answerable]
    ids = {q.id for q in unans}
    others = [q for q in all_questions if not q.answerable and q.id not in ids]
    unans += rng.sample(others, min(extra_unanswerable, len(others)))
    return sorted([*chosen, *unans], key=lambda q: q.id)


def _entry_for(models: dict[str, Any], name: str) -> dict[str, Any]:
    wanted = f"ollama_chat/holdfast-{name}"
    for entry in models.get("model_list", []):
        if entry.get("litellm_params", {}).get("model") == wanted:
            return dict(entry["litellm_params"])
    raise RuntimeError(
        f"models.yaml has no entry serving {wanted}: start the stack with "
        f"HOLDFAST_OLLAMA__EXTRA_MODELS='[\"{name}\"]' (or make it the packaged_model)"
    )


class ChatSwitch:
    """Points chat-default at one model after another; restores the file at the end."""

    def __init__(self, url: str, admin_key: str, models_file: Path) -> None:
        self.url = url.rstrip("/")
        self.admin_key = admin_key
        self.models_file = models_file
        self.original = models_file.read_text(encoding="utf-8")
        self.current: str | None = None

    def use(self, name: str) -> None:
        if name == self.current:
            return
        models = yaml.safe_load(self.original)
        params = _entry_for(models, packaged_model(name))
        for entry in models["model_list"]:
            if entry["model_name"] == CHAT_ALIAS:
                entry["litellm_params"] = params
        models["model_list"] = [e for e in models["model_list"] if e["model_name"] != RERANK_ALIAS]
        if name.endswith(RERANK_SUFFIX):
            models["model_list"].append(_rerank_entry())
        self.models_file.write_text(yaml.safe_dump(models, sort_keys=False), encoding="utf-8")
        self._reload()
        self.current = name

    def restore(self) -> None:
        self.models_file.write_text(self.original, encoding="utf-8")
        self._reload()

    def _reload(self) -> None:
        response = httpx.post(
            f"{self.url}/admin/reload",
            headers={"Authorization": f"Bearer {self.admin_key}"},
            timeout=600.0,
        )
        if response.status_code != 200:
            raise RuntimeError(f"reload failed: HTTP {response.status_code} {response.text[:300]}")


@contextmanager
def reranker_on(url: str, admin_key: str, models_file: Path) -> Iterator[None]:
    """The opt-in CPU reranker in ``models.yaml`` for the retrieval ladder's ``product-rerank``
    arm, so that every rung comes from one stack and one run; the file is restored after."""
    switch = ChatSwitch(url, admin_key, models_file)
    models = yaml.safe_load(switch.original)
    if any(e["model_name"] == RERANK_ALIAS for e in models["model_list"]):
        yield  # the stack has a reranker of its own: measure that one
        return
    models["model_list"].append(_rerank_entry())
    models_file.write_text(yaml.safe_dump(models, sort_keys=False), encoding="utf-8")
    switch._reload()
    try:
        yield
    finally:
        switch.restore()


def ask(client: httpx.Client, url: str, key: str, q: Question) -> AnswerRecord:
    started = time.perf_counter()
    for _ in range(5):
        response = client.post(
            f"{url}/v1/query",
            json={"question": q.question},
            headers={"Authorization": f"Bearer {key}"},
        )
        if response.status_code != 429:
            break
        time.sleep(float(response.headers.get("Retry-After", "1")))
    latency = (time.perf_counter() - started) * 1000
    if response.status_code != 200:
        return AnswerRecord(
            q.id,
            q.answerable,
            "",
            False,
            None,
            0,
            [],
            latency,
            None,
            error=f"HTTP {response.status_code}",
        )
    body = response.json()
    answer = str(body.get("answer", ""))
    refused = bool(body.get("refused"))
    return AnswerRecord(
        id=q.id,
        answerable=q.answerable,
        answer=answer,
        refused=refused,
        refusal_reason=body.get("refusal_reason"),
        cited=sum(bool(c.get("cited")) for c in body.get("citations", [])),
        keys_held=keys_held(q.answer_key, answer) if q.answerable and not refused else [],
        latency_ms=latency,
        model=body.get("model"),
        sentences=len(body.get("attribution") or []),
        unsupported=len(body.get("unsupported_sentences") or []),
    )


def run_answers(
    *,
    url: str,
    admin_key: str,
    query_key: str,
    models_file: Path,
    chat_models: Sequence[str],
    questions: Sequence[Question],
    progress: Callable[[str, int, int], None],
    timeout_s: float = 600.0,
    budget_s: float | None = None,
    seed: int = 15,
) -> dict[str, AnswerArm]:
    """Question by question (in a seeded shuffle), every model answers before the next question:
    a run cut short by ``budget_s`` still compares every model on the same questions."""
    switch = ChatSwitch(url, admin_key, models_file)
    arms = {name: AnswerArm(name) for name in chat_models}
    order = list(questions)
    random.Random(seed).shuffle(order)
    deadline = None if budget_s is None else time.monotonic() + budget_s
    try:
        with httpx.Client(timeout=timeout_s) as client:
            for n, q in enumerate(order, start=1):
                if deadline is not None and time.monotonic() > deadline:
                    break
                for name, arm in arms.items():
                    if arm.error:
                        continue
                    try:
                        switch.use(name)
                    except (RuntimeError, httpx.HTTPError) as exc:
                        arm.error = str(exc)[:300]
                        continue
                    try:
                        arm.records.append(ask(client, url.rstrip("/"), query_key, q))
                    except httpx.HTTPError as exc:
                        arm.records.append(
                            AnswerRecord(
                                q.id, q.answerable, "", False, None, 0, [], timeout_s * 1000,
                                None, error=type(exc).__name__,
                            )
                        )  # fmt: skip
                progress("answers (every model)", n, len(order))
    finally:
        switch.restore()
    return arms
