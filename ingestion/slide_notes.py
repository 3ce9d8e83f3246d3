"""PowerPoint speaker notes, indexed with the slide they belong to.

A deck's notes are often where its explanation is: the slide says "Phase two", the notes say it
starts in March after the audit. Everyone who opens the file reads them in the notes pane.
unstructured can emit them (``include_slide_notes``), but as the first element of each slide,
before its title, where they would open an untitled section of their own; so they are read
here with python-pptx and placed after the slide's own text, marked as notes.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

NOTES_LABEL = "Speaker notes:"


def speaker_notes(path: Path) -> dict[int, str]:
    """The notes text of each slide that has any, by slide number (from 1)."""
    from pptx import Presentation

    notes: dict[int, str] = {}
    for number, slide in enumerate(Presentation(str(path)).slides, start=1):
        if not slide.has_notes_slide:
            continue
        frame = slide.notes_slide.notes_text_frame
        text = " ".join((frame.text if frame is not None else "").split())
        if text:
            notes[number] = text
    return notes


def with_speaker_notes(elements: Sequence[Any], notes: dict[int, str]) -> list[Any]:
    """``elements`` with each slide's notes after that slide's last element, or in the slide's
    place when nothing else of it is left (a slide holding only notes). Leave out the notes of
    slides that are not indexed (hidden ones) before calling."""
    from unstructured.documents.elements import ElementMetadata, NarrativeText

    last: dict[int, int] = {}  # slide -> index of its last element
    for index, element in enumerate(elements):
        page = getattr(element.metadata, "page_number", None)
        if page in notes and type(element).__name__ != "PageBreak":
            last[page] = index
    after = {index: page for page, index in last.items()}
    placed: set[int] = set()

    def note(page: int) -> Any:
        placed.add(page)
        return NarrativeText(
            text=f"{NOTES_LABEL} {notes[page]}", metadata=ElementMetadata(page_number=page)
        )

    out: list[Any] = []
    for index, element in enumerate(elements):
        page = getattr(element.metadata, "page_number", None)
        if isinstance(page, int):  # slides before this one with notes only
            out += [
                note(p) for p in sorted(notes) if p < page and p not in last and p not in placed
            ]
        out.append(element)
        if index in after:
            out.append(note(after[index]))
    out += [note(p) for p in sorted(notes) if p not in placed]
    return out
