"""Optional API keys for ``/v1``: ``Authorization: Bearer <key>``, compared in constant time."""

from __future__ import annotations

import hmac
from collections.abc import Iterable

from modelyard.errors import Unauthorized
from modelyard.settings import ApiKey


class Keys:
    """The configured keys. With none configured every request is let in."""

    def __init__(self, keys: Iterable[ApiKey]) -> None:
        self._keys = tuple((k.name, k.key.encode()) for k in keys)

    def check(self, authorization: str | None) -> str | None:
        """The name of the key presented, ``None`` when no keys are configured.

        Raises Unauthorized when keys are configured and the header is missing, malformed or
        holds none of them. Every configured key is compared (``hmac.compare_digest``), so the
        time taken does not say which key was close.
        """
        if not self._keys:
            return None
        if authorization is None:
            raise Unauthorized("missing API key: send 'Authorization: Bearer <key>'")
        scheme, _, token = authorization.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise Unauthorized("malformed Authorization header: expected 'Bearer <key>'")
        presented = token.strip().encode()
        found: str | None = None
        for name, key in self._keys:
            if hmac.compare_digest(presented, key) and found is None:
                found = name
        if found is None:
            raise Unauthorized("invalid API key")
        return found

    def admits(self, authorization: str | None) -> bool:
        """True when no keys are configured or the header holds one of them (never raises)."""
        if not self._keys:
            return True
        try:
            self.check(authorization)
        except Unauthorized:
            return False
        return True
