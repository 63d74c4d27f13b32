"""The request bodies the gateway reads: parsed once, checked to the minimum, kept as bytes.

The hot path runs ``json.loads`` once and checks only what routing, the persona and the
generation bound need: ``model`` (non-empty text), ``stream`` (a boolean), per endpoint
``messages`` (objects with a text ``role``; ``content`` text, a list of parts, or null),
``prompt`` or ``input``, and ``max_tokens`` (``max_completion_tokens`` too for a chat): an
integer from 1 to 2**31-1 or null, worded as OpenAI words it. The text must be Unicode: a lone
UTF-16 surrogate escape (``"\\ud800"``) is refused (it cannot be encoded again, nor stored).
Everything else goes to the backend untouched, in the client's own bytes, unless a persona
or the default ``max_tokens`` has to be added (``outgoing``). Each failure is a
ValidationFailed (or InvalidJson) naming the field.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

from modelyard.errors import (
    IntegerAboveMaximum,
    IntegerBelowMinimum,
    InvalidJson,
    InvalidType,
    ValidationFailed,
)
from modelyard.figures.record import RequestKind

Endpoint = RequestKind  # one type for the gateway's endpoints and the figures' request kinds
PATHS: dict[Endpoint, str] = {
    Endpoint.CHAT: "/v1/chat/completions",
    Endpoint.COMPLETIONS: "/v1/completions",
    Endpoint.EMBEDDINGS: "/v1/embeddings",
}
_MODEL_MAX = 256
MAX_TOKENS_MAX = 2**31 - 1  # llama-server reads it into a 32-bit int
# A \uD800-\uDFFF escape: the only way a surrogate gets into a parsed body (raw surrogate
# bytes are not UTF-8 and fail to decode). Most such escapes are valid pairs (an emoji from a
# client that escapes non-ASCII), so a match is only the cue for the exact check.
_SURROGATE_ESCAPE = re.compile(rb"\\u[dD][89a-fA-F]")


@dataclass(frozen=True, slots=True)
class Parsed:
    """One checked request. ``payload`` is the parsed body; ``body`` the bytes received;
    ``limited`` whether the client bounded the generation (``max_tokens`` or, for a chat,
    ``max_completion_tokens``)."""

    endpoint: Endpoint
    model: str
    stream: bool
    payload: dict[str, Any]
    body: bytes
    limited: bool = False


def parse(body: bytes, endpoint: Endpoint) -> Parsed:
    """Parse and check ``body``. Raises BadRequest (not JSON) or ValidationFailed (a field)."""
    try:
        payload = json.loads(body)
    except (ValueError, UnicodeDecodeError) as exc:
        raise InvalidJson(f"the body is not valid JSON: {exc}", param="body") from None
    except RecursionError:  # was a 500: '[' * 100000
        raise InvalidJson("the body is not valid JSON: nested too deeply", param="body") from None
    if not isinstance(payload, dict):
        raise InvalidJson("the body must be a JSON object", param="body")
    if b"\\u" in body and _SURROGATE_ESCAPE.search(body):
        _check_unicode(payload)
    model = payload.get("model")
    if not isinstance(model, str) or not model.strip():
        what = "is missing" if model is None else "must be a non-empty string"
        raise ValidationFailed(f"'model' {what}", param="model")
    if len(model) > _MODEL_MAX:
        raise ValidationFailed(f"'model' is longer than {_MODEL_MAX} characters", param="model")
    stream = payload.get("stream", False)
    if not isinstance(stream, bool):
        if stream is not None:
            raise ValidationFailed("'stream' must be true or false", param="stream")
        stream = False
    limited = False
    if endpoint == Endpoint.CHAT:
        _check_messages(payload.get("messages"))
        limited = _check_max_tokens(payload, "max_tokens")
        limited = _check_max_tokens(payload, "max_completion_tokens") or limited
    elif endpoint == Endpoint.COMPLETIONS:
        _check_text_or_list(payload.get("prompt"), "prompt")
        limited = _check_max_tokens(payload, "max_tokens")
    else:
        _check_text_or_list(payload.get("input"), "input")
        stream = False
    return Parsed(endpoint, model.strip(), stream, payload, body, limited)


def _check_max_tokens(payload: dict[str, Any], name: str) -> bool:
    """Whether ``name`` is given (null is not); raises as OpenAI answers a bad one (a -1 or 0
    was passed through and llama-server generated until the context was full)."""
    value = payload.get(name)
    if value is None:
        return False
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidType(
            f"Invalid type for '{name}': expected an integer, but got {_json_type(value)} instead.",
            param=name,
        )
    if value < 1:
        raise IntegerBelowMinimum(
            f"Invalid '{name}': integer below minimum value. Expected a value >= 1, but got "
            f"{value} instead.",
            param=name,
        )
    if value > MAX_TOKENS_MAX:
        raise IntegerAboveMaximum(
            f"Invalid '{name}': integer above maximum value. Expected a value <= "
            f"{MAX_TOKENS_MAX}, but got {value} instead.",
            param=name,
        )
    return True


def _json_type(value: object) -> str:
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, float):
        return "a decimal number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "an array"
    return "an object"


def _check_unicode(payload: dict[str, Any]) -> None:
    """Raises ValidationFailed naming the first string (or key) with a lone surrogate: it
    cannot be encoded as UTF-8 again (a 500 when a persona re-serialised the body), nor
    stored. Walks with its own stack: the body may be nested as deep as ``json`` allows."""
    stack: list[tuple[str, object]] = [("", payload)]
    while stack:
        where, value = stack.pop()
        if isinstance(value, str):
            if not _encodable(value):
                _refuse_surrogate(value, where or "body")
        elif isinstance(value, dict):
            for key, item in value.items():
                path = f"{where}.{key}" if where else str(key)
                if not _encodable(key):
                    _refuse_surrogate(key, where or "body")
                stack.append((path, item))
        elif isinstance(value, list):
            stack.extend((f"{where}[{i}]", item) for i, item in enumerate(value))


def _encodable(text: str) -> bool:
    if text.isascii():
        return True
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _refuse_surrogate(text: str, where: str) -> None:
    lone = next(c for c in text if 0xD800 <= ord(c) <= 0xDFFF)
    raise ValidationFailed(
        f"Invalid '{where}': the text contains a lone UTF-16 surrogate (\\u{ord(lone):04x}), "
        "which is not valid Unicode",
        param=where,
    )


def _check_messages(messages: object) -> None:
    if messages is None:
        raise ValidationFailed("'messages' is missing", param="messages")
    if not isinstance(messages, list) or not messages:
        raise ValidationFailed("'messages' must be a non-empty list", param="messages")
    for i, message in enumerate(messages):
        where = f"messages[{i}]"
        if not isinstance(message, dict):
            raise ValidationFailed(f"'{where}' must be an object", param=where)
        role = message.get("role")
        if not isinstance(role, str) or not role:
            raise ValidationFailed(
                f"'{where}.role' must be a non-empty string", param=f"{where}.role"
            )
        content = message.get("content")
        if content is not None and not isinstance(content, str | list):
            raise ValidationFailed(
                f"'{where}.content' must be a string, a list of parts or null",
                param=f"{where}.content",
            )


def _check_text_or_list(value: object, name: str) -> None:
    if value is None:
        raise ValidationFailed(f"'{name}' is missing", param=name)
    if not isinstance(value, str | list):
        raise ValidationFailed(f"'{name}' must be a string or a list", param=name)


def with_system(prompt: str, messages: list[Any]) -> list[Any]:
    """``messages`` opened by one system message holding ``prompt``, merged with the client's
    own first system message when there is one (its text after the prompt; content parts
    keep their shape, the prompt becoming a text part before them)."""
    first = messages[0] if messages else None
    if not (isinstance(first, dict) and first.get("role") == "system"):
        return [{"role": "system", "content": prompt}, *messages]
    content = first.get("content")
    if isinstance(content, list):
        merged: Any = [{"type": "text", "text": prompt + "\n\n"}, *content]
    elif isinstance(content, str) and content:
        merged = f"{prompt}\n\n{content}"
    else:
        merged = prompt
    return [{**first, "content": merged}, *messages[1:]]


def outgoing(parsed: Parsed, system_prompt: str | None, max_tokens: int | None) -> bytes:
    """The bytes to forward: the client's own, or with what the instance adds.

    - A chat with a persona (``system_prompt``): one system message first, the persona's
      prompt then the client's own system message when the conversation opens with one
      (two system turns in a row break stricter chat templates). A raw ``prompt``
      (``/v1/completions``) is never changed.
    - ``max_tokens`` (the default bound) on a chat or completion the client did not bound.
      Without a persona it is spliced into the client's bytes, not re-serialised: the body is
      a JSON object with at least ``model`` in it, so ``{"max_tokens":N,`` is still one.

    Raises InvalidJson when the body is too deeply nested to be written again.
    """
    endpoint = parsed.endpoint
    persona = bool(system_prompt) and endpoint == Endpoint.CHAT
    cap = None if parsed.limited or endpoint == Endpoint.EMBEDDINGS else max_tokens
    if not persona:
        if cap is None:
            return parsed.body
        if "max_tokens" not in parsed.payload:  # present means null: replaced below
            body = parsed.body
            start = body.index(b"{") + 1
            return b'%s"max_tokens":%d,%s' % (body[:start], cap, body[start:])
    payload = dict(parsed.payload)
    if persona:
        assert system_prompt is not None
        payload["messages"] = with_system(system_prompt, payload["messages"])
    if cap is not None:
        payload["max_tokens"] = cap
    try:
        return json.dumps(payload, ensure_ascii=False).encode()
    except RecursionError:  # parsed a few frames up the stack; written again, one too many
        raise InvalidJson("the body is not valid JSON: nested too deeply", param="body") from None
