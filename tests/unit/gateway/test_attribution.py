"""Answer sentences tied to passages: markers, word overlap, similarity; unsupported facts
flagged or refused by policy; navigation and markup kept out of answers."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

import pytest

from gateway.query.answering import answer_question
from gateway.query.attribution import (
    StreamCleaner,
    attribute,
    clean_answer,
    key_tokens,
    split_sentences,
)
from gateway.query.events import stream_answer
from gateway.query.prompt import REFUSAL_TEXT
from gateway.query.records import Ports
from services.errors import EmbedderUnavailableError
from services.records import HealthStatus, SearchHit
from tests.unit.gateway.test_answering import (
    OPTIONS,
    PRINCIPAL,
    FakeEmbedder,
    FakeRouter,
    FakeStore,
    hit,
)

pytestmark = pytest.mark.unit

OFFICE = hit(1, "The office opens at 08:00 and closes at 18:00 on weekdays.")
PARKING = hit(2, "Staff park in the north garage; visitors use the 12 spaces by reception.")
TIMEOUTS = hit(
    3,
    "The connect_timeout setting defaults to 30 seconds. Set retries=3 in holdfast.yaml "
    "to retry a failed call.",
)
CONTEXT = [OFFICE, PARKING, TIMEOUTS]


class TopicEmbedder(FakeEmbedder):
    """Vectors by topic word, so that similarity picks a passage without shared words."""

    TOPICS = ("office", "garage", "timeout")
    SYNONYMS = (("workplace", "office"), ("car", "garage"), ("wait", "timeout"))

    def _vector(self, text: str) -> list[float]:
        low = text.lower()
        for word, topic in self.SYNONYMS:
            low = low.replace(word, topic)
        return [float(topic in low) for topic in self.TOPICS]

    def embed_documents(self, texts: Sequence[str]) -> list[list[float]]:
        self.documents.append(list(texts))
        return [self._vector(t) for t in texts]

    def embed_query(self, text: str) -> list[float]:
        self.queries.append(text)
        return self._vector(text)


class DownEmbedder(FakeEmbedder):
    def embed_documents(self, texts: Sequence[str]) -> list[list[float]]:
        raise EmbedderUnavailableError("embedder down")

    def health(self) -> HealthStatus:
        return HealthStatus("embedder", False)


def by_sentence(
    answer: str, context: list[SearchHit] = CONTEXT, embedder: FakeEmbedder | None = None
) -> list[tuple[str, tuple[int, ...], str, tuple[str, ...]]]:
    result = attribute(answer, context, embedder)
    return [(s.text, s.passages, s.by, s.missing) for s in result.sentences]


# --- attribution ----------------------------------------------------------------------------


def test_sentences_with_markers_are_attributed_to_the_passages_they_cite() -> None:
    result = attribute("The office opens at 08:00 [1]. Visitors have 12 spaces [2][1].", CONTEXT)
    assert [(s.passages, s.by, s.supported) for s in result.sentences] == [
        ((1,), "marker", True),
        ((1, 2), "marker", True),
    ]
    assert result.cited == {1, 2} and result.unsupported == []


def test_markers_after_the_full_stop_stay_with_their_sentence() -> None:
    assert split_sentences("It opens at 08:00. [1] Visitors park by reception [2].") == [
        "It opens at 08:00. [1]",
        "Visitors park by reception [2].",
    ]


def test_a_marker_past_the_last_passage_does_not_count_as_attribution() -> None:
    [(_, passages, by, _)] = by_sentence("Staff park in the north garage [7].")
    assert (passages, by) == ((2,), "overlap")


def test_without_markers_a_sentence_goes_to_the_passage_sharing_its_words() -> None:
    result = attribute("Staff park in the north garage. The office closes at 18:00.", CONTEXT)
    assert [(s.passages, s.by) for s in result.sentences] == [((2,), "overlap"), ((1,), "overlap")]
    assert result.cited == {1, 2} and result.unsupported == []


def test_without_markers_or_shared_words_similarity_decides() -> None:
    embedder = TopicEmbedder()
    [(_, passages, by, missing)] = by_sentence("Leave your car downstairs.", embedder=embedder)
    assert (passages, by, missing) == ((2,), "similarity", ())
    assert len(embedder.documents) == 1  # passages embedded once, only when needed


def test_the_embedder_is_not_asked_when_markers_and_words_decide() -> None:
    embedder = TopicEmbedder()
    attribute("It opens at 08:00 [1]. Staff park in the north garage.", CONTEXT, embedder)
    assert embedder.documents == [] and embedder.queries == []


def test_a_failing_embedder_leaves_the_sentence_unattributed_not_the_answer_failed() -> None:
    result = attribute("Leave your car downstairs.", CONTEXT, DownEmbedder())
    assert [(s.passages, s.by) for s in result.sentences] == [((), "none")]
    assert result.unsupported == ["Leave your car downstairs."]


def test_a_contentless_sentence_takes_its_neighbours_passages() -> None:
    result = attribute("The office opens at 08:00 [1]. Yes.", CONTEXT)
    assert [(s.passages, s.by, s.supported) for s in result.sentences] == [
        ((1,), "marker", True),
        ((1,), "neighbour", True),
    ]


# --- unsupported facts ----------------------------------------------------------------------


def test_a_number_in_no_passage_makes_the_sentence_unsupported_even_with_a_marker() -> None:
    # the pretraining default: the passage says 30 seconds, the model says 60
    result = attribute(
        "The connect_timeout defaults to 60 seconds [3]. It opens at 08:00 [1].", CONTEXT
    )
    first, second = result.sentences
    assert first.missing == ("60",) and not first.supported and first.passages == (3,)
    assert second.supported
    assert result.unsupported == ["The connect_timeout defaults to 60 seconds [3]."]
    assert result.cited == {1, 3}  # attributed, though not supported


@pytest.mark.parametrize(
    ("sentence", "missing"),
    [
        ("Set read_timeout to 30 [3].", ("read_timeout",)),  # a setting in no passage
        ("Ask Priya Raman at reception [2].", ("Priya", "Raman")),  # a name in no passage
        ("Use `requests.get` to call it [3].", ("requests.get",)),  # an identifier
        ("Set retries=5 in holdfast.yaml [3].", ("5",)),  # a setting's value
        ("The office opens at 8:00 [1].", ()),  # 08:00 stated as 8:00
        ("There are twelve spaces, 12 in all [2].", ()),
        ("Set retries=3 in holdfast.yaml [3].", ()),
        ("Write to <EMAIL_ADDRESS> [1].", ()),  # a redaction placeholder is no name
    ],
)
def test_key_tokens_must_appear_in_some_passage(sentence: str, missing: tuple[str, ...]) -> None:
    [(_, _, _, found)] = by_sentence(sentence)
    assert found == missing


def test_key_tokens_are_numbers_names_identifiers_and_settings() -> None:
    tokens = key_tokens(
        "In Python 3.12 call json.dumps() with indent=4 and `sort_keys`, ask Bob [2]."
    )
    assert tokens == ["sort_keys", "3.12", "4", "Python", "json.dumps", "indent", "Bob"]


def test_in_a_code_block_only_the_api_it_calls_must_be_in_a_passage() -> None:
    block = "```python\nmy_retries = 7\nclient.connect_timeout = 30\nos.getenv('X')\n```"
    assert key_tokens(block) == ["connect_timeout", "getenv"]
    [(_, _, _, missing)] = by_sentence(f"Set it in code [3]:\n\n{block}")[1:]
    assert missing == ("getenv",)


def test_a_sentence_no_passage_relates_to_is_unsupported() -> None:
    result = attribute("Quarterly bonuses depend on revenue targets.", CONTEXT)
    assert [(s.passages, s.by) for s in result.sentences] == [((), "none")]
    assert result.unsupported == ["Quarterly bonuses depend on revenue targets."]


# --- the policy in the query path -----------------------------------------------------------


def ask(answer: str, policy: str = "flag", embedder: FakeEmbedder | None = None):  # type: ignore[no-untyped-def]
    options = replace(OPTIONS, unsupported_policy=policy)  # type: ignore[arg-type]
    ports = Ports(FakeStore(list(CONTEXT)), embedder or FakeEmbedder(), FakeRouter(answer), None)
    return answer_question("When?", PRINCIPAL, ports=ports, options=options)


UNFAITHFUL = "The office opens at 08:00 [1]. The connect_timeout defaults to 60 seconds [3]."


def test_flag_policy_answers_and_lists_the_unsupported_sentence() -> None:
    result = ask(UNFAITHFUL, "flag")
    assert result.refused is False and result.answer == UNFAITHFUL
    assert result.unsupported_sentences == ["The connect_timeout defaults to 60 seconds [3]."]
    assert [s["supported"] for s in result.attribution] == [True, False]
    assert [(c.index, c.cited) for c in result.citations] == [(1, True), (2, False), (3, True)]
    assert "attribute" in result.timings_ms


def test_refuse_policy_refuses_an_answer_with_an_unsupported_sentence() -> None:
    result = ask(UNFAITHFUL, "refuse")
    assert (result.refused, result.refusal_reason) == (True, "unsupported")
    assert result.answer == REFUSAL_TEXT and "60" not in result.answer
    assert result.citations == [] and result.unsupported_sentences == []


def test_refuse_policy_lets_a_supported_answer_through() -> None:
    result = ask("The office opens at 08:00 [1]. Visitors use 12 spaces [2].", "refuse")
    assert result.refused is False and result.unsupported_sentences == []
    assert [c.cited for c in result.citations] == [True, True, False]


def test_unmarked_answer_gets_cited_passages_by_similarity() -> None:
    result = ask("Leave your car downstairs.", embedder=TopicEmbedder())
    assert [c.cited for c in result.citations] == [False, True, False]
    assert result.attribution[0]["by"] == "similarity"


def stream(answer: str, policy: str) -> list[tuple[str, dict[str, object]]]:
    options = replace(OPTIONS, unsupported_policy=policy)  # type: ignore[arg-type]
    ports = Ports(FakeStore(list(CONTEXT)), FakeEmbedder(), FakeRouter(answer), None)
    return list(stream_answer("When?", PRINCIPAL, ports=ports, options=options, model_name="m"))


def test_stream_done_event_carries_attribution_and_unsupported_sentences() -> None:
    events = stream(UNFAITHFUL, "flag")
    done = events[-1][1]
    assert done["cited"] == [1, 3] and done["refused"] is False
    assert done["unsupported_sentences"] == ["The connect_timeout defaults to 60 seconds [3]."]
    text = "".join(str(d["text"]) for n, d in events if n == "token")
    assert text == UNFAITHFUL


def test_stream_under_refuse_holds_the_answer_and_sends_the_refusal() -> None:
    events = stream(UNFAITHFUL, "refuse")
    tokens = [str(d["text"]) for n, d in events if n == "token"]
    assert tokens == [REFUSAL_TEXT]
    done = events[-1][1]
    assert (done["refused"], done["refusal_reason"]) == (True, "unsupported")
    assert done["unsupported_sentences"] == [] and done["cited"] == []


def test_stream_under_refuse_sends_a_supported_answer_whole() -> None:
    answer = "The office opens at 08:00 [1]."
    events = stream(answer, "refuse")
    assert [str(d["text"]) for n, d in events if n == "token"] == [answer]
    assert events[-1][1]["refused"] is False


# --- navigation and markup ------------------------------------------------------------------


NAV_ANSWER = (
    "The office opens at 08:00 [1].\n| Prev | Up | Next |\n"
    "<div class='x'>It closes at 18:00</div> [1]. ¶\n"
    "index | modules | next | previous | Python » 3.12 Documentation » Library »"
)


def test_navigation_runs_html_tags_and_pilcrows_never_reach_the_answer() -> None:
    cleaned = clean_answer(NAV_ANSWER)
    assert cleaned == "The office opens at 08:00 [1].\n\nIt closes at 18:00 [1]."
    result = ask(NAV_ANSWER)
    assert result.answer == cleaned and "Prev" not in result.answer


def test_an_echo_of_the_prompts_passage_fence_is_markup_and_removed() -> None:
    echoed = '<passage id="9" title="timeit" section="Python Interface">\nUse timeit [1].'
    assert clean_answer(echoed) == "Use timeit [1]."
    assert clean_answer('Use timeit [1].\n<passage id="16" title="timeit — Meas') == (
        "Use timeit [1]."
    )


@pytest.mark.parametrize(
    "text",
    [
        "Click Next to continue, then Up to return.",  # nav words in prose, no pipes
        "| Option | Default |\n| --- | --- |\n| retries | 3 |",  # a real table
        "Write to <EMAIL_ADDRESS> about a <PERSON> [1].",  # placeholders are not tags
        "Use a < b and b > c in the comparison.",
    ],
)
def test_cleaning_leaves_prose_tables_and_placeholders_alone(text: str) -> None:
    assert clean_answer(text) == text


def test_stream_cleaner_strips_a_nav_row_split_across_tokens() -> None:
    cleaner = StreamCleaner()
    pieces = [
        "It opens",
        " at 08:00 [1].\n| Pr",
        "ev | Up | Ne",
        "xt |\nIt closes <b>late",
        "</b>.",
    ]
    out = "".join(cleaner.feed(p) for p in pieces) + cleaner.flush()
    assert "Prev" not in out and "<b>" not in out
    assert out.startswith("It opens at 08:00 [1].\n") and out.endswith("It closes late.")


def test_stream_path_strips_navigation_from_tokens() -> None:
    events = stream("It opens at 08:00 [1].\n| Prev | Up | Next |\nIt closes at 18:00 [1].", "flag")
    text = "".join(str(d["text"]) for n, d in events if n == "token")
    assert "Prev" not in text and "|" not in text
