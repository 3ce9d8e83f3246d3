"""Questions that name an API the documents do not have.

A question such as "json.load_yaml to read YAML files" or "math.clamp(value, low, high)" names a
dotted identifier. When no passage retrieved for it names that identifier, the documents do not
describe it, whatever the similarity of the passages: a small model then answers from what the
name suggests (measured on the Python-docs set: 10 of 14 such look-alikes answered). Refusing
before generation is both right and cheaper than generating.

A name counts as present when a passage contains it whole (``json.dumps``), or contains its last
part in call or signature form, unqualified, under a heading that names its qualifier
(``most_common(`` in a passage whose section is "Counter objects"): reference pages document
``Counter.most_common`` as ``most_common([n])`` under the class. A call qualified by something
else, or under another heading, does not count: the shutil page's ``copyfile()`` and
``shutil.copyfile(src, dst)`` document no ``os.copyfile``, though the page mentions ``os``.

Operators are names too: a question about "the ?. operator" names ``?.``, a standalone run of
two or three operator characters, present when a passage contains it.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from services.records import Chunk

# Two parts or more, each a word of at least two characters that starts with a letter or "_":
# "os.path.join", "Counter.most_common", "setup.py"; not "e.g", "i.e", "v1.2" or "3.11".
_PART = r"[A-Za-z_]\w+"
_DOTTED = re.compile(rf"(?<![\w.]){_PART}(?:\.{_PART})+(?![\w])")
# addresses are not API names (and are redacted anyway when redaction is on)
_ADDRESSES = re.compile(r"[\w.+-]+@[\w.-]+|\b\w+://\S+")
# "?.", ":=", "->", "**", "//": two or three operator characters standing alone between spaces
# (a "?" or "..." that ends a word is punctuation, not an operator)
_OPERATOR = re.compile(r"(?<!\S)[-+*/%&|^~<>=!?:.@]{2,3}(?!\S)")


def dotted_names(question: str) -> list[str]:
    """The dotted identifiers a question names, in order, each once."""
    return list(dict.fromkeys(_DOTTED.findall(_ADDRESSES.sub(" ", question))))


def operators(question: str) -> list[str]:
    """The operators a question names standing alone (``?.``, ``:=``), in order, each once."""
    return list(dict.fromkeys(_OPERATOR.findall(question)))


def _word(term: str) -> re.Pattern[str]:
    return re.compile(rf"(?<![\w]){re.escape(term)}(?![\w])")


def _named_by(name: str, passages: Sequence[tuple[str, str]]) -> bool:
    """Whether a passage, as a (heading, body) pair, names ``name``."""
    whole = _word(name)
    *qualifiers, last = name.split(".")
    called = re.compile(rf"(?<![\w.]){re.escape(last)}\s*\(")  # unqualified: not "shutil.copyfile("
    qualifier = _word(qualifiers[-1])
    return any(
        whole.search(heading)
        or whole.search(body)
        or (called.search(body) and qualifier.search(heading))
        for heading, body in passages
    )


def unmatched_names(question: str, passages: Sequence[Chunk]) -> list[str]:
    """Dotted names and operators in ``question`` that no passage names (see the module
    docstring)."""
    names, ops = dotted_names(question), operators(question)
    if not names and not ops:
        return []
    headed = [(f"{c.title}\n{c.section}", c.text) for c in passages]
    unnamed = [n for n in names if not _named_by(n, headed)]
    return unnamed + [op for op in ops if not any(op in h or op in b for h, b in headed)]
