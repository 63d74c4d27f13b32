"""How the /api routes read a request body, and the strictness every body model shares.

The request models are strict (``STRICT``): ``"2"`` is not a number, ``0`` is not ``false``,
an unknown key is an error, and ``NaN``/``Infinity`` are refused. Pydantic's strict integers
also refuse ``2.0``, which JSON Schema (and so the OpenAPI document) counts as the integer 2;
``JsonRoute`` reads a body's integral numbers as ints, so what the document allows is taken.
Float fields take ints, so nothing else changes.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Coroutine
from typing import Any

from fastapi import Request, Response
from fastapi.routing import APIRoute
from pydantic import ConfigDict, GetJsonSchemaHandler
from pydantic.json_schema import JsonSchemaValue
from pydantic_core import CoreSchema

STRICT = ConfigDict(extra="forbid", strict=True, allow_inf_nan=False)


def _number(text: str) -> float | int:
    value = float(text)
    return int(value) if value.is_integer() else value


class JsonRequest(Request):
    async def json(self) -> Any:
        """The body as JSON, ``2.0`` read as ``2``. Raises json.JSONDecodeError."""
        if not hasattr(self, "_json"):
            self._json = json.loads(await self.body(), parse_float=_number)
        return self._json


class JsonRoute(APIRoute):
    """A route whose handler reads the body through ``JsonRequest``."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def route(request: Request) -> Response:
            return await handler(JsonRequest(request.scope, request.receive))

        return route


class OnlyNamedKeys:
    """For a ``dict`` whose keys have a pattern: pydantic writes ``patternProperties``, which
    lets any other key through in the document; this adds ``additionalProperties: false`` so
    the document refuses them too, as the validation does."""

    def __get_pydantic_json_schema__(
        self, schema: CoreSchema, handler: GetJsonSchemaHandler
    ) -> JsonSchemaValue:
        found = handler(schema)
        found["additionalProperties"] = False
        return found
