"""Run a golden set against a running gateway over its public API, as an internal app would."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import PurePath
from typing import Any

import httpx

from gateway.evaluation.golden import GoldenQuestion
from gateway.evaluation.metrics import contains_keys, dedup_ranking, mean, retrieval_metrics
from services.errors import BackendUnavailableError, InvalidRequestError

MODES: dict[str, float | None] = {"bm25": 0.0, "vector": 1.0, "hybrid": None}
RERANK_MODE = "hybrid+rerank"  # hybrid candidates reordered by the gateway's rerank-default alias
ALL_MODES = (*MODES, RERANK_MODE)
RETRIEVAL_DEPTH = 10


class RerankerMissingError(InvalidRequestError):
    """The gateway has no reranker, so the hybrid+rerank mode cannot be measured."""


@dataclass(frozen=True, slots=True)
class QuestionResult:
    id: str
    type: str
    mode: str
    ranking: list[str]
    metrics: dict[str, float]


@dataclass(frozen=True, slots=True)
class AnswerResult:
    id: str
    type: str
    answer: str
    refused: bool
    retrieval_status: str
    correct_refusal: bool | None  # unanswerables only
    keys_matched: bool | None  # answerables only
    passages: tuple[str, ...] = ()
    faithful: bool | None = None  # set by the judge, when one runs
    cited: int = 0  # passages marked cited (an answer sentence attributed to them)
    sentences: int = 0  # answer sentences the gateway attributed
    unsupported: int = 0  # of them, supported by no passage (a number, name, setting in none)


@dataclass(slots=True)
class EvalRun:
    retrieval: list[QuestionResult] = field(default_factory=list)
    answers: list[AnswerResult] = field(default_factory=list)
    judge_model: str | None = None
    hybrid_alpha: float | None = None
    skipped_modes: dict[str, str] = field(default_factory=dict)  # mode -> why it was not run

    def summary(self) -> dict[str, Any]:
        by_mode: dict[str, dict[str, float]] = {}
        for mode in sorted({r.mode for r in self.retrieval}):
            rows = [r for r in self.retrieval if r.mode == mode]
            by_mode[mode] = {
                name: round(mean([r.metrics[name] for r in rows]), 4) for name in rows[0].metrics
            }
        unanswerable = [a for a in self.answers if a.correct_refusal is not None]
        answerable = [a for a in self.answers if a.keys_matched is not None]
        judged = [a for a in self.answers if a.faithful is not None]
        given = [a for a in self.answers if not a.refused]
        sentences = sum(a.sentences for a in given)
        return {
            "retrieval": by_mode,
            "skipped_modes": dict(self.skipped_modes),
            "answers": {
                "asked": len(self.answers),
                "refusal_accuracy": round(
                    mean([float(bool(a.correct_refusal)) for a in unanswerable]), 4
                )
                if unanswerable
                else None,
                "answer_key_match": round(
                    mean([float(bool(a.keys_matched)) for a in answerable]), 4
                )
                if answerable
                else None,
                "wrongly_refused": sum(1 for a in answerable if a.refused),
                "answers_given": len(given),
                "citing_share": round(mean([float(a.cited > 0) for a in given]), 4)
                if given
                else None,
                "unsupported_sentence_share": round(
                    sum(a.unsupported for a in given) / sentences, 4
                )
                if sentences
                else None,
                "faithfulness": round(mean([float(bool(a.faithful)) for a in judged]), 4)
                if judged
                else None,
                "judge_model": self.judge_model,
            },
        }


class GatewayClient:
    def __init__(self, url: str, key: str, timeout_s: float = 300.0) -> None:
        self._http = httpx.Client(
            base_url=url.rstrip("/"),
            headers={"Authorization": f"Bearer {key}"},
            timeout=timeout_s,
        )

    def _post(self, path: str, body: dict[str, Any], max_waits: int = 30) -> dict[str, Any]:
        for _ in range(max_waits):  # a polite client: wait out the key's rate limit
            try:
                response = self._http.post(path, json=body)
            except httpx.HTTPError as exc:
                raise BackendUnavailableError(
                    f"cannot reach the gateway ({type(exc).__name__}); is it up? (holdfast status)"
                ) from exc
            if response.status_code != 429:
                break
            time.sleep(float(response.headers.get("Retry-After", "1")))
        if response.status_code != 200:
            problem = response.json() if response.content else {}
            if problem.get("code") == "reranker_not_configured":
                raise RerankerMissingError(str(problem.get("detail")))
            raise InvalidRequestError(
                f"{path} answered {response.status_code}: {problem.get('detail', response.text)}"
            )
        result: dict[str, Any] = response.json()
        return result

    def search(
        self, query: str, top_k: int, alpha: float | None, *, rerank: bool = False
    ) -> list[dict[str, Any]]:
        body: dict[str, Any] = {"query": query, "top_k": top_k, "rerank": rerank}
        if alpha is not None:
            body["alpha"] = alpha
        results: list[dict[str, Any]] = self._post("/v1/search", body)["results"]
        return results

    def query(self, question: str) -> dict[str, Any]:
        return self._post("/v1/query", {"question": question})

    def close(self) -> None:
        self._http.close()


def _doc_key(question: GoldenQuestion, result: dict[str, Any]) -> str:
    """Match on doc ids when the golden set names them, else on file names."""
    if question.gold_doc_ids:
        return str(result["doc_id"])
    return PurePath(str(result["source"])).name


def evaluate_retrieval(
    client: GatewayClient,
    questions: Sequence[GoldenQuestion],
    modes: Sequence[str],
    *,
    hybrid_alpha: float | None = None,
    on_step: Callable[[], None] = lambda: None,
) -> list[QuestionResult]:
    results = []
    for question in questions:
        if not question.answerable:
            continue
        gold = set(question.gold_doc_ids or question.gold_sources)
        for mode in modes:
            alpha = hybrid_alpha if mode in ("hybrid", RERANK_MODE) else MODES[mode]
            hits = client.search(
                question.question, RETRIEVAL_DEPTH, alpha, rerank=mode == RERANK_MODE
            )
            ranking = dedup_ranking([_doc_key(question, h) for h in hits])
            results.append(
                QuestionResult(
                    question.id, question.type, mode, ranking, retrieval_metrics(ranking, gold)
                )
            )
            on_step()
    return results


def runnable_modes(
    client: GatewayClient, modes: Sequence[str], probe: str
) -> tuple[list[str], dict[str, str]]:
    """Drop hybrid+rerank, with the gateway's reason, when it has no reranker to measure."""
    if RERANK_MODE not in modes:
        return list(modes), {}
    try:
        client.search(probe, 1, None, rerank=True)
    except RerankerMissingError as exc:
        return [m for m in modes if m != RERANK_MODE], {RERANK_MODE: str(exc)}
    return list(modes), {}


def evaluate_answers(
    client: GatewayClient,
    questions: Sequence[GoldenQuestion],
    *,
    on_step: Callable[[], None] = lambda: None,
) -> list[AnswerResult]:
    results = []
    for question in questions:
        body = client.query(question.question)
        refused = bool(body["refused"]) or body["retrieval_status"] != "ok"
        results.append(
            AnswerResult(
                id=question.id,
                type=question.type,
                answer=str(body["answer"]),
                refused=refused,
                retrieval_status=str(body["retrieval_status"]),
                correct_refusal=refused if not question.answerable else None,
                keys_matched=contains_keys(body["answer"], question.answer_keys)
                if question.answerable
                else None,
                passages=tuple(str(c["quote"]) for c in body.get("citations", [])),
                cited=sum(bool(c.get("cited")) for c in body.get("citations", [])),
                sentences=len(body.get("attribution") or []),
                unsupported=len(body.get("unsupported_sentences") or []),
            )
        )
        on_step()
    return results
