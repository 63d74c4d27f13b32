"""One exception tree for modelyard.

Every error knows how it is shown: its HTTP status and its OpenAI error ``type``/``code``.
The gateway renders them in OpenAI's shape, the management API as JSON, the CLI as one line.
Every error raised for a user to read is defined here, whichever layer raises it.

    ModelyardError
    ├── ConfigError            bad config file or environment value       (500 at start, CLI exit 2)
    ├── BadRequest             malformed or invalid input                  400
    │   ├── ValidationFailed   a named field is wrong                      400
    │   │   ├── InvalidType    a field of the wrong JSON type (OpenAI's ``invalid_type``)
    │   │   ├── IntegerBelowMinimum  (OpenAI's ``integer_below_min_value``)
    │   │   ├── IntegerAboveMaximum  (OpenAI's ``integer_above_max_value``)
    │   │   └── InvalidReference  well-formed, but names what is not there  400
    │   ├── InvalidJson        a /v1 body that is not a JSON object
    │   ├── BodyTooLarge       a /v1 body over gateway.max_body_bytes      413
    │   └── BodyTimeout        a body not in within gateway.body_timeout_s 408
    ├── Unauthorized           missing or wrong key                        401
    ├── Forbidden              a key without the right to do this          403
    │   └── OriginNotAllowed   a preflight from an origin not in gateway.cors_origins
    ├── NotFound               unknown model, instance, profile...         404
    │   ├── ModelNotFound
    │   ├── InstanceNotFound
    │   ├── ProfileNotFound
    │   ├── PresetNotFound
    │   └── RoleNotFound       no enabled model has the role asked for
    ├── Conflict               a concurrent change, a duplicate id          409
    │   └── ManagerRunning     a manager owns the data folder: a second serve,
    │                          or a CLI command that would write its store
    ├── RateLimited            a full queue                                429
    ├── CatalogError           discovery or metadata failure               500
    │   └── GGUFError          a file that is not a readable GGUF
    ├── EngineError            cannot build or run an engine's command      400
    │   ├── BinaryNotFound     the server program is not installed          503
    │   ├── DuplicateFlag
    │   └── ExternalUrlRefused a remote URL outside this machine/LAN while    403
    │                          remote.allow_external is false
    ├── FleetError             an instance cannot be started/stopped        503
    │   ├── NoFreePort
    │   ├── StartFailed
    │   └── InsufficientMemory                                          507
    │       └── ModelLimitReached  max_models_loaded models loaded, none
    │                              may be unloaded (busy or pinned)     507
    ├── UpstreamError          a backend failed                            502
    │   ├── UpstreamRefused    connect refused: nothing was sent, safe to send again
    │   └── UpstreamTimeout                                             504
    └── StoreError             the SQLite store cannot be used (read)       503
        └── StoreUnwritable    a write SQLite refused (read-only, full,     503
                               failing disk, locked); nothing was changed
"""

from __future__ import annotations

from typing import Any, ClassVar


class ModelyardError(Exception):
    """Base of every error modelyard raises on purpose."""

    status: ClassVar[int] = 500
    openai_type: ClassVar[str] = "server_error"
    code: ClassVar[str] = "internal_error"

    def __init__(self, message: str, *, param: str | None = None, **extra: Any) -> None:
        super().__init__(message)
        self.message = message
        self.param = param
        self.extra = extra

    def to_openai(self) -> dict[str, Any]:
        """The body OpenAI clients expect: ``{"error": {message, type, param, code}}``."""
        return {
            "error": {
                "message": self.message,
                "type": self.openai_type,
                "param": self.param,
                "code": self.code,
                **self.extra,
            }
        }


class ConfigError(ModelyardError):
    code = "config_error"


class BadRequest(ModelyardError):
    status = 400
    openai_type = "invalid_request_error"
    code = "bad_request"


class ValidationFailed(BadRequest):
    code = "invalid_value"


class InvalidType(ValidationFailed):
    code = "invalid_type"


class IntegerBelowMinimum(ValidationFailed):
    code = "integer_below_min_value"


class IntegerAboveMaximum(ValidationFailed):
    code = "integer_above_max_value"


class InvalidReference(ValidationFailed):
    """Input that matches the documented schema but cannot be used: it names a model or preset
    the catalog does not have, lists a tier twice, differs from the config file, or contradicts
    the path. A schema cannot say these, so clients (and the API's schema tests) tell them from
    a malformed request (``invalid_value``) by this code."""

    code = "invalid_reference"


class InvalidJson(BadRequest):
    code = "invalid_json"


class BodyTooLarge(BadRequest):
    status = 413
    code = "body_too_large"


class BodyTimeout(BadRequest):
    """The client did not send its whole body in time (a stalled or lying upload)."""

    status = 408
    code = "body_timeout"


class Unauthorized(ModelyardError):
    status = 401
    openai_type = "authentication_error"
    code = "invalid_api_key"


class Forbidden(ModelyardError):
    status = 403
    openai_type = "permission_error"
    code = "forbidden"


class OriginNotAllowed(Forbidden):
    """A browser's preflight from an origin not in ``gateway.cors_origins``."""

    code = "origin_not_allowed"


class NotFound(ModelyardError):
    status = 404
    openai_type = "invalid_request_error"
    code = "not_found"


class ModelNotFound(NotFound):
    code = "model_not_found"


class InstanceNotFound(NotFound):
    code = "instance_not_found"


class ProfileNotFound(NotFound):
    code = "profile_not_found"


class PresetNotFound(NotFound):
    code = "preset_not_found"


class RoleNotFound(NotFound):
    code = "role_not_found"


class Conflict(ModelyardError):
    status = 409
    openai_type = "invalid_request_error"
    code = "conflict"


class ManagerRunning(Conflict):
    """A ``modelyard serve`` owns this data folder (its runtime file names a live process):
    a second one may not start over it, and the CLI may not write its store behind its back."""

    code = "manager_running"


class RateLimited(ModelyardError):
    status = 429
    openai_type = "rate_limit_error"
    code = "queue_full"


class CatalogError(ModelyardError):
    code = "catalog_error"


class GGUFError(CatalogError):
    code = "bad_gguf"


class EngineError(ModelyardError):
    status = 400
    openai_type = "invalid_request_error"
    code = "engine_error"


class BinaryNotFound(EngineError):
    """The engine's server program is not installed: the request was fine, this machine
    cannot serve it (so 503, not the 400 of a bad argument)."""

    status = 503
    openai_type = "server_error"
    code = "binary_not_found"


class ExternalUrlRefused(EngineError):
    """A remote engine's URL is neither loopback nor a private address, and
    ``remote.allow_external`` is false: what may be sent outside is not decided yet."""

    status = 403
    openai_type = "permission_error"
    code = "external_url_refused"


class DuplicateFlag(EngineError):
    code = "duplicate_flag"


class FleetError(ModelyardError):
    status = 503
    code = "fleet_error"


class NoFreePort(FleetError):
    code = "no_free_port"


class StartFailed(FleetError):
    code = "start_failed"


class InsufficientMemory(FleetError):
    status = 507
    code = "insufficient_memory"


class ModelLimitReached(InsufficientMemory):
    """``max_models_loaded`` distinct models are loaded and none of them may be unloaded."""

    code = "model_limit_reached"


class UpstreamError(ModelyardError):
    status = 502
    openai_type = "upstream_error"
    code = "upstream_error"


class UpstreamRefused(UpstreamError):
    """The backend refused the connection: the request was never sent, so sending it again
    (once the instance is back) cannot repeat anything."""


class UpstreamTimeout(UpstreamError):
    status = 504
    code = "upstream_timeout"


class StoreError(ModelyardError):
    """The store cannot be used. 503: the request was fine, try again once the store's file
    and disk are healthy (``Store.open`` raises it too; the CLI shows it as one line)."""

    status = 503
    code = "store_error"


class StoreUnwritable(StoreError):
    """SQLite refused a write (read-only file, full or failing disk, locked past its busy
    timeout). The change was rolled back: nothing was changed."""

    code = "store_unwritable"
