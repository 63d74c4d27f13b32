"""An OpenAI-compatible backend that answers at once, for the peer comparison.

Raw asyncio HTTP/1.1 with keep-alive, so the backend costs as little as possible and the
figures measure the proxies in front of it. Standard library only: it runs under any
Python, as a file (``python peer_backend.py --port N``), started by a proxy's config.

- ``GET /health``, ``GET /v1/models``: 200.
- ``POST /v1/chat/completions``, ``POST /v1/completions``: a fixed answer with ``usage``;
  with ``"stream": true`` in the body, ``--chunks`` SSE events ``--interval-ms`` apart, each
  in its own HTTP chunk, then a usage event and ``data: [DONE]``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import time

_CHAT = {
    "id": "chatcmpl-bench",
    "object": "chat.completion",
    "created": 0,
    "model": "bench",
    "choices": [
        {"index": 0, "message": {"role": "assistant", "content": "ok"}, "finish_reason": "stop"}
    ],
    "usage": {"prompt_tokens": 5, "completion_tokens": 1, "total_tokens": 6},
}
_MODELS = {"object": "list", "data": [{"id": "bench", "object": "model", "owned_by": "bench"}]}


def _response(status: str, body: bytes) -> bytes:
    head = (
        f"HTTP/1.1 {status}\r\ncontent-type: application/json\r\n"
        f"content-length: {len(body)}\r\n\r\n"
    )
    return head.encode() + body


def _chunk(data: bytes) -> bytes:
    return f"{len(data):x}\r\n".encode() + data + b"\r\n"


def _event(n: int) -> bytes:
    payload = {
        "id": "chatcmpl-bench",
        "object": "chat.completion.chunk",
        "created": 0,
        "model": "bench",
        "choices": [{"index": 0, "delta": {"content": f"t{n} "}, "finish_reason": None}],
    }
    return b"data: " + json.dumps(payload).encode() + b"\n\n"


async def _read_chunked(reader: asyncio.StreamReader) -> bytes:
    parts: list[bytes] = []
    while size := int((await reader.readuntil(b"\r\n")).split(b";")[0], 16):
        parts.append((await reader.readexactly(size + 2))[:-2])
    await reader.readuntil(b"\r\n")
    return b"".join(parts)


class Backend:
    def __init__(self, chunks: int, interval_s: float) -> None:
        self.chunks = chunks
        self.interval_s = interval_s
        self.chat = _response("200 OK", json.dumps(_CHAT).encode())
        self.models = _response("200 OK", json.dumps(_MODELS).encode())
        self.health = _response("200 OK", b'{"status":"ok"}')
        self.missing = _response("404 Not Found", b'{"error":{"message":"not found"}}')

    async def serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                method, path, _ = head.split(b" ", 2)
                length = 0
                chunked = False
                for line in head.split(b"\r\n"):
                    lower = line.lower()
                    if lower.startswith(b"content-length:"):
                        length = int(line[15:])
                    elif lower.startswith(b"transfer-encoding:") and b"chunked" in lower:
                        chunked = True
                if chunked:
                    body = await _read_chunked(reader)
                else:
                    body = await reader.readexactly(length) if length else b""
                if method == b"POST" and path.split(b"?")[0] in (
                    b"/v1/chat/completions",
                    b"/v1/completions",
                ):
                    if b'"stream":true' in body.replace(b" ", b""):
                        await self.stream(writer)
                        continue
                    writer.write(self.chat)
                elif path == b"/health":
                    writer.write(self.health)
                elif path == b"/v1/models":
                    writer.write(self.models)
                else:
                    writer.write(self.missing)
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError, ValueError):
            pass
        finally:
            writer.close()

    async def stream(self, writer: asyncio.StreamWriter) -> None:
        writer.write(
            b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\n"
            b"cache-control: no-cache\r\ntransfer-encoding: chunked\r\n\r\n"
        )
        start = time.monotonic()
        for n in range(self.chunks):
            # Paced from the start, not from the previous write, so delays do not add up.
            delay = start + n * self.interval_s - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
            writer.write(_chunk(_event(n)))
            await writer.drain()
        usage = {"choices": [], "usage": _CHAT["usage"], "model": "bench"}
        writer.write(_chunk(b"data: " + json.dumps(usage).encode() + b"\n\n"))
        writer.write(_chunk(b"data: [DONE]\n\n") + b"0\r\n\r\n")
        await writer.drain()


async def main(port: int, chunks: int, interval_s: float) -> None:
    backend = Backend(chunks, interval_s)
    server = await asyncio.start_server(backend.serve, "127.0.0.1", port, backlog=1024)
    async with server:
        await server.serve_forever()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--chunks", type=int, default=8)
    parser.add_argument("--interval-ms", type=float, default=20.0)
    args = parser.parse_args()
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(main(args.port, args.chunks, args.interval_ms / 1000))
