"""A second opinion on names: spaCy's PERSON entities are checked, and names it misses are found.

spaCy's small English model calls function names, section titles and table headers persons
(``now()``, "Large Objects", "Maximum"). A candidate name is kept only when:

- it is not in code, an identifier, a table header, a URL or a path, and is shaped like a name
  (capitalised words, name particles, no digits, no underscores);
- it is not an eponym ("Dijkstra's algorithm", "Levenshtein distance", "Bloom filter") nor a
  product or technology word;
- there is evidence: a word that is not English (the spaCy model's own WordNet word index), a
  given name (the gender-guesser name list: 46,000 given names of many countries) leading a
  name of two or more words, or a cue (Mr/Ms/Dr, Dear/Hi/Thanks, From:/To:, "employee",
  "cardholder"..., a signature line). Headings need a given name and a non-English word, or a cue.

Names spaCy misses are proposed by the same evidence: a given name followed by capitalised
words, a capitalised word after a greeting or title, a signature line. Every other mention of
a kept name (the full name, or its given name or surname) in the same text is kept too.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import regex

from services.pii_regions import Region, heading_lines

_TOKEN = r"(?:Mc|Mac|O['\u2019]|D['\u2019])?\p{Lu}\p{Ll}+(?:-\p{Lu}\p{Ll}+)*"
_PARTICLES = frozenset(
    {"van", "de", "der", "den", "von", "da", "di", "del", "la", "le", "bin", "al", "ibn", "dos"}
)
_NAME = regex.compile(
    rf"{_TOKEN}(?:[ \t]+(?:(?:{'|'.join(sorted(_PARTICLES))})[ \t]+)?{_TOKEN}){{0,3}}"
)
_TITLE = regex.compile(r"^(?:(?:Mr|Mrs|Ms|Miss|Mx|Dr|Prof|Sir)\.?\s+)+")
_POSSESSIVE = regex.compile(r"['\u2019]s?$")
_STRONG_CUE = regex.compile(
    r"(?i)(?:\b(?:mr|mrs|ms|miss|mx|dr|prof|sir|dear|hi|hello|hey|thanks|thank\s+you|cheers|"
    r"regards|from|cc|bcc|attn|contact|manager|employee|name|holder|cardholder|customer|"
    r"candidate|reporter|assignee|colleague|spouse|child|owner|reviewer|caller|tenant|"
    r"consultant|contractor|donor|debtor|approver|investigator|applicant|congratulations\s+to|"
    r"welcome|reported\s+by|approved\s+by|assigned\s+to|signed\s+by|written\s+by|revised\s+by|"
    r"escalated\s+to)\b\.?[ \t]*[:,\-\u2014\u2013]?[ \t]*)$"
)
_EMAIL_AFTER = regex.compile(r"^[ \t]*[(<][ \t]*[\w.+\-]+@")
_EPONYM_AFTER = regex.compile(
    r"(?i)^(?:['\u2019]s?)?[ \t]+(?:algorithm|law|laws|theorem|method|distance|filter|heap|tree|"
    r"search|transform|test|equation|number|principle|lemma|conjecture|curve|calendar|notation|"
    r"constant|series|sort|encoding|machine|graph|formula|rule|paradox|effect|cipher|protocol|"
    r"normal\s+form|coefficient|inequality|space|function|operator|matrix|process|code)s?\b"
)
_GREETING = regex.compile(
    rf"(?:\b(?:Hi|Hello|Hey|Dear|Thanks|Cheers)[ \t]*,?[ \t]+|\b(?:Mr|Mrs|Ms|Dr|Prof)\.?[ \t]+)"
    rf"(?P<name>{_TOKEN}(?:[ \t]+{_TOKEN})?)"
)
_SIGNATURE = regex.compile(
    rf"^[ \t]*[\u2014\u2013\-]*[ \t]*(?P<name>{_TOKEN}(?:[ \t]+{_TOKEN}){{0,2}})[ \t]*$", regex.M
)

# Product and technology words that spaCy tends to call persons; not names in any text here.
_TECH = """python java javascript typescript kotlin rust ruby perl golang linux debian ubuntu fedora
    windows macos android ios postgres postgresql mysql mariadb sqlite oracle redis kafka docker
    podman kubernetes helm ansible terraform nginx apache django flask fastapi spring react
    weaviate ollama presidio spacy jenkins github gitlab jira confluence slack workday excel
    grafana prometheus firefox chrome safari unicode ascii utf json yaml xml html css"""
TECH_WORDS = frozenset(_TECH.split())


@dataclass(frozen=True, slots=True)
class Lexicons:
    english: frozenset[str]
    given: frozenset[str]

    def is_english(self, word: str) -> bool:
        w = word.lower()
        forms = {w, w[:-1] if w.endswith("s") else w, w[:-2] if w.endswith("es") else w}
        if w.endswith("ies"):
            forms.add(w[:-3] + "y")
        return bool(forms & self.english)

    def is_given(self, word: str) -> bool:
        return word.lower() in self.given


def load_given_names() -> frozenset[str]:
    """The given names of the ``gender-guesser`` package's list (Jörg Michael's nam_dict)."""
    import gender_guesser

    path = Path(gender_guesser.__file__).parent / "data" / "nam_dict.txt"
    names: set[str] = set()
    with path.open(encoding="utf-8") as fh:
        for line in fh:
            if line[:1] in "#=" or len(line) < 30:
                continue
            for part in line[3:29].strip().replace("+", " ").split():
                if len(part) >= 3:
                    names.add(part.lower())
    return frozenset(names)


@lru_cache(maxsize=4)
def _given_names() -> frozenset[str]:
    return load_given_names()


def lexicons_from(nlp: object) -> Lexicons:
    """English words from the spaCy model's lemmatizer tables (WordNet), given names from the
    name list. Stop words are English; a name list entry such as "the" is dropped."""
    english: set[str] = set()
    try:
        lemmatizer = nlp.get_pipe("lemmatizer")  # type: ignore[attr-defined]
        index = lemmatizer.lookups.get_table("lemma_index")
        for pos in ("noun", "verb", "adj", "adv"):
            english.update(w.lower() for w in index.get(pos, ()))
    except (KeyError, ValueError, AttributeError):
        pass
    stop = {w.lower() for w in getattr(getattr(nlp, "Defaults", None), "stop_words", ())}
    english |= stop
    return Lexicons(english=frozenset(english), given=_given_names() - frozenset(stop))


@dataclass(frozen=True, slots=True)
class _Candidate:
    start: int
    end: int
    from_ner: bool


def _trim(text: str, start: int, end: int) -> tuple[int, int]:
    value = text[start:end]
    title = _TITLE.match(value)
    if title:
        start += title.end()
    value = text[start:end].rstrip(" \t.,;:")
    end = start + len(value)
    poss = _POSSESSIVE.search(value)
    if poss and len(value) - len(poss.group(0)) > 1:
        end -= len(poss.group(0))
    return start, end


class PersonJudge:
    """Decides, per text, which spans are names (see the module docstring)."""

    def __init__(self, lexicons: Lexicons) -> None:
        self._lex = lexicons

    def _tokens(self, value: str) -> list[str] | None:
        words = value.split()
        if (
            not words
            or not regex.fullmatch(_TOKEN, words[0])
            or not regex.fullmatch(_TOKEN, words[-1])
        ):
            return None
        for w in words:
            if w.lower() not in _PARTICLES and not regex.fullmatch(_TOKEN, w):
                return None
        return [w for w in words if w.lower() not in _PARTICLES]

    def _cue(self, text: str, start: int, end: int) -> bool:
        line_start = text.rfind("\n", 0, start) + 1
        if _STRONG_CUE.search(text[max(line_start, start - 40) : start]):
            return True
        if _EMAIL_AFTER.match(text[end : end + 80]):
            return True
        line_end = text.find("\n", end)
        line = text[line_start : len(text) if line_end < 0 else line_end]
        lines = [ln for ln in text.split("\n") if ln.strip()]
        return len(lines) >= 2 and _SIGNATURE.fullmatch(line) is not None

    def _accept(
        self,
        text: str,
        cand: _Candidate,
        blocked: Sequence[Region],
        headings: Sequence[tuple[int, int]],
        code_words: frozenset[str],
    ) -> tuple[int, int] | None:
        start, end = _trim(text, cand.start, cand.end)
        if end <= start or any(r.start < end and start < r.end for r in blocked):
            return None
        tokens = self._tokens(text[start:end])
        if not tokens:
            return None
        if any(t.lower() in TECH_WORDS or t.lower() in code_words for t in tokens):
            return None
        if _EPONYM_AFTER.match(text[end : end + 40]):
            return None
        lex = self._lex
        all_english = all(lex.is_english(t) for t in tokens)
        given_first = lex.is_given(tokens[0])
        cue = self._cue(text, start, end)
        if any(s <= start < e for s, e in headings):
            strong = not all_english and any(lex.is_given(t) for t in tokens)
            return (start, end) if cue or (strong and len(tokens) >= 2) else None
        if cue:
            return start, end
        if all_english:
            return (start, end) if len(tokens) >= 2 and given_first else None
        if cand.from_ner or given_first:
            return start, end
        return None

    def _proposals(self, text: str) -> Iterable[_Candidate]:
        for m in _NAME.finditer(text):
            words = m.group(0).split()
            # a given name leads: propose from it (drops a capitalised word before it)
            for i, w in enumerate(words[:-1]):
                if self._lex.is_given(w):
                    start = m.start() + m.group(0).index(w, sum(len(x) + 1 for x in words[:i]))
                    yield _Candidate(start, m.end(), False)
                    break
        for m in _GREETING.finditer(text):
            yield _Candidate(m.start("name"), m.end("name"), False)
        for m in _SIGNATURE.finditer(text):
            if self._lex.is_given(m.group("name").split()[0]):
                yield _Candidate(m.start("name"), m.end("name"), False)

    def names(
        self, text: str, ner_spans: Iterable[tuple[int, int]], blocked: Sequence[Region]
    ) -> list[tuple[int, int]]:
        """Spans of ``text`` that are names; ``ner_spans`` are spaCy's PERSON entities and
        ``blocked`` the regions no name may touch."""
        headings = heading_lines(text)
        code_words = frozenset(
            w.lower()
            for r in blocked
            if r.kind in ("code", "inline_code", "identifier", "function_call")
            for w in regex.findall(r"\p{L}+", text[r.start : r.end])
        )
        cands = [_Candidate(s, e, True) for s, e in ner_spans]
        cands += list(self._proposals(text))
        kept: list[tuple[int, int]] = []
        for cand in cands:
            span = self._accept(text, cand, blocked, headings, code_words)
            if span and not any(s < span[1] and span[0] < e for s, e in kept):
                kept.append(span)
            elif span:  # overlapping: keep the longer
                for i, (s, e) in enumerate(kept):
                    if s < span[1] and span[0] < e and span[1] - span[0] > e - s:
                        kept[i] = span
        return self._mentions(text, kept, blocked)

    def _mentions(
        self, text: str, kept: list[tuple[int, int]], blocked: Sequence[Region]
    ) -> list[tuple[int, int]]:
        """Every other mention of a kept name: the whole name, its given name, its surname."""
        values: set[str] = set()
        for s, e in kept:
            value = text[s:e]
            values.add(value)
            words = [w for w in value.split() if w.lower() not in _PARTICLES]
            if len(words) >= 2:
                values.update(
                    w
                    for w in words
                    if len(w) >= 3 and (self._lex.is_given(w) or not self._lex.is_english(w))
                )
        out = sorted(set(kept))
        for value in sorted(values, key=len, reverse=True):
            for m in regex.finditer(rf"(?<![\w@.]){regex.escape(value)}(?![\w@])", text):
                s, e = m.start(), m.end()
                if any(a < e and s < b for a, b in out):
                    continue
                if any(r.start < e and s < r.end for r in blocked):
                    continue
                out.append((s, e))
        return sorted(out)
