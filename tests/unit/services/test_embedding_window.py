"""Chunking learns the embedder's window only from embedders that know it."""

from __future__ import annotations

import pytest

from services.ports import embedding_window

pytestmark = pytest.mark.unit


class Windowed:
    max_tokens = 512


class Remote:
    pass


def test_an_in_process_model_reports_its_window_and_a_server_does_not() -> None:
    assert embedding_window(Windowed()) == 512
    assert embedding_window(Remote()) is None
