"""The request bodies the gateway reads: parsed once, checked to the minimum, kept as bytes.

The hot path runs ``json.loads`` once and checks only what routing and the persona need:
``model`` (non-empty text), ``stream`` (a boolean), and per endpoint ``messages`` (objects
with a text ``role``; ``content`` text, a list of parts, or null), ``prompt`` or ``input``.
Everything else goes to the backend untouched, in the client's own bytes, unless a persona
has to be added (``with_persona``). Each failure is a ValidationFailed naming the field.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from modelyard.errors import InvalidJson, ValidationFailed
from modelyard.figures.record import RequestKind

Endpoint = RequestKind  # one type for the gateway's endpoints and the figures' request kinds
PATHS: dict[Endpoint, str] = {
    Endpoint.CHAT: "/v1/chat/completions",
    Endpoint.COMPLETIONS: "/v1/completions",
    Endpoint.EMBEDDINGS: "/v1/embeddings",
}
_MODEL_MAX = 256


@dataclass(frozen=True, slots=True)
class Parsed:
    """One checked request. ``payload`` is the parsed body; ``body`` the bytes received."""

    endpoint: Endpoint
    model: str
    stream: bool
    payload: dict[str, Any]
    body: bytes


def parse(body: bytes, endpoint: Endpoint) -> Parsed:
    """Parse and check ``body``. Raises BadRequest (not JSON) or ValidationFailed (a field)."""
    try:
        payload = json.loads(body)
    except (ValueError, UnicodeDecodeError) as exc:
        raise InvalidJson(f"the body is not valid JSON: {exc}", param="body") from None
    if not isinstance(payload, dict):
        raise InvalidJson("the body must be a JSON object", param="body")
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
    if endpoint == Endpoint.CHAT:
        _check_messages(payload.get("messages"))
    elif endpoint == Endpoint.COMPLETIONS:
        _check_text_or_list(payload.get("prompt"), "prompt")
    else:
        _check_text_or_list(payload.get("input"), "input")
        stream = False
    return Parsed(endpoint, model.strip(), stream, payload, body)


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


def with_persona(parsed: Parsed, system_prompt: str | None) -> bytes:
    """The bytes to forward: the client's own, or for a chat with a persona, the messages with
    the persona first as a system message (a client's own system message stays, after it).
    A raw ``prompt`` (``/v1/completions``) is never changed.
    """
    if not system_prompt or parsed.endpoint != Endpoint.CHAT:
        return parsed.body
    payload = dict(parsed.payload)
    payload["messages"] = [{"role": "system", "content": system_prompt}, *payload["messages"]]
    return json.dumps(payload, ensure_ascii=False).encode()
