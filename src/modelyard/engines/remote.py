"""The remote engine: any OpenAI-compatible server already running, here or elsewhere (LM
Studio, another modelyard, a cloud API), from a curated entry's ``url``.

Nothing is spawned: the plan is ``attached``, with the entry's ``url`` as base URL (a
trailing ``/v1`` is dropped; request paths add it). Ready when GET ``/v1/models`` answers 200
and lists the served name (the entry's ``served_name``, else its id); requests carry that
name as ``model``. ``api_key_env`` names the environment variable holding the API key, read
each time a request or a check is sent (``settings.environment_secret``) and sent as
``Authorization: Bearer``; the key itself is never in the plan, the store, logs or answers.

A URL whose host is not loopback (``localhost``, 127.0.0.0/8, ::1) or a private address
(10/8, 172.16/12, 192.168/16, fc00::/7, link-local) is external, and refused with
ExternalUrlRefused unless ``remote.allow_external`` is true. Host names other than
``localhost`` count as external: nothing is resolved here.
Memory: none on this machine.
"""

from __future__ import annotations

import ipaddress
from urllib.parse import urlsplit

from modelyard.engines.base import LaunchPlan, LaunchSpec, MeasurementKey, MemoryEstimate
from modelyard.errors import EngineError, ExternalUrlRefused
from modelyard.settings import CuratedModel, RemoteSettings


def is_local(url: str) -> bool:
    """Whether ``url``'s host is loopback or a private/link-local address (see above)."""
    host = (urlsplit(url).hostname or "").lower()
    if host == "localhost":
        return True
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return False
    return address.is_loopback or address.is_private or address.is_link_local


def base_url(url: str) -> str:
    """``url`` without a trailing slash or ``/v1``: what request paths are appended to."""
    base = url.rstrip("/")
    return base[: -len("/v1")] if base.endswith("/v1") else base


def check_url(url: str | None, model_id: str, settings: RemoteSettings) -> str:
    """The usable URL. Raises EngineError (none, not http(s)) or ExternalUrlRefused."""
    if not url:
        raise EngineError(f"model {model_id} uses the remote engine but has no `url`")
    if urlsplit(url).scheme not in ("http", "https") or not urlsplit(url).hostname:
        raise EngineError(f"model {model_id}: url {url!r} is not an http(s) URL")
    if not is_local(url) and not settings.allow_external:
        host = urlsplit(url).hostname
        raise ExternalUrlRefused(
            f"model {model_id}: {host} is outside this machine and its network; "
            "set remote.allow_external: true to allow external URLs"
        )
    return url


def models_url(entry: CuratedModel, settings: RemoteSettings) -> str:
    """A remote entry's ``/v1/models`` URL. Raises EngineError or ExternalUrlRefused."""
    return base_url(check_url(entry.url, entry.id, settings)) + "/v1/models"


class RemoteEngine:
    name = "remote"

    def __init__(self, settings: RemoteSettings) -> None:
        self.settings = settings

    def plan(self, spec: LaunchSpec) -> LaunchPlan:
        """Raises EngineError (no or bad url) or ExternalUrlRefused."""
        model = spec.model
        url = check_url(model.url, model.id, self.settings)
        return LaunchPlan(
            argv=(),
            base_url=base_url(url),
            health_path="/v1/models",
            attached=True,
            served_name=model.served_name or model.id,
            api_key_env=model.api_key_env,
        )

    def estimate(self, spec: LaunchSpec) -> MemoryEstimate:
        return MemoryEstimate(weights=0, kv_cache=0, compute=0)

    def parse_memory_log(self, lines: list[str]) -> dict[str, int] | None:
        return None

    def measurement_key(self, spec: LaunchSpec) -> MeasurementKey | None:
        return None

    def parallel_slots(self, spec: LaunchSpec) -> int | None:
        return spec.args.parallel

    def parse_metrics(self, plan: LaunchPlan, body: bytes) -> dict[str, float] | None:
        return None
