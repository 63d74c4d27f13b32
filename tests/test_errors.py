"""The one exception tree: every error users see is defined in errors.py and drawn there."""

from __future__ import annotations

import importlib
import pkgutil
import re

import modelyard
from modelyard import errors
from modelyard.errors import ModelyardError


def _all_subclasses(cls: type[ModelyardError]) -> set[type[ModelyardError]]:
    found = set(cls.__subclasses__())
    for sub in list(found):
        found |= _all_subclasses(sub)
    return found


def test_every_error_is_defined_and_drawn_in_errors_py() -> None:
    """Prevents an error class defined next to the code that raises it, outside the tree."""
    for module in pkgutil.walk_packages(modelyard.__path__, "modelyard."):
        importlib.import_module(module.name)
    defined = {c for c in _all_subclasses(ModelyardError) if c.__module__.startswith("modelyard")}
    assert {cls.__module__ for cls in defined} == {"modelyard.errors"}
    drawn = set(re.findall(r"── (\w+)", errors.__doc__ or ""))
    assert drawn == {cls.__name__ for cls in defined}
