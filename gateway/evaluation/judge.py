"""LLM-as-judge faithfulness: does the cited material support the answer? Reported as a judge's
opinion, with the judge model named, never as ground truth."""

from __future__ import annotations

from collections.abc import Sequence

from services.ports import ModelRouter
from services.records import ChatMessage

JUDGE_PROMPT = """Decide whether the answer is supported by the passages. Reply with one word: \
yes if every claim in the answer is stated in the passages, no otherwise.

Passages:
{passages}

Answer: {answer}
Supported:"""


def judge_faithful(router: ModelRouter, alias: str, answer: str, passages: Sequence[str]) -> bool:
    prompt = JUDGE_PROMPT.format(passages="\n\n".join(passages), answer=answer)
    verdict = router.complete(alias, [ChatMessage("user", prompt)], max_tokens=4).text
    return verdict.strip().lower().startswith("yes")
