"""Leak rules, pure: which strings a caller must never see, and whether a response shows one.

A leak is any text, id, title, source or count of a document outside the caller's groups in a
response. Markers are built per caller from what the other callers may read; a marker that the
probe itself sent (the question names a foreign title) or that the caller's own documents also
carry (two groups each have a "README") is not evidence and is skipped.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import Any

from gateway.probes.records import Canary, Document, Marker

MIN_TITLE_CHARS = 8
MIN_SOURCE_CHARS = 6
SNIPPET_CHARS = 40
_SPACE = re.compile(r"\s+")


def json_values(body: str) -> list[Any]:
    """The JSON documents in a response body: the body itself, or each SSE ``data:`` line."""
    try:
        return [json.loads(body)]
    except ValueError:
        pass
    values = []
    for line in body.splitlines():
        if line.startswith("data:"):
            try:
                values.append(json.loads(line[5:].strip()))
            except ValueError:
                continue
    return values


def readable(body: str) -> str:
    """The body with JSON escapes undone (SSE frames use ``ensure_ascii``), so markers match."""
    values = json_values(body)
    if not values:
        return body
    return body + "\n" + "\n".join(json.dumps(v, ensure_ascii=False) for v in values)


def _walk(value: Any) -> Iterator[tuple[str, Any]]:
    if isinstance(value, dict):
        for k, v in value.items():
            yield k, v
            yield from _walk(v)
    elif isinstance(value, list):
        for v in value:
            yield from _walk(v)


def _strings(value: Any) -> Iterator[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for v in value.values():
            yield from _strings(v)
    elif isinstance(value, list):
        for v in value:
            yield from _strings(v)


def returned_doc_ids(body: str) -> set[str]:
    """Every ``doc_id`` value anywhere in the response (results, citations, listings, jobs)."""
    return {str(v) for value in json_values(body) for k, v in _walk(value) if k == "doc_id" and v}


def returned_texts(body: str, visible: Iterable[str]) -> list[str]:
    """Texts the response shows from documents the caller may read (results, passages, quotes):
    a snippet found there is the caller's own text, not a leak."""
    allowed = set(visible)
    out: list[str] = []
    for value in json_values(body):
        for _, v in _walk(value):
            if isinstance(v, dict) and str(v.get("doc_id", "")) in allowed:
                out += [str(v[k]) for k in ("text", "quote") if isinstance(v.get(k), str)]
                for passage in v.get("passages") or []:
                    if isinstance(passage, dict) and isinstance(passage.get("text"), str):
                        out.append(passage["text"])
    return out


def snippets(text: str, count: int = 2) -> list[str]:
    """Up to ``count`` distinctive windows of ``text`` (no redaction placeholders)."""
    flat = _SPACE.sub(" ", text).strip()
    pieces = [p.strip() for p in re.split(r"(?<=[.!?])\s|[<>|#*`]", flat)]
    pieces = sorted((p for p in pieces if len(p) >= SNIPPET_CHARS), key=len, reverse=True)
    out = []
    for piece in pieces[:count]:
        start = (len(piece) - SNIPPET_CHARS) // 2
        out.append(piece[start : start + SNIPPET_CHARS].strip())
    return out


def foreign_markers(
    visible: Mapping[str, Document],
    universe: Mapping[str, Document],
    *,
    chunks: Mapping[str, Sequence[tuple[str, str]]] | None = None,
    canaries: Sequence[Canary] = (),
    own_groups: Iterable[str] = (),
) -> list[Marker]:
    """Markers of every document in ``universe`` that ``visible`` lacks.

    ``chunks`` maps a doc id to its (chunk_id, text) pairs seen by a caller who may read it.
    """
    chunks = chunks or {}
    own_names = " \n ".join(f"{d.title}\n{d.source}\n{d.doc_id}" for d in visible.values())
    own_names = own_names.casefold()
    own_text = " \n ".join(t for doc_id in visible for _, t in chunks.get(doc_id, ())).casefold()
    markers: list[Marker] = []

    def add(kind: str, value: str, doc_id: str, minimum: int = 1) -> None:
        value = value.strip()
        folded = value.casefold()
        if len(value) < minimum or folded in own_names or folded in own_text:
            return
        markers.append(Marker(kind, value, doc_id))

    foreign = [d for doc_id, d in universe.items() if doc_id not in visible]
    for doc in foreign:
        add("doc_id", doc.doc_id, doc.doc_id, 8)
        add("title", doc.title, doc.doc_id, MIN_TITLE_CHARS)
        add("source", doc.source, doc.doc_id, MIN_SOURCE_CHARS)
        for chunk_id, text in chunks.get(doc.doc_id, ()):
            add("chunk_id", chunk_id, doc.doc_id, 8)
            for snippet in snippets(text):
                add("text", snippet, doc.doc_id, SNIPPET_CHARS // 2)
    foreign_ids = {d.doc_id for d in foreign}
    for canary in canaries:
        if canary.doc_id in foreign_ids or (
            not canary.doc_id and canary.groups and not set(canary.groups) & set(own_groups)
        ):
            markers.append(Marker("canary", canary.marker, canary.doc_id))
    own = set(own_groups) | {g for d in visible.values() for g in d.access_groups}
    for group in sorted({g for d in foreign for g in d.access_groups} - own):
        markers.append(Marker("group", group, ""))
    return markers


def find_markers(
    body: str,
    markers: Sequence[Marker],
    *,
    asked: str = "",
    own_texts: Sequence[str] = (),
) -> list[Marker]:
    """The markers that ``body`` shows. A marker the request itself carried, or a text snippet
    that also stands in the caller's own results, is not counted. A group name counts only as a
    whole JSON string value or a metrics label value (``group="hr"``): short names occur in
    prose and as JSON keys (an OpenAI chunk's ``"delta"``)."""
    text = readable(body).casefold()
    asked_folded = asked.casefold()
    own = "\n".join(own_texts).casefold()
    strings = {v.casefold() for value in json_values(body) for v in _strings(value) if len(v) < 200}
    found = []
    for marker in markers:
        value = marker.value.casefold()
        if not value or value in asked_folded:
            continue
        group = marker.kind == "group"
        hit = (f'="{value}"' in text or value in strings) if group else value in text
        if hit and marker.kind == "text" and value in own:
            continue
        if hit:
            found.append(marker)
    return found


def excerpt(body: str, value: str, width: int = 80) -> str:
    """The text around ``value`` in ``body`` (in its unescaped copy where the body is JSON), so
    that a finding shows what was said."""
    text = _SPACE.sub(" ", readable(body))
    at = text.casefold().rfind(value.casefold())  # the unescaped copy comes last
    if at < 0:
        return ""
    return text[max(0, at - width) : at + len(value) + width]


def foreign_ids(body: str, visible: Iterable[str]) -> set[str]:
    """Doc ids in the response that the caller may not read (known to us or not)."""
    return returned_doc_ids(body) - set(visible)
