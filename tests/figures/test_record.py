"""Token counts from bodies and SSE events, and the tokens/s of one record."""

from __future__ import annotations

import json

import pytest

from modelyard.figures.record import (
    Outcome,
    RequestKind,
    usage_from_body,
    usage_from_sse_event,
)
from modelyard.gateway.protocol import PATHS, Endpoint

from .helpers import rec


def test_kinds_and_outcomes_keep_the_strings_already_stored() -> None:
    """Rows and log lines written before the enums hold these strings; so do new ones."""
    assert [kind.value for kind in RequestKind] == ["chat", "completions", "embeddings"]
    assert [outcome.value for outcome in Outcome] == ["ok", "error", "cancelled"]
    line = json.dumps(
        rec(endpoint=RequestKind.EMBEDDINGS, outcome=Outcome.CANCELLED, stream=False).to_json()
    )
    assert '"endpoint": "embeddings"' in line
    assert '"outcome": "cancelled"' in line
    assert Endpoint is RequestKind
    assert set(PATHS) == set(RequestKind)


def test_openai_usage_in_a_body() -> None:
    body = {"usage": {"prompt_tokens": 12, "completion_tokens": 34, "total_tokens": 46}}
    assert usage_from_body(body) == (12, 34)


def test_embeddings_usage_has_no_completion_tokens() -> None:
    assert usage_from_body({"usage": {"prompt_tokens": 5, "total_tokens": 5}}) == (5, None)


def test_llama_server_timings_when_usage_is_absent() -> None:
    body = {"timings": {"prompt_n": 7, "predicted_n": 9, "predicted_per_second": 40.0}}
    assert usage_from_body(body) == (7, 9)


def test_usage_wins_over_timings() -> None:
    body = {"usage": {"prompt_tokens": 1, "completion_tokens": 2}, "timings": {"prompt_n": 9}}
    assert usage_from_body(body) == (1, 2)


@pytest.mark.parametrize(
    "body",
    [{}, {"usage": None}, {"usage": {"prompt_tokens": "3"}}, {"usage": {"prompt_tokens": -1}},
     {"usage": {"prompt_tokens": True}}, {"timings": []}],
)  # fmt: skip
def test_odd_shapes_give_nothing(body: dict[str, object]) -> None:
    assert usage_from_body(body) == (None, None)


def _event(payload: dict[str, object]) -> bytes:
    return b"data: " + json.dumps(payload).encode() + b"\n\n"


def test_sse_event_with_openai_usage() -> None:
    event = _event({"choices": [], "usage": {"prompt_tokens": 3, "completion_tokens": 4}})
    assert usage_from_sse_event(event) == (3, 4)


def test_sse_event_with_llama_server_timings() -> None:
    event = _event({"choices": [{"delta": {}}], "timings": {"prompt_n": 5, "predicted_n": 6}})
    assert usage_from_sse_event(event) == (5, 6)


def test_sse_content_chunk_and_null_usage_are_not_counts() -> None:
    """vLLM and OpenAI send `"usage": null` in every chunk: that must not count as usage."""
    assert usage_from_sse_event(_event({"choices": [{"delta": {"content": "hi"}}]})) is None
    assert usage_from_sse_event(_event({"choices": [], "usage": None})) is None
    assert usage_from_sse_event(b"data: [DONE]\n\n") is None


def test_sse_chunk_of_several_events_takes_the_last_counts() -> None:
    chunk = (
        _event({"choices": [{"delta": {"content": "a"}}]})
        + _event({"usage": {"prompt_tokens": 1, "completion_tokens": 1}})
        + _event({"usage": {"prompt_tokens": 2, "completion_tokens": 8}})
        + b"data: [DONE]\n\n"
    )
    assert usage_from_sse_event(chunk) == (2, 8)


def test_sse_bare_json_payload_and_split_event() -> None:
    assert usage_from_sse_event(b'{"usage":{"prompt_tokens":1,"completion_tokens":2}}') == (1, 2)
    assert usage_from_sse_event(b'data: {"usage":{"prompt_tokens":1,"compl') is None


def test_tokens_per_s_of_a_stream_counts_time_after_the_first_token() -> None:
    assert rec(ttft_s=0.5, latency_s=2.5, tokens_out=40).tokens_per_s == pytest.approx(20.0)
    assert rec(ttft_s=None, latency_s=2.0, tokens_out=40).tokens_per_s == pytest.approx(20.0)


def test_tokens_per_s_of_a_whole_response_counts_the_whole_latency() -> None:
    """A whole response's first byte comes at the end: using it gave absurd speeds."""
    whole = rec(stream=False, ttft_s=1.99, latency_s=2.0, tokens_out=40)
    assert whole.tokens_per_s == pytest.approx(20.0)


@pytest.mark.parametrize(
    "fields",
    [{"tokens_out": None}, {"tokens_out": 0}, {"outcome": "error"},
     {"ttft_s": 1.0, "latency_s": 1.0}],
)  # fmt: skip
def test_tokens_per_s_is_none_when_not_sensible(fields: dict[str, object]) -> None:
    assert rec(**fields).tokens_per_s is None
