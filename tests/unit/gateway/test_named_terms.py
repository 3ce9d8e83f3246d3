"""Dotted names in a question, and whether the passages name them (pure logic)."""

from __future__ import annotations

import pytest

from gateway.query.named_terms import dotted_names, operators, unmatched_names
from services.records import Chunk

pytestmark = pytest.mark.unit


def chunk(text: str, title: str = "", section: str = "") -> Chunk:
    return Chunk(
        chunk_id="c",
        doc_id="d",
        text=text,
        source="s",
        title=title,
        section=section,
        position=0,
        content_hash="h",
        access_groups=("g",),
        parent_id="p",
    )


@pytest.mark.parametrize(
    ("question", "names"),
    [
        ("json.load_yaml to read YAML files", ["json.load_yaml"]),
        ("threading.Thread.kill() to force a thread to stop", ["threading.Thread.kill"]),
        ("statistics.percentile(data, 90)", ["statistics.percentile"]),
        ("os.path.join vs os.path.join", ["os.path.join"]),
        ("what goes in setup.py?", ["setup.py"]),
        # abbreviations, versions and prose are not identifiers
        ("documents, e.g. a passport, i.e. photo ID", []),
        ("new in version 3.11 or v1.2", []),
        ("How many days of annual leave do employees get?", []),
        ("the ?. optional chaining operator", []),
        ("I am john.doe@example.org; see https://wiki.example.org/leave.html", []),
    ],
)
def test_dotted_names_are_identifiers_of_two_parts_or_more(question: str, names: list[str]) -> None:
    assert dotted_names(question) == names


def test_a_name_written_whole_in_a_passage_is_matched() -> None:
    passages = [chunk("json.dumps(obj, *, indent=None) serialises obj to a JSON str.")]
    assert unmatched_names("json.dumps indent", passages) == []


def test_a_method_documented_under_its_class_is_matched_by_call_form_and_qualifier() -> None:
    passages = [chunk("most_common([n]) returns the n most common elements.", section="Counter")]
    assert unmatched_names("Counter.most_common ties order", passages) == []


def test_an_api_no_passage_names_is_unmatched() -> None:
    passages = [
        chunk("json.load(fp) deserialises fp to a Python object.", title="json — JSON"),
        chunk("The yaml format is not part of the standard library."),
    ]
    assert unmatched_names("json.load_yaml to read YAML files", passages) == ["json.load_yaml"]


def test_the_last_part_as_a_plain_word_is_not_enough() -> None:
    # "sum" and "list" both appear, but nothing documents a list.sum() method
    passages = [chunk("Use the built-in sum over the items of a list.")]
    assert unmatched_names("how do I call the list.sum() method", passages) == ["list.sum"]


def test_the_call_form_needs_its_qualifier_in_the_same_passage() -> None:
    passages = [chunk("copyfile(src, dst) copies a file.", title="shutil"), chunk("os module")]
    assert unmatched_names("os.copyfile arguments", passages) == ["os.copyfile"]


def test_a_call_qualified_by_another_module_does_not_name_it() -> None:
    # the shutil page mentions os, and documents shutil.copyfile, not os.copyfile
    passages = [
        chunk("shutil.copyfile(src, dst) copies src to dst; see os.stat() for modes.", "shutil"),
        chunk("Fast copies (copyfile(), copy()) use os.sendfile() on Linux.", "shutil", "Copies"),
    ]
    assert unmatched_names("os.copyfile arguments", passages) == ["os.copyfile"]
    assert unmatched_names("shutil.copyfile arguments", passages) == []


def test_the_call_form_counts_only_under_a_heading_naming_the_qualifier() -> None:
    text = "most_common([n]) returns the n most common elements of a Counter."
    assert unmatched_names("Counter.most_common", [chunk(text, section="Counter objects")]) == []
    assert unmatched_names("Counter.most_common", [chunk(text, section="Recipes")]) == [
        "Counter.most_common"
    ]


@pytest.mark.parametrize(
    ("question", "found"),
    [
        ("the ?. optional chaining operator for None values", ["?."]),
        ("what does := do in a while loop", [":="]),
        ("a -> b annotation and ** unpacking", ["->", "**"]),
        # punctuation ending a word, a lone sign, and operators inside code are not named alone
        ("Is it thread safe?... and x?.y", []),
        ("a - b or a+b, f(**kwargs)", []),
    ],
)
def test_operators_are_runs_of_operator_characters_standing_alone(
    question: str, found: list[str]
) -> None:
    assert operators(question) == found


def test_an_operator_no_passage_contains_is_unmatched() -> None:
    passages = [chunk("The walrus operator := assigns inside an expression; a.b reads a field.")]
    assert unmatched_names("the ?. optional chaining operator for None values", passages) == ["?."]
    assert unmatched_names("what does := do in a while loop", passages) == []


def test_a_question_without_dotted_names_is_never_unmatched() -> None:
    assert unmatched_names("When does the office open?", []) == []
