"""Instructions hidden in retrieved text are cut out before the model reads it.

The fence and the system prompt tell the model that passages are data, but a 0.5B CPU model
obeys a well-placed "reply X" anyway (issue 16 item 7). So the gateway does not rely on the
model: each sentence, line, table cell and link text of a passage is screened for the marks of
an instruction addressed to the model, and the instruction (from the clause where it starts to
the end of its sentence) is cut out. Facts around it stay. The marks are:

- an override: "ignore / disregard / forget ... previous instructions / the question / the
  context", in the languages listed in ``_OVERRIDE``;
- a control mark: a role line (``SYSTEM:``), a role in JSON, a fake end-of-data banner or a
  closing tag of a context wrapper, "new instructions";
- the model addressed (assistant, AI, LLM, "you are now ...") together with a demand on its
  output (reply, say, output, must answer ...);
- a demand on the form of the answer ("your whole answer must be", "every answer must end",
  "instead of the answer", "the single word", "reply CODEWORD").

Matching runs on a folded copy (NFKC, zero-width characters dropped) so that "Ig\u200bnore"
is caught; a passage with an instruction is given to the model in that folded form. Ordinary
documentation rarely addresses an AI or demands a reply form: the false positives are counted on
the Python-docs corpus by ``benchmarks/injection_screen.py`` (README, Security model).
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterator
from dataclasses import dataclass

_ZERO_WIDTH = dict.fromkeys(
    map(ord, "\u200b\u200c\u200d\u200e\u200f\u2060\u2061\u2062\ufeff\u00ad")
)

# A segment ends at a sentence end (Latin or CJK), a line break, a table pipe or a link/image
# bracket; an instruction is cut from the last clause boundary before its first mark.
_SEGMENT_END = re.compile(r"(?<=[.!?])\s+|(?<=[\u3002\uff01\uff1f])|\n|\||\]\(")
_CLAUSE_START = re.compile(r"[,;:\t\"'(\[\u3001\uff0c\uff1a]")

_OVERRIDE = re.compile(
    r"(?i)"
    # English: the verb, then what is to be ignored, with a determiner ("ignore the question")
    r"\b(ignore|disregard|forget|override|bypass)\b.{0,50}?"
    r"\b(all|any|the|your|these|those|previous|prior|above|earlier|preceding)\s+(\w+\s+){0,2}?"
    r"(instructions?|prompts?|rules|question|context|passages|guidelines|above)\b"
    # French, Spanish, Italian, Portuguese
    r"|\b(ignor(e|ez|er|a|ad|ate|ar|em)|oublie[zr]?|olvida\w*|dimentica\w*|esque[cç]a\w*)\b.{0,50}?"
    r"\b(consignes?|instructions|instrucciones|istruzioni|instruç\w+|r[eè]gles|reglas|regole"
    r"|regras|pregunta|domanda|pergunta|contexte|contexto|contesto)"
    # German, Dutch
    r"|\b(ignorier\w*|vergiss|negeer\w*|vergeet)\b.{0,50}?"
    r"(anweisung\w*|instruktion\w*|regeln|frage|kontext|instructies|regels|vraag)"
    # Russian, Ukrainian
    r"|(игнорир\w*|проигнорир\w*|забудь\w*|ігнору\w*).{0,50}?"
    r"(инструкц\w*|указани\w*|правил\w*|вопрос\w*|контекст\w*|інструкц\w*)"
    # Chinese, Japanese, Korean
    r"|(忽略|无视|忽视|忘记|忘掉|無視).{0,20}?(指令|指示|说明|規則|规则|提示|问题|上下文)"
    r"|(指令|指示|说明|规则|提示|命令|ルール|質問).{0,12}?(忽略|无视|無視|忘れ)"
    r"|(지시|명령|규칙|질문).{0,12}?(무시|잊)"
)

_CONTROL = re.compile(
    r"(?i)"
    r"^\W{0,6}(system|developer|assistant)\b\s*(override|message|prompt|note)?\s*:"
    r"|\bsystem\s+(override|prompt|message)\b"
    r"|\bnew\s+(instructions?|system\s+prompt)\b"
    r"|[\"']role[\"']\s*:\s*[\"'](system|assistant|developer|user)[\"']"
    r"|^\W*(={2,}|-{3,}|#{2,}|<{2,}|\*{3,}|\[/?)\s*end\s*(of\s+(passages?|context|documents?"
    r"|data|input))?\s*(={2,}|-{3,}|#{2,}|>{2,}|\*{3,}|\])?\s*$"
    r"|</\s*(context|passages?|system|instructions?)\s*>"
)

_ADDRESSEE = re.compile(
    r"(?i)"
    r"\b(assistants?|a\.?i\b\.?|chat\s?bots?|language\s+models?|llms?|gpts?)\b"
    r"|\byou\s+are\s+(now\b|(?-i:[A-Z]{2,})\b)"
    r"|(?-i:\b(KI|IA|ИИ)\b)|ассистент|помощник|助手|助理|アシスタント|어시스턴트"
)

_OUTPUT_VERB = re.compile(
    r"(?i)"
    r"\b(repl(y|ies|ied)|respond(s|ed)?|answer(s|ed)?|say(s)?|output(s)?|print(s)?"
    r"|write(s)?|begin|translate)\b"
    r"|\br[ée]pond\w*|\bantwort\w*|\brespond[ae]\w*|\brispond\w*|ответ\w*|回答|回复|答え|出力"
)

_CODEWORD = r"[\"'“]?(?-i:[A-Z]{4,})\b"
_FORM_DEMAND = re.compile(
    r"(?i)"
    r"\b((your|every|each|any)\s+(whole\s+|entire\s+|final\s+|next\s+)?|the\s+(whole|entire|final)\s+)"
    r"(answers?|responses?|replies|reply|output)\s+(must|should|shall|has\s+to|is\s+to)\b"
    r"|\b(begin|start|end|translate|prefix|finish)\s+(your|every|each)\s+"
    r"(answers?|responses?|reply|replies|output)\b"
    r"|\binstead\s+of\s+(the|your)\s+answer\b|\binstead\s+of\s+answering\b"
    r"|\bas\s+(the|your)\s+final\s+(answer|response|reply)\b"
    rf"|\b(repl(y|ies)|respond|answer|say|output)\s+(only\s+)?(with\s+)?(the\s+(single\s+)?word\s+)?"
    rf"{_CODEWORD}"
    r"|\b(repl(y|ies)|respond|answer|say)\s+(only|exactly)\b"
    r"|\b(say|output|reply|answer|respond\s+with)\b.{0,40}\bnothing\s+else\b"
    r"|\b(reply|respond|answer)\s+(only\s+)?with\s+(only\s+|just\s+)?([\"'“]|yes\b|no\b)"
)


@dataclass(frozen=True, slots=True)
class Screened:
    """Text with its instructions cut out, and how many were cut."""

    text: str
    removed: int


def fold(text: str) -> str:
    """The copy that is matched: compatibility forms unified, zero-width characters dropped."""
    return unicodedata.normalize("NFKC", text).translate(_ZERO_WIDTH)


def marks(segment: str) -> dict[str, int]:
    """Which marks of an instruction ``segment`` (folded text) carries, and where each starts."""
    found: dict[str, int] = {}
    for name, pattern in (("override", _OVERRIDE), ("control", _CONTROL), ("form", _FORM_DEMAND)):
        if match := pattern.search(segment):
            found[name] = match.start()
    addressee = _ADDRESSEE.search(segment)
    if addressee and _OUTPUT_VERB.search(segment, addressee.end()):
        found["addressed"] = addressee.start()
    return found


def instruction_start(segment: str) -> int | None:
    """Where an instruction to the model starts in ``segment`` (folded text), or None."""
    found = marks(segment)
    if not found:
        return None
    first = min(found.values())
    clause = [m.end() for m in _CLAUSE_START.finditer(segment, 0, first)]
    return clause[-1] if clause else 0


def segments(folded: str) -> Iterator[tuple[str, str]]:
    """``folded`` as (segment, the delimiter after it) pairs; joined again they are ``folded``."""
    position = 0
    for cut in _SEGMENT_END.finditer(folded):
        yield folded[position : cut.start()], cut.group()
        position = cut.end()
    yield folded[position:], ""


def screen(text: str) -> Screened:
    """``text`` without its instructions to the model. Nothing marks the cut: a marker was
    copied into answers by the small CPU model; ``removed`` counts the cuts instead."""
    pieces: list[str] = []
    removed = 0
    for segment, delimiter in segments(fold(text)):
        body = segment.rstrip()
        start = instruction_start(body)
        if start is None:
            pieces.append(segment)
        else:
            removed += 1
            pieces.append(segment[:start].rstrip() + segment[len(body) :])
        pieces.append(delimiter)
    if not removed:
        return Screened(text, 0)
    return Screened("".join(pieces), removed)
