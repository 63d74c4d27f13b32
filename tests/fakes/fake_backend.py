"""A fake OpenAI-compatible backend, run as a real subprocess (stdlib only, starts in ~50 ms).

Usage: ``python tests/fakes/fake_backend.py --port PORT [flags]``. Listens on 127.0.0.1.

Flags (stable: the fleet, gateway and bench tests rely on them):

``--port N``               port to listen on (required)
``--model NAME``           the model id it reports (default ``fake``)
``--ready-after S``        ``/health`` answers 503 until S seconds after the process was created
                           (measured from the process's creation time, so interpreter start-up
                           counts towards S)
``--never-ready``          ``/health`` always answers 503
``--die-after S``          exit with code 3 S seconds after start
``--wedge-after S``        after S seconds stop answering anything (health included) but stay
                           alive with connections open
``--ignore-sigterm``       ignore SIGTERM (only SIGKILL stops it)
``--delay S``              wait S seconds before the first byte of every completion/embedding
``--tokens N``             completion length in tokens (default 8; ``max_tokens`` caps it)
``--tokens-per-s R``       generation speed (default 0: as fast as possible)
``--fail-after N``         after N completion/embedding requests answer 500 with an OpenAI error
``--die-mid-stream``       exit (code 4) after two chunks of the first streamed completion
``--env-file PATH``        write its environment to PATH as a JSON object before listening
                           (written to PATH.tmp, then renamed: a reader never sees half)
``--require-key KEY``      answer 401 (OpenAI-shaped) to any request without
                           ``Authorization: Bearer KEY``, as a cloud API does
``--setsid``               leave its parent's session first (``setsid()``), as a daemonising
                           worker does; for a fake started by a wrapper (``sh -c '... &
                           wait'``), since the fleet's direct child already leads a session
``--respond TEXT``         answer every chat completion with TEXT (instead of ``tok0 tok1 ...``),
                           streamed in pieces of ``PIECE_CHARS`` characters, so markup such as
                           ``<think>`` or a code fence is split across events as a model splits it
``--reasoning TEXT``       a thinking model's reasoning, sent before the answer the way
                           llama-server sends it: ``reasoning_content`` in the stream's deltas
                           and in the message when not streamed
``--header NAME:VALUE``    an extra header on every completion answer (repeatable; the value may
                           be empty, as llama-server's ``access-control-allow-origin`` is)

Endpoints: ``GET /health``, ``GET /v1/models``, ``POST /v1/chat/completions`` (stream and not;
SSE ends with ``data: [DONE]``; ``usage`` in the final response / last chunk),
``POST /v1/completions``, ``POST /v1/embeddings``, ``GET /_received`` (every request body
received so far, as a JSON list, oldest first).

Every completion response carries header ``x-fake-received``: the request's ``messages`` (or
``prompt``) as compact ASCII JSON, and ``x-fake-pid`` with the server's pid. Generated text is
``"tok0 tok1 ..."``. Each request is logged to stdout, one line.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import signal
import sys
import time
from pathlib import Path
from typing import Any

_REASONS = {200: "OK", 400: "Bad Request", 401: "Unauthorized", 404: "Not Found"}
_REASONS[500] = "Internal Server Error"
_REASONS[503] = "Service Unavailable"


def _created_at() -> float:
    """The process's creation time (wall clock), from /proc; ``time.time()`` elsewhere."""
    try:
        with open(f"/proc/{os.getpid()}/stat", "rb") as handle:
            fields = handle.read().rsplit(b")", 1)[1].split()
        start_ticks = int(fields[19])
        with open("/proc/stat", "rb") as handle:
            boot = next(int(line.split()[1]) for line in handle if line.startswith(b"btime"))
        return boot + start_ticks / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError, StopIteration):
        return time.time()


class Fake:
    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.started = _created_at()
        self.requests = 0
        self.received: list[Any] = []
        self.wedged = False
        self.streams = 0

    def healthy(self) -> bool:
        if self.args.never_ready:
            return False
        return bool(time.time() >= self.started + self.args.ready_after)

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                request = await _read_request(reader)
                if request is None:
                    return
                if self.wedged:
                    await asyncio.Event().wait()  # never answer, keep the connection open
                method, path, body, headers = request
                print(f"{method} {path}", flush=True)
                wanted = self.args.require_key
                if wanted and headers.get("authorization") != f"Bearer {wanted}":
                    error = _error("Incorrect API key provided", "invalid_api_key")
                    await _send_json(writer, 401, error)
                    continue
                keep = await self.route(method, path.split("?", 1)[0], body, writer)
                if not keep:
                    return
        except (ConnectionError, asyncio.IncompleteReadError):
            return
        finally:
            with contextlib.suppress(Exception):
                writer.close()

    async def route(
        self, method: str, path: str, body: bytes, writer: asyncio.StreamWriter
    ) -> bool:
        if method == "GET" and path == "/health":
            if self.healthy():
                return await _send_json(writer, 200, {"status": "ok"})
            return await _send_json(writer, 503, {"error": {"message": "Loading model"}})
        if method == "GET" and path == "/v1/models":
            data = [{"id": self.args.model, "object": "model", "owned_by": "fake"}]
            return await _send_json(writer, 200, {"object": "list", "data": data})
        if method == "GET" and path == "/_received":
            return await _send_json(writer, 200, self.received)
        if method == "POST" and path in (
            "/v1/chat/completions",
            "/v1/completions",
            "/v1/embeddings",
        ):
            try:
                payload = json.loads(body or b"{}")
            except ValueError:
                return await _send_json(writer, 400, _error("body is not JSON", "bad_request"))
            self.received.append(payload)
            self.requests += 1
            if self.args.fail_after is not None and self.requests > self.args.fail_after:
                return await _send_json(writer, 500, _error("injected failure", "fake_failure"))
            if self.args.delay:
                await asyncio.sleep(self.args.delay)
            if path == "/v1/embeddings":
                return await self.embeddings(payload, writer)
            return await self.complete(path, payload, writer)
        return await _send_json(writer, 404, _error(f"no route {method} {path}", "not_found"))

    async def embeddings(self, payload: dict[str, Any], writer: asyncio.StreamWriter) -> bool:
        inputs = payload.get("input", "")
        items = inputs if isinstance(inputs, list) else [inputs]
        data = [
            {"object": "embedding", "index": i, "embedding": [0.1 * (i + 1)] * 8}
            for i in range(len(items))
        ]
        usage = {"prompt_tokens": len(items), "total_tokens": len(items)}
        body = {"object": "list", "data": data, "model": self.args.model, "usage": usage}
        return await _send_json(writer, 200, body)

    async def complete(
        self, path: str, payload: dict[str, Any], writer: asyncio.StreamWriter
    ) -> bool:
        chat = path == "/v1/chat/completions"
        received = payload.get("messages") if chat else payload.get("prompt")
        headers = {
            "x-fake-received": json.dumps(received, separators=(",", ":"), ensure_ascii=True),
            "x-fake-pid": str(os.getpid()),
        }
        for extra in self.args.header:
            name, _, value = extra.partition(":")
            headers[name.strip()] = value.strip()
        count = self.args.tokens
        if isinstance(payload.get("max_tokens"), int):
            count = min(count, payload["max_tokens"])
        if chat and (self.args.respond is not None or self.args.reasoning is not None):
            return await self.respond(payload, writer, headers)
        prompt_tokens = len(json.dumps(received).split())
        usage = {
            "prompt_tokens": prompt_tokens,
            "completion_tokens": count,
            "total_tokens": prompt_tokens + count,
        }
        ident = f"fake-{self.requests}"
        kind = "chat.completion" if chat else "text_completion"
        if not payload.get("stream"):
            text = ""
            for i in range(count):
                await self.pace()
                text += f"tok{i} "
            choice: dict[str, Any] = {"index": 0, "finish_reason": "length"}
            if chat:
                choice["message"] = {"role": "assistant", "content": text}
            else:
                choice["text"] = text
            body = {
                "id": ident,
                "object": kind,
                "created": int(time.time()),
                "model": self.args.model,
                "choices": [choice],
                "usage": usage,
            }
            return await _send_json(writer, 200, body, headers)
        self.streams += 1
        await _start_stream(writer, headers)
        for i in range(count):
            await self.pace()
            delta: dict[str, Any] = {"index": 0, "finish_reason": None}
            if chat:
                delta["delta"] = (
                    {"content": f"tok{i} "} if i else {"role": "assistant", "content": "tok0 "}
                )
            else:
                delta["text"] = f"tok{i} "
            chunk = {
                "id": ident,
                "object": f"{kind}.chunk",
                "model": self.args.model,
                "choices": [delta],
            }
            await _send_chunk(writer, f"data: {json.dumps(chunk)}\n\n".encode())
            if self.args.die_mid_stream and self.streams == 1 and i >= 1:
                print("dying mid-stream", flush=True)
                os._exit(4)
        last: dict[str, Any] = {"index": 0, "finish_reason": "length"}
        last["delta" if chat else "text"] = {} if chat else ""
        final = {
            "id": ident,
            "object": f"{kind}.chunk",
            "model": self.args.model,
            "choices": [last],
            "usage": usage,
        }
        await _send_chunk(writer, f"data: {json.dumps(final)}\n\n".encode())
        await _send_chunk(writer, b"data: [DONE]\n\n")
        await _send_chunk(writer, b"")
        return True

    async def respond(
        self, payload: dict[str, Any], writer: asyncio.StreamWriter, headers: dict[str, str]
    ) -> bool:
        """A chat answer of ``--respond`` text after ``--reasoning`` (either may be absent)."""
        answer = self.args.respond or ""
        reasoning = self.args.reasoning or ""
        pieces = [("reasoning_content", p) for p in _pieces(reasoning)]
        pieces += [("content", p) for p in _pieces(answer)]
        usage = {"prompt_tokens": 1, "completion_tokens": len(pieces)}
        usage["total_tokens"] = 1 + len(pieces)
        base: dict[str, Any] = {"id": f"fake-{self.requests}", "model": self.args.model}
        if not payload.get("stream"):
            message = {"role": "assistant", "content": answer}
            if reasoning:
                message["reasoning_content"] = reasoning
            choice = {"index": 0, "finish_reason": "stop", "message": message}
            body = {**base, "object": "chat.completion", "created": int(time.time())}
            body |= {"choices": [choice], "usage": usage}
            return await _send_json(writer, 200, body, headers)
        await _start_stream(writer, headers)
        base["object"] = "chat.completion.chunk"
        for name, piece in pieces:
            await self.pace()
            choice = {"index": 0, "finish_reason": None, "delta": {name: piece}}
            chunk = {**base, "choices": [choice]}
            await _send_chunk(writer, f"data: {json.dumps(chunk)}\n\n".encode())
        last = {"index": 0, "finish_reason": "stop", "delta": {}}
        final = {**base, "choices": [last], "usage": usage}
        await _send_chunk(writer, f"data: {json.dumps(final)}\n\n".encode())
        await _send_chunk(writer, b"data: [DONE]\n\n")
        await _send_chunk(writer, b"")
        return True

    async def pace(self) -> None:
        if self.args.tokens_per_s > 0:
            await asyncio.sleep(1.0 / self.args.tokens_per_s)


PIECE_CHARS = 5


def _pieces(text: str) -> list[str]:
    return [text[i : i + PIECE_CHARS] for i in range(0, len(text), PIECE_CHARS)]


def _error(message: str, code: str) -> dict[str, Any]:
    return {"error": {"message": message, "type": "server_error", "param": None, "code": code}}


async def _read_request(
    reader: asyncio.StreamReader,
) -> tuple[str, str, bytes, dict[str, str]] | None:
    try:
        head = await reader.readuntil(b"\r\n\r\n")
    except asyncio.IncompleteReadError:
        return None
    lines = head.decode("latin-1").split("\r\n")
    method, path, _ = lines[0].split(" ", 2)
    headers = {}
    for line in lines[1:]:
        if ":" in line:
            name, value = line.split(":", 1)
            headers[name.strip().lower()] = value.strip()
    if headers.get("transfer-encoding", "").lower() == "chunked":
        body = b""
        while True:
            size = int((await reader.readuntil(b"\r\n")).strip().split(b";")[0], 16)
            chunk = await reader.readexactly(size + 2)
            if size == 0:
                break
            body += chunk[:-2]
    else:
        body = await reader.readexactly(int(headers.get("content-length", "0")))
    return method, path, body, headers


async def _send_json(
    writer: asyncio.StreamWriter,
    status: int,
    body: Any,
    headers: dict[str, str] | None = None,
) -> bool:
    data = json.dumps(body).encode()
    head = [f"HTTP/1.1 {status} {_REASONS.get(status, 'Status')}"]
    head += ["content-type: application/json", f"content-length: {len(data)}"]
    head += [f"{k}: {v}" for k, v in (headers or {}).items()]
    writer.write(("\r\n".join(head) + "\r\n\r\n").encode("latin-1") + data)
    await writer.drain()
    return True


async def _start_stream(writer: asyncio.StreamWriter, headers: dict[str, str]) -> None:
    head = ["HTTP/1.1 200 OK", "content-type: text/event-stream", "cache-control: no-cache"]
    head += ["transfer-encoding: chunked"]
    head += [f"{k}: {v}" for k, v in headers.items()]
    writer.write(("\r\n".join(head) + "\r\n\r\n").encode("latin-1"))
    await writer.drain()


async def _send_chunk(writer: asyncio.StreamWriter, data: bytes) -> None:
    writer.write(f"{len(data):x}\r\n".encode() + data + b"\r\n")
    await writer.drain()


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description="fake OpenAI-compatible backend")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--model", default="fake")
    parser.add_argument("--ready-after", type=float, default=0.0)
    parser.add_argument("--never-ready", action="store_true")
    parser.add_argument("--die-after", type=float, default=None)
    parser.add_argument("--wedge-after", type=float, default=None)
    parser.add_argument("--ignore-sigterm", action="store_true")
    parser.add_argument("--delay", type=float, default=0.0)
    parser.add_argument("--tokens", type=int, default=8)
    parser.add_argument("--tokens-per-s", type=float, default=0.0)
    parser.add_argument("--fail-after", type=int, default=None)
    parser.add_argument("--die-mid-stream", action="store_true")
    parser.add_argument("--env-file", default=None)
    parser.add_argument("--setsid", action="store_true")
    parser.add_argument("--respond", default=None)
    parser.add_argument("--reasoning", default=None)
    parser.add_argument("--header", action="append", default=[])
    parser.add_argument("--require-key", default=None)
    return parser.parse_args(argv)


async def serve(args: argparse.Namespace) -> None:
    fake = Fake(args)
    loop = asyncio.get_running_loop()
    if args.ignore_sigterm:
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
    if args.die_after is not None:
        loop.call_later(args.die_after, _die, args.die_after)
    if args.wedge_after is not None:
        loop.call_later(args.wedge_after, _wedge, fake)
    server = await asyncio.start_server(fake.handle, "127.0.0.1", args.port)
    print(f"fake backend pid {os.getpid()} listening on 127.0.0.1:{args.port}", flush=True)
    async with server:
        await server.serve_forever()


def _die(after: float) -> None:
    print(f"dying after {after}s", flush=True)
    os._exit(3)


def _wedge(fake: Fake) -> None:
    print("wedged", flush=True)
    fake.wedged = True


def _write_environment(path: Path) -> None:
    staging = path.with_name(path.name + ".tmp")
    staging.write_text(json.dumps(dict(os.environ)), encoding="utf-8")
    staging.replace(path)


def main(argv: list[str] | None = None) -> None:
    args = parse_args(sys.argv[1:] if argv is None else argv)
    if args.setsid:
        os.setsid()
    if args.env_file is not None:
        _write_environment(Path(args.env_file))
    asyncio.run(serve(args))


if __name__ == "__main__":
    main()
