"""A fake Ollama server: ``python tests/fakes/fake_ollama.py --port PORT [flags]``.

Speaks the documented Ollama API (docs/api.md of ollama/ollama) on 127.0.0.1:

``GET /`` ("Ollama is running"), ``GET /api/version`` (``{"version": ...}``), ``GET /api/tags``
(the models in its store), ``GET /api/ps`` (the loaded ones, with ``size``, ``size_vram``,
``expires_at``), ``POST /api/generate`` with no prompt: loads the model (after
``--load-delay``) and keeps it for ``keep_alive`` (a negative value: until told; ``0``:
unloads it now), answering ``{"model", "created_at", "response": "", "done": true,
"done_reason": "load" | "unload"}``; a model not in the store answers 404 ``{"error":
"model \\"NAME\\" not found, try pulling it first"}``. ``GET /v1/models`` and ``POST
/v1/chat/completions`` (OpenAI-compatible, stream and not; a chat loads the model as Ollama
does).

Flags: ``--port N``, ``--models a:latest,b:1b`` (its store), ``--load-delay S``,
``--size BYTES``, ``--size-vram BYTES``. Each request is logged to stdout, one line.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # run as a script: the repo
from tests.fakes.fake_backend import Fake, _read_request, _send_json
from tests.fakes.fake_backend import parse_args as backend_args


class FakeOllama:
    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.store = [m for m in args.models.split(",") if m]
        self.loaded: dict[str, float | None] = {}  # name -> expiry (None: never)

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                request = await _read_request(reader)
                if request is None:
                    return
                method, target, body, _ = request
                print(f"{method} {target} {body.decode('utf-8', 'replace')}", flush=True)
                await self.route(method, target.split("?", 1)[0], body, writer)
        except (ConnectionError, asyncio.IncompleteReadError):
            return
        finally:
            with contextlib.suppress(Exception):
                writer.close()

    async def route(
        self, method: str, path: str, body: bytes, writer: asyncio.StreamWriter
    ) -> None:
        self.expire()
        if method == "GET" and path == "/":
            text = b"Ollama is running"
            head = f"HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\ncontent-length: {len(text)}"
            writer.write(head.encode() + b"\r\n\r\n" + text)
            await writer.drain()
        elif method == "GET" and path == "/api/version":
            await _send_json(writer, 200, {"version": "0.12.0"})
        elif method == "GET" and path == "/api/tags":
            await _send_json(writer, 200, {"models": [self.tag(m) for m in self.store]})
        elif method == "GET" and path == "/api/ps":
            await _send_json(writer, 200, {"models": [self.running(m) for m in self.loaded]})
        elif method == "POST" and path == "/api/generate":
            await self.generate(json.loads(body or b"{}"), writer)
        elif method == "GET" and path == "/v1/models":
            data = [{"id": m, "object": "model", "owned_by": "library"} for m in self.store]
            await _send_json(writer, 200, {"object": "list", "data": data})
        elif method == "POST" and path == "/v1/chat/completions":
            await self.chat(json.loads(body or b"{}"), writer)
        else:
            await _send_json(writer, 404, {"error": "404 page not found"})

    async def generate(self, payload: dict[str, Any], writer: asyncio.StreamWriter) -> None:
        name = str(payload.get("model"))
        if name not in self.store:
            message = f'model "{name}" not found, try pulling it first'
            await _send_json(writer, 404, {"error": message})
            return
        keep_alive = payload.get("keep_alive", 300)
        reason = "load"
        if keep_alive == 0:
            self.loaded.pop(name, None)
            reason = "unload"
        else:
            if name not in self.loaded:
                await asyncio.sleep(self.args.load_delay)
            seconds = float(keep_alive)
            self.loaded[name] = None if seconds < 0 else time.time() + seconds
        answer = {
            "model": name,
            "created_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "response": "",
            "done": True,
            "done_reason": reason,
        }
        await _send_json(writer, 200, answer)

    async def chat(self, payload: dict[str, Any], writer: asyncio.StreamWriter) -> None:
        name = str(payload.get("model"))
        if name not in self.store:
            error = {"message": f'model "{name}" not found, try pulling it first'}
            await _send_json(writer, 404, {"error": {**error, "type": "api_error"}})
            return
        self.loaded.setdefault(name, time.time() + 300)
        chat = backend_args(["--port", "0", "--model", name, "--tokens", "4"])
        await Fake(chat).complete("/v1/chat/completions", payload, writer)

    def expire(self) -> None:
        now = time.time()
        for name, until in list(self.loaded.items()):
            if until is not None and until <= now:
                del self.loaded[name]

    def tag(self, name: str) -> dict[str, Any]:
        return {"name": name, "model": name, "size": self.args.size, "digest": "0" * 64}

    def running(self, name: str) -> dict[str, Any]:
        until = self.loaded[name]
        expires = (
            "2318-01-01T00:00:00Z"
            if until is None
            else time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(until))
        )
        size = {"size": self.args.size, "size_vram": self.args.size_vram}
        return {**self.tag(name), **size, "expires_at": expires}


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description="fake Ollama server")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--models", default="qwen2.5:0.5b")
    parser.add_argument("--load-delay", type=float, default=0.0)
    parser.add_argument("--size", type=int, default=500_000_000)
    parser.add_argument("--size-vram", type=int, default=400_000_000)
    return parser.parse_args(argv)


async def serve(args: argparse.Namespace) -> None:
    server = await asyncio.start_server(FakeOllama(args).handle, "127.0.0.1", args.port)
    print(f"fake ollama listening on 127.0.0.1:{args.port}", flush=True)
    async with server:
        await server.serve_forever()


def main(argv: list[str] | None = None) -> None:
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(serve(parse_args(sys.argv[1:] if argv is None else argv)))


if __name__ == "__main__":
    main()
