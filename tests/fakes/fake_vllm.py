"""A fake ``vllm`` executable: ``python tests/fakes/fake_vllm.py [fake flags] serve MODEL ...``.

It takes the ``vllm serve`` flags modelyard passes (and refuses any other, as vLLM does):
``--host``, ``--port``, ``--served-model-name``, ``--max-model-len``,
``--gpu-memory-utilization``, ``--max-num-seqs``, ``--enable-sleep-mode``. As current vLLM does,
it binds its port only once "the engine is up" (after ``--load-delay`` seconds) and forks a
worker process first (vLLM's engine core), which exits when the server does.

Endpoints, as vLLM's OpenAI server documents them: ``GET /health`` (200), ``GET /v1/models``
(the served name), ``POST /v1/chat/completions`` (stream and not; 503 while sleeping),
``GET /metrics`` (Prometheus text with ``vllm:num_requests_running``,
``vllm:num_requests_waiting``, ``vllm:kv_cache_usage_perc``), and with
``VLLM_SERVER_DEV_MODE=1`` in its environment and ``--enable-sleep-mode``:
``POST /sleep?level=1|2`` (200, empty body, after ``--sleep-delay``), ``POST /wake_up`` (200
after ``--wake-delay``), ``GET /is_sleeping`` (``{"is_sleeping": bool}``). Without dev mode
those three answer 404, as in vLLM.

Fake flags (before or after ``serve``): ``--load-delay S``, ``--wake-delay S``,
``--sleep-delay S``, ``--fail-wake`` (``/wake_up`` answers 500), ``--args-file PATH`` (write
``{"argv": [...], "env": {...}}`` there before loading), ``--tokens N``.
Each request is logged to stdout, one line.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # run as a script: the repo
from tests.fakes.fake_backend import Fake, _error, _read_request, _send_json
from tests.fakes.fake_backend import parse_args as backend_args


class FakeVllm:
    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.sleeping = False
        self.level: int | None = None
        self.running = 0
        self.dev_mode = os.environ.get("VLLM_SERVER_DEV_MODE") == "1"
        # The fake backend's own defaults (every flag it reads), with the model and tokens.
        model = args.served_model_name or args.model
        chat = backend_args(["--port", "0", "--model", model, "--tokens", str(args.tokens)])
        self.chat = Fake(chat)

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                request = await _read_request(reader)
                if request is None:
                    return
                method, target, body, _ = request
                print(f"{method} {target}", flush=True)
                path, _, query = target.partition("?")
                await self.route(method, path, query, body, writer)
        except (ConnectionError, asyncio.IncompleteReadError):
            return
        finally:
            with contextlib.suppress(Exception):
                writer.close()

    async def route(
        self, method: str, path: str, query: str, body: bytes, writer: asyncio.StreamWriter
    ) -> None:
        name = self.chat.args.model
        if method == "GET" and path == "/health":
            await _send_empty(writer, 200)
        elif method == "GET" and path == "/v1/models":
            data = [{"id": name, "object": "model", "owned_by": "vllm", "root": self.args.model}]
            await _send_json(writer, 200, {"object": "list", "data": data})
        elif method == "GET" and path == "/metrics":
            await self.metrics(writer)
        elif path in ("/sleep", "/wake_up", "/is_sleeping"):
            await self.sleep_route(method, path, query, writer)
        elif method == "POST" and path == "/v1/chat/completions":
            await self.complete(body, writer)
        else:
            await _send_json(writer, 404, {"detail": "Not Found"})

    async def complete(self, body: bytes, writer: asyncio.StreamWriter) -> None:
        payload: dict[str, Any] = json.loads(body or b"{}")
        if payload.get("model") != self.chat.args.model:  # vLLM checks the model name
            message = f"The model `{payload.get('model')}` does not exist."
            await _send_json(writer, 404, _error(message, "model_not_found"))
            return
        if self.sleeping:
            await _send_json(writer, 503, _error("the engine is sleeping", "sleeping"))
            return
        self.running += 1
        try:
            await self.chat.complete("/v1/chat/completions", payload, writer)
        finally:
            self.running -= 1

    async def metrics(self, writer: asyncio.StreamWriter) -> None:
        labels = f'{{engine="0",model_name="{self.chat.args.model}"}}'
        lines = [
            "# HELP vllm:num_requests_running Number of requests in model execution batches.",
            "# TYPE vllm:num_requests_running gauge",
            f"vllm:num_requests_running{labels} {float(self.running)}",
            "# HELP vllm:num_requests_waiting Number of requests waiting to be processed.",
            "# TYPE vllm:num_requests_waiting gauge",
            f"vllm:num_requests_waiting{labels} 0.0",
            "# HELP vllm:kv_cache_usage_perc KV-cache usage. 1 means 100 percent usage.",
            "# TYPE vllm:kv_cache_usage_perc gauge",
            f"vllm:kv_cache_usage_perc{labels} {0.25 if self.running else 0.0}",
        ]
        data = ("\n".join(lines) + "\n").encode()
        head = "HTTP/1.1 200 OK\r\ncontent-type: text/plain; version=0.0.4\r\n"
        writer.write(f"{head}content-length: {len(data)}\r\n\r\n".encode() + data)
        await writer.drain()

    async def sleep_route(
        self, method: str, path: str, query: str, writer: asyncio.StreamWriter
    ) -> None:
        if not self.dev_mode:  # vLLM registers these routes only in dev mode
            await _send_json(writer, 404, {"detail": "Not Found"})
            return
        if path == "/is_sleeping" and method == "GET":
            await _send_json(writer, 200, {"is_sleeping": self.sleeping})
            return
        if method != "POST":
            await _send_json(writer, 405, {"detail": "Method Not Allowed"})
            return
        if not self.args.enable_sleep_mode:
            await _send_json(writer, 500, _error("Sleep mode is not enabled", "sleep"))
            return
        if path == "/sleep":
            level = int(dict(p.split("=", 1) for p in query.split("&") if "=" in p).get("level", 1))
            await asyncio.sleep(self.args.sleep_delay)
            self.sleeping, self.level = True, level
            print(f"sleeping at level {level}", flush=True)
            await _send_empty(writer, 200)
            return
        if self.args.fail_wake:
            await _send_json(writer, 500, _error("wake up failed", "wake"))
            return
        await asyncio.sleep(self.args.wake_delay if self.sleeping else 0.0)
        self.sleeping, self.level = False, None
        print("awake", flush=True)
        await _send_empty(writer, 200)


async def _send_empty(writer: asyncio.StreamWriter, status: int) -> None:
    writer.write(f"HTTP/1.1 {status} OK\r\ncontent-length: 0\r\n\r\n".encode())
    await writer.drain()


def _fork_worker() -> None:
    """A child process like vLLM's engine core; it ends when the server's pipe closes."""
    read_end, write_end = os.pipe()
    if os.fork() == 0:
        os.close(write_end)
        os.read(read_end, 1)  # blocks until the server exits (EOF)
        os._exit(0)
    os.close(read_end)  # the write end stays open in the server for its lifetime


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="vllm", description="fake vLLM")
    parser.add_argument("command", choices=["serve"])
    parser.add_argument("model")
    parser.add_argument("--host", default="0.0.0.0")
    parser.add_argument("--port", type=int, default=8000)
    parser.add_argument("--served-model-name", default=None)
    parser.add_argument("--max-model-len", type=int, default=None)
    parser.add_argument("--gpu-memory-utilization", type=float, default=0.9)
    parser.add_argument("--max-num-seqs", type=int, default=256)
    parser.add_argument("--enable-sleep-mode", action="store_true")
    parser.add_argument("--load-delay", type=float, default=0.0)
    parser.add_argument("--wake-delay", type=float, default=0.0)
    parser.add_argument("--sleep-delay", type=float, default=0.0)
    parser.add_argument("--fail-wake", action="store_true")
    parser.add_argument("--args-file", default=None)
    parser.add_argument("--tokens", type=int, default=4)
    args = parser.parse_args(argv)
    if not 0 < args.gpu_memory_utilization <= 1:
        parser.error("--gpu-memory-utilization must be in (0, 1]")
    return args


async def serve(args: argparse.Namespace) -> None:
    fake = FakeVllm(args)
    await asyncio.sleep(args.load_delay)  # the engine starting: the port is not bound yet
    server = await asyncio.start_server(fake.handle, args.host, args.port)
    print(f"fake vllm pid {os.getpid()} serving {args.model} on {args.host}:{args.port}")
    sys.stdout.flush()
    async with server:
        await server.serve_forever()


def main(argv: list[str] | None = None) -> None:
    args = parse_args(sys.argv[1:] if argv is None else argv)
    if args.args_file:
        path = Path(args.args_file)
        staging = path.with_name(path.name + ".tmp")
        staging.write_text(json.dumps({"argv": sys.argv[1:], "env": dict(os.environ)}))
        staging.replace(path)
    _fork_worker()
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(serve(args))


if __name__ == "__main__":
    main()
