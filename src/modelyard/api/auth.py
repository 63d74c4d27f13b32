"""Who is calling /api and /metrics, and whether the server may listen where it was asked to.

Admin keys (``api.admin_keys``) are separate from inference keys (``gateway.api_keys``).
When any key of either kind is configured, every /api route needs an admin key: no key or an
unknown key is 401, an inference key is 403. With no keys at all, callers act as ``local``
and the server must listen on loopback only (``check_bind``). Another address needs an admin
key, and /v1 keys too unless ``gateway.public_inference`` says that anyone may run models.
With ``api.metrics_keys``, ``GET /metrics`` needs one of them or an admin key
(``check_metrics``).

Keys are compared with ``hmac.compare_digest`` over every configured key, so the time taken
does not tell how much of a key was right, nor which key matched.
"""

from __future__ import annotations

import hmac
import ipaddress
from dataclasses import dataclass
from typing import Literal

from modelyard.errors import ConfigError, Forbidden, Unauthorized
from modelyard.settings import ApiKey, Settings

LOCAL = "local"


@dataclass(frozen=True)
class Caller:
    """The caller of one request: the key's name (``local`` without keys) and its kind."""

    name: str
    kind: Literal["admin", "inference", "local"]


def _match(presented: str, keys: list[ApiKey]) -> ApiKey | None:
    found: ApiKey | None = None
    raw = presented.encode("utf-8")
    for key in keys:  # no early exit: every key is compared every time
        if hmac.compare_digest(raw, key.key.encode("utf-8")):
            found = key
    return found


def presented_key(authorization: str | None, x_api_key: str | None) -> str | None:
    """The key from ``Authorization: Bearer KEY`` or ``X-API-Key: KEY``, if any."""
    if authorization:
        scheme, _, value = authorization.partition(" ")
        if scheme.lower() == "bearer" and value.strip():
            return value.strip()
    if x_api_key and x_api_key.strip():
        return x_api_key.strip()
    return None


def keys_configured(settings: Settings) -> bool:
    return bool(settings.api.admin_keys or settings.gateway.api_keys)


def identify(settings: Settings, presented: str | None) -> Caller:
    """The admin caller for ``presented``. Raises Unauthorized (none or unknown) or
    Forbidden (an inference key). Without any configured key, every caller is ``local``."""
    if not keys_configured(settings):
        return Caller(LOCAL, "local")
    if presented is None:
        raise Unauthorized(
            "this server needs an admin key: send 'Authorization: Bearer KEY'",
            param="authorization",
        )
    admin = _match(presented, list(settings.api.admin_keys))
    inference = _match(presented, list(settings.gateway.api_keys))
    if admin is not None:
        return Caller(admin.name, "admin")
    if inference is not None:
        raise Forbidden(
            f"key '{inference.name}' is an inference key; the management API needs an admin key",
            param="authorization",
        )
    raise Unauthorized("unknown API key", param="authorization")


def is_loopback(host: str) -> bool:
    """True for ``localhost`` and loopback addresses (127.0.0.0/8, ::1)."""
    if host.strip().lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def check_bind(settings: Settings, host: str | None = None) -> None:
    """Refuse to serve on a non-loopback address without an admin key, or with an open /v1
    (no ``gateway.api_keys``) unless ``gateway.public_inference`` is set.

    Called by ``modelyard serve`` before it binds and by ``create_app``. Raises ConfigError
    saying why and what to do.
    """
    where = host if host is not None else settings.server.host
    if is_loopback(where):
        return
    if not settings.api.admin_keys:
        raise ConfigError(
            f"refusing to listen on {where}: without an admin key anyone who can reach this "
            "address could start and stop models and change settings; add one under "
            "api.admin_keys in the config file (name and key), or listen on 127.0.0.1"
        )
    if not settings.gateway.api_keys and not settings.gateway.public_inference:
        raise ConfigError(
            f"refusing to listen on {where}: /v1 has no API key, so anyone who can reach "
            "this address could run models (and make them load); add one under "
            "gateway.api_keys, set gateway.public_inference: true to serve inference to "
            "anyone, or listen on 127.0.0.1"
        )


def check_metrics(settings: Settings, presented: str | None) -> None:
    """Let a ``GET /metrics`` through: always without ``api.metrics_keys``, else with one of
    them or an admin key. Raises Unauthorized (no key or another key)."""
    metrics = list(settings.api.metrics_keys)
    if not metrics:
        return
    if presented is None:
        raise Unauthorized(
            "/metrics needs a metrics key: send 'Authorization: Bearer KEY'",
            param="authorization",
        )
    found = _match(presented, metrics)
    admin = _match(presented, list(settings.api.admin_keys))
    if found is None and admin is None:
        raise Unauthorized("unknown metrics key", param="authorization")


def identify_any(settings: Settings, presented: str | None) -> Caller:
    """Like ``identify``, but an inference key is let in too (read-only /v1 routes)."""
    if not keys_configured(settings):
        return Caller(LOCAL, "local")
    inference = _match(presented or "", list(settings.gateway.api_keys))
    if presented is not None and inference is not None:
        return Caller(inference.name, "inference")
    return identify(settings, presented)
