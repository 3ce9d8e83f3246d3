"""Which passages each answer sentence rests on, and which sentences rest on none.

    clean the answer (navigation runs, HTML tags, pilcrows) -> split it into sentences
    -> attribute each sentence: its ``[n]`` markers when the model wrote valid ones, else the
       passage sharing most of its content words, else (when an embedder is given) the passage
       most similar to it -> check its key tokens: every number, name, identifier and setting in
       it must appear in some passage the model was given.

A sentence is *unsupported* when a key token appears in no passage (the default value a model
knew from pretraining, a version it guessed) or when no passage could be attributed to it. The
policy (``generation.unsupported_policy``) decides whether such an answer is flagged or refused.

Sentences are split by a regular expression rather than spaCy's sentencizer: spaCy cuts
``... changed. [2] Next`` inside the marker and takes seconds to load, and an answer is a few
sentences of the model's own prose.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any, Literal

from gateway.query.records import Citation, UnsupportedPolicy
from services.errors import HoldfastError
from services.ports import Embedder
from services.records import SearchHit

AttributedBy = Literal["marker", "overlap", "similarity", "neighbour", "none"]

MIN_OVERLAP = 0.5  # share of a sentence's content words one passage must hold to be its source
MIN_SIMILARITY = 0.35  # cosine of sentence and passage vectors, when overlap decided nothing
SIMILARITY_CANDIDATES = 3  # passages embedded for one sentence: those sharing most of its words

# --- navigation and markup ------------------------------------------------------------------

_NAV_WORD = (
    r"(?:prev(?:ious)?(?:\s+(?:page|topic|chapter))?|next(?:\s+(?:page|topic|chapter))?|up|home"
    r"|index|modules|contents|table\s+of\s+contents|top|back|navigation|show\s+source"
    r"|[«»←→↑])"
)
# two or more navigation words separated by pipes (or guillemets), pipes around them optional
_NAV_RUN = re.compile(
    rf"(?i)(?:\|[ \t]*)?(?:\[?{_NAV_WORD}\]?[ \t]*(?:\||[«»])[ \t]*)+\[?{_NAV_WORD}\]?(?:[ \t]*\|)?"
)
_HTML_TAG = re.compile(
    r"(?i)</?(?:a|abbr|b|blockquote|body|br|code|dd|div|dl|dt|em|footer|h[1-6]|head|header|hr"
    r"|html|i|img|kbd|li|link|meta|nav|ol|p|passage|pre|script|section|small|span|strong|style|sub|sup"
    r"|table|tbody|td|tfoot|th|thead|tr|tt|u|ul|var)\b[^<>]*/?>"
)
_HTML_COMMENT = re.compile(r"<!--.*?-->", re.DOTALL)
_CUT_FENCE = re.compile(r"(?im)<\s*/?\s*passage\b[^>\n]*$")  # an echo cut off by max_tokens
# a breadcrumb trail: "Python » 3.12 Documentation » The Python Standard Library »"
_BREADCRUMB = re.compile(r"(?m)^[^\n»]*(?:»[^\n»]*){2,}$")
_EMPTY_TABLE_ROW = re.compile(r"(?m)^[ \t]*\|(?:[ \t]*\|)+[ \t]*$")


def clean_answer(text: str) -> str:
    """The answer without navigation runs (``| Prev | Up | Next |``), HTML tags or comments
    (and echoes of the prompt's own ``<passage id=...>`` fence, which small models copy),
    Sphinx pilcrows and the empty table rows they leave; redaction placeholders such as
    ``<EMAIL_ADDRESS>`` are not tags and stay."""
    text = _HTML_COMMENT.sub("", text)
    text = _CUT_FENCE.sub("", _HTML_TAG.sub("", text))
    text = _NAV_RUN.sub(" ", text).replace("¶", "")
    text = _EMPTY_TABLE_ROW.sub("", _BREADCRUMB.sub("", text))
    text = re.sub(r"[ \t]+\n", "\n", re.sub(r"[ \t]{2,}", " ", text))
    return re.sub(r"\n{3,}", "\n\n", text).strip()


class StreamCleaner:
    """``clean_answer`` over a token stream: a line that may hold navigation or markup (a pipe,
    an angle bracket, a pilcrow) is held until it ends; other text passes at once."""

    _SUSPECT = re.compile(r"[|<¶«»]")

    def __init__(self) -> None:
        self._line = ""

    def feed(self, piece: str) -> str:
        self._line += piece
        out = []
        while "\n" in self._line:
            line, self._line = self._line.split("\n", 1)
            out.append(self._clean_line(line) + "\n")
        if self._line and not self._SUSPECT.search(self._line):
            out.append(self._line)
            self._line = ""
        return "".join(out)

    def flush(self) -> str:
        rest, self._line = self._line, ""
        return self._clean_line(rest) if rest else ""

    def _clean_line(self, line: str) -> str:
        if not self._SUSPECT.search(line):
            return line
        cleaned = _CUT_FENCE.sub("", _HTML_COMMENT.sub("", _HTML_TAG.sub("", line)))
        cleaned = _NAV_RUN.sub(" ", cleaned).replace("¶", "")
        return _EMPTY_TABLE_ROW.sub("", _BREADCRUMB.sub("", cleaned)).rstrip()


# --- sentences --------------------------------------------------------------------------------

_MARKER = re.compile(r"\[(\d{1,2})\]")
_FENCED_CODE = re.compile(r"```.*?(?:```|$)", re.DOTALL)
_ABBREVIATION = re.compile(
    r"(?i)(?:\b(?:e\.g|i\.e|etc|vs|cf|approx|incl|no|fig|mr|mrs|dr)\.|\b\w\.)$"
)
# a sentence ends at . ! ? (then any [n] markers and closing quotes/brackets) before whitespace
_END = re.compile(r"[.!?](?:\s*\[\d{1,2}\])*[\"')\]]*(?=\s)")


def split_sentences(text: str) -> list[str]:
    """Sentences of an answer: a fenced code block is one unit, list items and lines are their
    own units, and prose splits after ``.``/``!``/``?`` (markers that follow stay with the
    sentence they close; ``e.g.``, decimals and dotted names do not end a sentence)."""
    units: list[str] = []
    last = 0
    for block in _FENCED_CODE.finditer(text):
        units += _split_prose(text[last : block.start()])
        units.append(block.group(0).strip())
        last = block.end()
    units += _split_prose(text[last:])
    return [u for u in units if u]


def _split_prose(text: str) -> list[str]:
    sentences: list[str] = []
    for line in text.splitlines():
        line = line.strip()
        start = 0
        for end in _END.finditer(line):
            head = line[start : end.start() + 1]
            if _ABBREVIATION.search(head):
                continue
            sentences.append(line[start : end.end()].strip())
            start = end.end()
        sentences.append(line[start:].strip())
    # a piece that is only markers (``[2]`` after the full stop) belongs to the sentence before
    merged: list[str] = []
    for s in sentences:
        if s and merged and not _MARKER.sub("", s).strip(" .,;"):
            merged[-1] = f"{merged[-1]} {s}"
        elif s:
            merged.append(s)
    return merged


# --- key tokens: what a passage must state for the sentence to stand --------------------------

_PLACEHOLDER = re.compile(r"<[A-Z][A-Z_]+>")
_NUMBER = re.compile(r"(?<![\w.])[-+]?\d+(?:[.,:]\d+)*(?![\w])|(?<![\w.])\d+(?=[a-zA-Z%])")
_WORD = re.compile(r"[A-Za-z_][\w-]*(?:\.[A-Za-z_][\w-]*)*(?:\(\))?")
_BACKTICK = re.compile(r"`([^`\n]+)`")


def _words(text: str) -> list[str]:
    return text.split()


_STOP_NAMES = frozenset(
    _words(
        "i a an the this that these those it its in on at to of for and or but if when while "
        "yes no note however also see you your we our they their there here"
    )
)
_NUMBER_WORDS = {
    w: str(n)
    for n, w in enumerate(
        _words("zero one two three four five six seven eight nine ten eleven twelve")
    )
}
_STOPWORDS = frozenset(
    _words(
        """a an the and or but if then than so of in on at to for from by with without as is are
    was were be been being it its this that these those which who whom what when where why how
    can could may might must shall should will would do does did not no yes you your we our they
    their there here also only just any all each every some such other more most less very into
    onto over under about between through during before after above below up down out use used
    using uses returns return value values passage passages answer according see"""
    )
)


def _norm_number(token: str) -> str:
    token = token.lstrip("+")
    if re.fullmatch(r"\d{1,3}(?:,\d{3})+", token):
        token = token.replace(",", "")
    token = token.rstrip(".,:")
    hour, colon, rest = token.partition(":")
    return (hour.lstrip("0") or "0") + colon + rest if hour.isdigit() and colon else token


def _is_identifier(word: str) -> bool:
    core = word.removesuffix("()")
    return (
        word.endswith("()")
        or "_" in core
        or "." in core
        or (core[:1].islower() and any(c.isupper() for c in core[1:]))  # camelCase
        or (core[:1].isupper() and any(c.isupper() for c in core[1:]) and core.isalpha())
    )


def key_tokens(sentence: str) -> list[str]:
    """Numbers, names (capitalised words past the sentence's start), identifiers (dotted,
    snake_case, camelCase, ``call()``, ``--flag``), backticked code and both sides of a
    ``key=value``: the things a model invents when it answers from memory. In a fenced code
    block only the attributes of dotted names count (``dumps`` of ``json.dumps``): an example's
    own variables and literal values are illustration, the API it calls is a claim."""
    text = _PLACEHOLDER.sub(" ", _MARKER.sub(" ", sentence))
    if text.lstrip().startswith("```"):
        body = text.strip().strip("`").partition("\n")[2]
        dotted = re.findall(r"\b[A-Za-z_]\w*(?:\.[A-Za-z_]\w*)+", body)
        return list(dict.fromkeys(d.rsplit(".", 1)[1] for d in dotted))
    found: list[str] = []
    for m in _BACKTICK.finditer(text):
        found += [w.removesuffix("()") for w in _WORD.findall(m.group(1))]
        found += [_norm_number(n) for n in _NUMBER.findall(m.group(1))]
    text = _BACKTICK.sub(" ", text)
    found += [_norm_number(n) for n in _NUMBER.findall(text)]
    found += [f.lstrip("-") for f in re.findall(r"(?<!\w)--?[A-Za-z][\w-]+", text)]
    words = list(re.finditer(_WORD, text))
    for i, m in enumerate(words):
        word = m.group(0).rstrip(".")
        before = text[: m.start()].rstrip()
        at_start = i == 0 or before.endswith((":", "-", "*", "•"))
        setting = before.endswith("=") or text[m.end() :].lstrip().startswith("=")
        if _is_identifier(word) or setting:
            found.append(word.removesuffix("()"))
        elif word[:1].isupper() and not at_start and word.lower() not in _STOP_NAMES:
            found.append(word)
    return list(dict.fromkeys(t for t in found if t and t not in {"-", "."}))


class PassageIndex:
    """The vocabulary of the passages the model was given (titles and sections included):
    lower-cased words, dotted names and their parts, normalised numbers (number words too)."""

    def __init__(self, context: Sequence[SearchHit]) -> None:
        self.texts = [
            f"{h.chunk.title}\n{h.chunk.section}\n{h.chunk.text}".replace("¶", "") for h in context
        ]
        self.vocab: list[set[str]] = [self._vocabulary(t) for t in self.texts]
        self.content: list[set[str]] = [_content_words(t) for t in self.texts]
        self.all: set[str] = set().union(*self.vocab) if self.vocab else set()

    @staticmethod
    def _vocabulary(text: str) -> set[str]:
        vocab = {_norm_number(n) for n in _NUMBER.findall(text)}
        for n in list(vocab):  # "3.12" also states 3 and 12; "8:00" also 8
            vocab.update(p for p in re.split(r"[.,:]", n) if p)
        for word in _WORD.findall(text):
            word = word.lower().removesuffix("()").rstrip(".")
            vocab.add(word)
            vocab.update(p for p in re.split(r"[.]", word) if p)
            vocab.update(p for p in word.split("-") if p)
        vocab.update(_NUMBER_WORDS[w] for w in vocab & _NUMBER_WORDS.keys())
        return vocab

    def holds(self, token: str) -> bool:
        t = token.lower().removesuffix("()").rstrip(".")
        if t in self.all:
            return True
        parts = [p for p in re.split(r"[.]", t) if p]
        if len(parts) > 1 and all(p in self.all for p in parts):
            return True  # json.dumps when the passage names the json module and dumps()
        if re.fullmatch(r"[-+]?\d+(?:\.0+)", t):
            return t.split(".")[0] in self.all  # 30.0 stated as 30
        return t.endswith("s") and t[:-1] in self.all  # a plural of a named thing


def _stem(word: str) -> str:
    for suffix in ("ing", "ed", "es", "s"):
        if len(word) > len(suffix) + 3 and word.endswith(suffix):
            return word[: -len(suffix)]
    return word


def _content_words(text: str) -> set[str]:
    words = re.findall(r"[a-z0-9_]+", text.lower())
    return {_stem(w) for w in words if len(w) > 2 and w not in _STOPWORDS}


# --- attribution ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class SentenceAttribution:
    text: str
    passages: tuple[int, ...]  # 1-based numbers of the passages the sentence rests on
    by: AttributedBy
    missing: tuple[str, ...] = ()  # key tokens that appear in no passage

    @property
    def supported(self) -> bool:
        return bool(self.passages) and not self.missing


@dataclass(frozen=True, slots=True)
class Attribution:
    sentences: tuple[SentenceAttribution, ...] = ()

    @property
    def cited(self) -> set[int]:
        return {n for s in self.sentences for n in s.passages}

    @property
    def unsupported(self) -> list[str]:
        return [s.text for s in self.sentences if not s.supported]

    def count(self, by: AttributedBy) -> int:
        return sum(s.by == by for s in self.sentences)


def attribute(
    answer: str, context: Sequence[SearchHit], embedder: Embedder | None = None
) -> Attribution:
    """Attribute every sentence of ``answer`` to passages of ``context`` (numbered from 1 as in
    the prompt). The embedder is asked only for sentences that neither markers nor word
    overlap tie to a passage; if it fails, those sentences stay unattributed."""
    if not context:
        return Attribution()
    index = PassageIndex(context)
    similar = _Similarity(index.texts, embedder)
    out: list[SentenceAttribution] = []
    pending: list[int] = []  # contentless sentences, given their neighbour's passages
    for sentence in split_sentences(answer):
        missing = tuple(t for t in key_tokens(sentence) if not index.holds(t))
        marked = tuple(sorted({n for n in _markers(sentence) if 1 <= n <= len(context)}))
        words = _content_words(_MARKER.sub(" ", sentence))
        if marked:
            out.append(SentenceAttribution(sentence, marked, "marker", missing))
        elif not words and not missing:
            pending.append(len(out))
            out.append(SentenceAttribution(sentence, (), "neighbour"))
        else:
            out.append(_by_content(sentence, words, index, similar, missing))
    for i in pending:
        near = [s.passages for s in (*out[i + 1 :], *reversed(out[:i])) if s.passages]
        out[i] = replace(out[i], passages=near[0] if near else (1,))
    return Attribution(tuple(out))


def _markers(sentence: str) -> set[int]:
    return {int(n) for n in _MARKER.findall(sentence)}


def _by_content(
    sentence: str,
    words: set[str],
    index: PassageIndex,
    similar: _Similarity,
    missing: tuple[str, ...],
) -> SentenceAttribution:
    overlap = [len(words & c) / len(words) if words else 0.0 for c in index.content]
    ranked = sorted(range(len(overlap)), key=lambda i: -overlap[i])  # stable: context order
    if words and overlap[ranked[0]] >= MIN_OVERLAP:
        return SentenceAttribution(sentence, (ranked[0] + 1,), "overlap", missing)
    scores = similar(sentence, ranked[:SIMILARITY_CANDIDATES])
    if scores:
        best = max(scores, key=scores.__getitem__)
        if scores[best] >= MIN_SIMILARITY:
            return SentenceAttribution(sentence, (best + 1,), "similarity", missing)
    return SentenceAttribution(sentence, (), "none", missing)


class _Similarity:
    """Cosine of a sentence to some passages. Embedding a passage costs what embedding it at
    ingestion did (hundreds of ms on a busy CPU), so only the candidates are embedded, each once."""

    def __init__(self, texts: Sequence[str], embedder: Embedder | None) -> None:
        self.texts = texts
        self.embedder = embedder
        self.vectors: dict[int, list[float]] = {}

    def __call__(self, sentence: str, candidates: Sequence[int]) -> dict[int, float]:
        if self.embedder is None:
            return {}
        todo = [i for i in candidates if i not in self.vectors]
        try:
            if todo:
                vectors = self.embedder.embed_documents([self.texts[i] for i in todo])
                self.vectors.update(zip(todo, vectors, strict=True))
            query = self.embedder.embed_query(_MARKER.sub(" ", sentence))
        except HoldfastError:
            self.embedder = None  # best effort: the sentence stays unattributed
            return {}
        return {i: _cosine(query, self.vectors[i]) for i in candidates}


def _cosine(a: Sequence[float], b: Sequence[float]) -> float:
    dot = sum(x * y for x, y in zip(a, b, strict=False))
    norm = math.sqrt(sum(x * x for x in a)) * math.sqrt(sum(y * y for y in b))
    return dot / norm if norm else 0.0


def mark_cited(citations: Sequence[Citation], cited: set[int]) -> list[Citation]:
    """The citations with ``cited`` set on every passage a sentence was attributed to."""
    return [replace(c, cited=c.cited or c.index in cited) for c in citations]


def attribution_dicts(attribution: Attribution) -> list[dict[str, Any]]:
    return [
        {"sentence": s.text, "passages": list(s.passages), "by": s.by, "supported": s.supported}
        for s in attribution.sentences
    ]


def should_refuse(attribution: Attribution, policy: UnsupportedPolicy) -> bool:
    return policy == "refuse" and bool(attribution.unsupported)
