"""The environment a server gets: the manager's, less what is not meant for it, plus its mark.

A backend (llama-server, a user's ``command``, and whatever either forks) needs neither
modelyard's settings nor its keys, yet ``MODELYARD_API_KEY`` or
``MODELYARD_GATEWAY__API_KEYS`` would reach every one of them through a plain
``{**os.environ, ...}``. So a child gets the manager's environment minus every
``MODELYARD_*`` variable and every variable whose name looks like a secret: one of its
``_``-separated words ends in KEY, TOKEN, SECRET or PASSWORD (``HF_TOKEN``,
``OPENAI_API_KEY``, ``AWS_SECRET_ACCESS_KEY``, ``PGPASSWORD``; not
``TOKENIZERS_PARALLELISM``, which a substring match would drop). A variable the launch plan
names in ``pass_env`` is kept all the same. Then come the plan's own ``env``, and last the
spawn mark (``MARK``), which lets the fleet find every process started for a server after a
crash, even one that left the server's session (see ``modelyard.fleet.spawn``).
"""

from __future__ import annotations

import re
from collections.abc import Collection, Mapping

MARK = "MODELYARD_SPAWN_MARK"
_OWN_PREFIX = "MODELYARD_"
_SECRET_WORD = re.compile(r"(KEY|TOKEN|SECRET|PASSWORD)S?$")


def looks_secret(name: str) -> bool:
    """True when a word of ``name`` (split at ``_``, any case) ends in KEY, TOKEN, SECRET or
    PASSWORD (or their plurals)."""
    return any(_SECRET_WORD.search(word) for word in name.upper().split("_") if word)


def withheld(name: str) -> bool:
    """True for a variable a child does not get unless its plan asks for it."""
    return name.upper().startswith(_OWN_PREFIX) or looks_secret(name)


def child_environment(
    base: Mapping[str, str],
    env: Mapping[str, str],
    pass_env: Collection[str] = (),
    mark: str | None = None,
) -> dict[str, str]:
    """``base`` minus the withheld variables not named in ``pass_env``, then ``env``, then
    the mark. Pure: the caller passes ``os.environ``."""
    kept = set(pass_env)
    child = {name: value for name, value in base.items() if name in kept or not withheld(name)}
    child.update(env)
    if mark is not None:
        child[MARK] = mark
    return child
