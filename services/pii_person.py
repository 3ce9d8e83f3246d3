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
from services.regex_held import held

_TOKEN = r"(?:Mc|Mac|O['\u2019]|D['\u2019])?\p{Lu}\p{Ll}+(?:-\p{Lu}\p{Ll}+)*"
_TOKEN_RE = held(_TOKEN)
_FOLLOWING = held(r"[ \t]+(\p{L}+)")
_DASH_AFTER = held(r"[\-\u2013\u2014]\p{Lu}")
_DASH_BEFORE = held(r"\p{Lu}\p{Ll}+[\-\u2013\u2014]$")
_NONSPACE = held(r"\S+")
_LETTERS = held(r"\p{L}+")
_PARTICLES = frozenset(
    {"van", "de", "der", "den", "von", "da", "di", "del", "la", "le", "bin", "al", "ibn", "dos"}
)
_NAME = held(rf"{_TOKEN}(?:[ \t]+(?:(?:{'|'.join(sorted(_PARTICLES))})[ \t]+)?{_TOKEN}){{0,3}}")
_TITLE = held(r"^(?:(?:Mr|Mrs|Ms|Miss|Mx|Dr|Prof|Sir)\.?\s+)+")
_POSSESSIVE = held(r"['\u2019]s?$")
_STRONG_CUE = held(
    r"(?i)(?:\b(?:from|to|cc|bcc|reply-to|attn|name|employee|owner|holder|contact|reporter|"
    r"reviewer|assignee|manager|caller|customer)[ \t]*:[ \t]*|"
    r"\b(?:mr|mrs|ms|miss|mx|dr|prof|sir|dear|hi|hello|hey|thanks|thank\s+you|cheers|regards|"
    r"contact|manager|employee|holder|cardholder|customer|candidate|reporter|assignee|colleague|"
    r"spouse|child|reviewer|caller|tenant|consultant|contractor|donor|debtor|approver|"
    r"investigator|applicant|congratulations\s+to|welcome|reported\s+by|approved\s+by|"
    r"assigned\s+to|signed\s+by|written\s+by|revised\s+by|escalated\s+to)\b\.?[ \t]*"
    r"[,!\-\u2014\u2013]?[ \t]*)$"
)
_EMAIL_AFTER = held(r"^[ \t]*[(<][ \t]*[\w.+\-]+@")
_EPONYM_AFTER = held(
    r"(?i)^(?:['\u2019]s?)?[ \t]+(?:algorithm|law|laws|theorem|method|distance|filter|heap|tree|"
    r"search|transform|test|equation|number|principle|lemma|conjecture|curve|calendar|notation|"
    r"constant|series|sort|encoding|machine|graph|formula|rule|paradox|effect|cipher|protocol|"
    r"normal\s+form|coefficient|inequality|space|function|operator|matrix|process|code)s?\b"
)
_GREETING = held(
    rf"(?:\b(?:Hi|Hello|Hey|Dear|Thanks|Cheers)[ \t]*[,!.]?[ \t]+"
    rf"(?:(?:Mr|Mrs|Ms|Miss|Mx|Dr|Prof)\.?[ \t]+)?|\b(?:Mr|Mrs|Ms|Miss|Mx|Dr|Prof)\.?[ \t]+)"
    rf"(?P<name>{_TOKEN}(?:[ \t]+{_TOKEN})?)"
)
_DASH_SIGNATURE = held(
    rf"[\u2014\u2013][ \t]*(?P<name>{_TOKEN}(?:[ \t]+{_TOKEN})?)[ \t]*$", regex.M
)
# "Grace, I'll be..." / "Ivan, my apologies" / "Hannah," alone: not "Major, Minor and Patch"
_VOCATIVE = held(
    rf"^[ \t]*(?P<name>{_TOKEN})[ \t]*(?:,|[ \t][\u2014\u2013])"
    r"(?=[ \t]*(?:$|\p{Ll}|I\b|I['\u2019]))",
    regex.M,
)


def _words(text: str) -> list[str]:
    return text.split()


_TITLES = frozenset({"mr", "mrs", "ms", "miss", "mx", "dr", "prof", "sir", "jr", "sr"})
_CALENDAR_SHORT = frozenset(
    _words("jan feb mar apr jun jul aug sep sept oct nov dec")
    + _words("mon tue tues wed thu thur thurs fri sat sun")
)
_CALENDAR = _CALENDAR_SHORT | frozenset(
    _words(
        """january february march april may june july august september october november december
    monday tuesday wednesday thursday friday saturday sunday"""
    )
)
# A name followed by one of these, or holding one, names a place, a firm or a day.
_NOT_PERSON_WORDS = frozenset(
    _words(
        """street st avenue ave road rd boulevard blvd drive lake river valley mountain
    building tower station airport square county city office campus center centre
    consultancy consulting inc llc llp ltd gmbh ag plc corp corporation company group bank
    university college school hospital clinic foundation institute award prize"""
    )
)
_SIGNATURE = held(
    rf"^[ \t]*[\u2014\u2013\-]*[ \t]*(?P<name>{_TOKEN}(?:[ \t]+{_TOKEN}){{0,2}})[ \t]*$", regex.M
)


# Product and technology words that spaCy tends to call persons; not names in any text here.
_TECH = """python java javascript typescript kotlin rust ruby perl golang linux debian ubuntu fedora
    windows macos android ios postgres postgresql mysql mariadb sqlite oracle redis kafka docker
    podman kubernetes helm ansible terraform nginx apache django flask fastapi spring react
    weaviate ollama presidio spacy jenkins github gitlab jira confluence slack workday excel
    grafana prometheus firefox chrome safari unicode ascii utf json yaml xml html css"""
TECH_WORDS = frozenset(_words(_TECH))


# Given names that are also everyday English words: alone, they need a cue to be names.
_WORD_NAMES = frozenset(
    _words(
        """will grant mark rose bill may june april august hunter chase summer winter dawn faith
    hope joy grace ray rob pat sue jack frank gene art penny ruby amber crystal jade pearl ivy
    holly lily iris daisy violet heather olive sandy brook river sky star storm major king
    prince duke earl baron miles young rich price page lane wood stone bell hall park field
    drew guy nick sterling cash gale hazel destiny harmony honor justice liberty precious
    trinity royal noble early case long short little hardy ward victor august"""
    )
)


@dataclass(frozen=True, slots=True)
class Lexicons:
    english: frozenset[str]
    given: frozenset[str]
    common_given: frozenset[str] = frozenset()  # names frequent in some country of the list

    def is_common_given(self, word: str) -> bool:
        return word.lower() in self.common_given or word.lower() in _WORD_NAMES

    def is_word(self, word: str) -> bool:
        """In the English word index (which also holds many proper names: Helen, Carlos)."""
        w = word.lower()
        forms = {w, w[:-1] if w.endswith("s") else w, w[:-2] if w.endswith("es") else w}
        if w.endswith("ies"):
            forms.add(w[:-3] + "y")
        return bool(forms & self.english)

    def is_english(self, word: str) -> bool:
        """An English word that is not a given name, or a given name that is also an everyday
        word ("Grant", "Will", "Rose")."""
        if word.lower() in self.common_given and word.lower() not in _WORD_NAMES:
            return False
        return self.is_word(word)

    def is_given(self, word: str) -> bool:
        return word.lower() in self.given


COMMON_FREQUENCY = 6  # nam_dict's per-country frequency scale runs 1..13 (hex digits)


def load_given_names() -> tuple[frozenset[str], frozenset[str]]:
    """The given names of the ``gender-guesser`` package's list (Jörg Michael's nam_dict), and
    the common ones: given in Great Britain, Ireland or the USA, or with a frequency of at least
    ``COMMON_FREQUENCY`` in some other country (rare entries such as "Deep", "File" are not)."""
    import gender_guesser

    path = Path(gender_guesser.__file__).parent / "data" / "nam_dict.txt"
    names: set[str] = set()
    common: set[str] = set()
    with path.open(encoding="utf-8") as fh:
        for line in fh:
            if line[:1] in "#=" or len(line) < 30:
                continue
            columns = line[30:-1]
            counts = [int(c, 16) for c in columns if c in "0123456789ABCDEF"]
            anglo = any(c in "123456789ABCDEF" for c in columns[:3])  # GB, Ireland, USA
            for part in line[3:29].strip().replace("+", " ").split():
                if len(part) >= 3:
                    names.add(part.lower())
                    if anglo or (counts and max(counts) >= COMMON_FREQUENCY):
                        common.add(part.lower())
    return frozenset(names), frozenset(common)


@lru_cache(maxsize=4)
def _given_names() -> tuple[frozenset[str], frozenset[str]]:
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
    short_stop = frozenset(w for w in stop if len(w) <= 3)  # "the", "and" are in the list
    given, common = _given_names()
    return Lexicons(
        english=frozenset(english), given=given - short_stop, common_given=common - short_stop
    )


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
        lowered = [w.lower().rstrip(".") for w in words]
        if any(w in _TITLES for w in lowered) or all(w in _CALENDAR for w in lowered):
            return None
        if not words or not _TOKEN_RE.fullmatch(words[0]) or not _TOKEN_RE.fullmatch(words[-1]):
            return None
        for w in words:
            if w.lower() not in _PARTICLES and not _TOKEN_RE.fullmatch(w):
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
        signature = _SIGNATURE.fullmatch(line)
        if len(lines) >= 2 and signature and self._lex.is_given(signature.group("name").split()[0]):
            return True
        if any(m.start("name") == start for m in _DASH_SIGNATURE.finditer(line, 0)):
            return True
        return any(line_start + m.start("name") == start for m in _VOCATIVE.finditer(line))

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
        if _opens_sentence(text, start) and all(
            t.lower() in _SENTENCE_OPENERS and not self._lex.is_given(t) for t in tokens
        ):
            return None  # "Thanks. The contact ...": a cue, then the next sentence's first word
        if any(t.lower() in TECH_WORDS or t.lower() in code_words for t in tokens):
            return None
        if _EPONYM_AFTER.match(text[end : end + 40]):
            return None
        following = _FOLLOWING.match(text[end : end + 30])
        joined = _DASH_AFTER.match(text[end : end + 2]) or _DASH_BEFORE.search(
            text[max(0, start - 30) : start]
        )
        if joined:  # part of a dashed compound: "Knuth-Morris-Pratt", "Boyer-Moore"
            return None
        if any(t.lower() in _NOT_PERSON_WORDS for t in tokens) or (
            following and following.group(1).lower() in _NOT_PERSON_WORDS
        ):
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
            if len(tokens) >= 2 and lex.is_common_given(tokens[0]):
                return start, end  # "Will Hunter", "Grant Foster"; not "Deep Learning"
            return None
        # spaCy's word alone is not enough outside HR-like text: "Numba", "Wildcard Match"
        if given_first or (
            cand.from_ner
            and (
                any(lex.is_given(t) for t in tokens)
                or (len(tokens) >= 2 and not any(lex.is_word(t) for t in tokens))
            )
        ):
            return start, end
        return None

    def _proposals(self, text: str) -> Iterable[_Candidate]:
        lex = self._lex
        for m in _NAME.finditer(text):
            words = m.group(0).split()
            offsets = [m.start() + o.start() for o in _NONSPACE.finditer(m.group(0))]
            # a given name leads: propose from it (drops a capitalised word before it)
            for i, w in enumerate(words):
                if lex.is_given(w) and (i < len(words) - 1 or not lex.is_word(w)):
                    yield _Candidate(offsets[i], m.end(), False)
                    break
            if _STRONG_CUE.search(text[max(0, m.start() - 40) : m.start()]):
                yield _Candidate(m.start(), m.end(), False)
        for pattern in (_GREETING, _DASH_SIGNATURE, _VOCATIVE):
            for m in pattern.finditer(text):
                if lex.is_given(m.group("name").split()[0]):
                    yield _Candidate(m.start("name"), m.end("name"), False)
        for m in _SIGNATURE.finditer(text):
            if lex.is_given(m.group("name").split()[0]):
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
            for w in _LETTERS.findall(text[r.start : r.end])
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
            for s, e in _occurrences(text, value):
                if any(a < e and s < b for a, b in out):
                    continue
                if any(r.start < e and s < r.end for r in blocked):
                    continue
                out.append((s, e))
        return sorted(out)


_TITLE_WORD = held(r"\p{Lu}\p{Ll}+")
# Words capitalised only because a sentence starts with them, never given names (so neither
# "Will" nor "May" is here): a question's "How" alone no longer costs a spaCy NER pass.
_SENTENCE_OPENERS = frozenset(
    _words(
        """how what which where when why who whom whose is are was were do does did can could
    should would shall has have had the a an in on at for to of from by with about if i my our
    we you your it its this that these those there please list show give explain tell find
    describe summarize summarise compare and or but not no any all each every some many much"""
    )
)
_OPENING = frozenset(" \t\"'([\u201c\u2018")


def _opens_sentence(text: str, start: int) -> bool:
    i = start
    while i > 0 and text[i - 1] in _OPENING:
        i -= 1
    return i == 0 or text[i - 1] in ".!?:\n"


def may_hold_name(text: str, regions: Sequence[Region]) -> bool:
    """Whether a capitalised word that could be a kept name stands outside every protected
    region: if none does, spaCy's NER need not run on the text. A product word (which
    ``PersonJudge`` never keeps as a name) and a sentence's opening function word do not
    count."""
    for m in _TITLE_WORD.finditer(text):
        if any(r.start <= m.start() < r.end for r in regions):
            continue
        word = m.group().lower()
        if word in TECH_WORDS:
            continue
        if word in _SENTENCE_OPENERS and _opens_sentence(text, m.start()):
            continue
        return True
    return False


def _occurrences(text: str, value: str) -> Iterable[tuple[int, int]]:
    """Whole-word occurrences of ``value`` (not inside a longer word, address or name.part)."""
    i = text.find(value)
    while i >= 0:
        e = i + len(value)
        before = text[i - 1] if i else " "
        after = text[e] if e < len(text) else " "
        if not (before.isalnum() or before in "_@.") and not (after.isalnum() or after in "_@"):
            yield i, e
        i = text.find(value, i + 1)


def mentions_of(
    text: str, names: Iterable[str], taken: Sequence[tuple[int, int]], blocked: Sequence[Region]
) -> list[tuple[int, int]]:
    """Where the full ``names`` (of two words or more, found elsewhere in the same document)
    occur in ``text`` outside ``taken`` spans and ``blocked`` regions."""
    out: list[tuple[int, int]] = []
    for name in sorted({n for n in names if len(n.split()) >= 2}, key=len, reverse=True):
        for s, e in _occurrences(text, name):
            if any(a < e and s < b for a, b in [*taken, *out]):
                continue
            if any(r.start < e and s < r.end for r in blocked):
                continue
            out.append((s, e))
    return sorted(out)
