"""A page on another origin calling the gateway from Chromium: the browser's own CORS checks.

The pages come from small HTTP servers on 127.0.0.1 (threads of the test; a page from
``page.route`` has no address, and Chromium then refuses it the loopback address space); the
gateway is a real ``modelyard serve`` in front of the fake backend, which sends an empty
``access-control-allow-origin`` as llama-server does.
"""

from __future__ import annotations

import shlex
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from playwright.sync_api import Page

from tests.dashboard.harness import serve
from tests.gateway.harness import fake_model

CALL = """async ([url, stream]) => {
  try {
    const response = await fetch(url + "/v1/chat/completions", {
      method: "POST",
      headers: { "Content-Type": "application/json", Authorization: "Bearer unused" },
      body: JSON.stringify({ model: "fake", stream, messages: [{ role: "user", content: "hi" }] }),
    });
    return {
      status: response.status,
      instance: response.headers.get("x-modelyard-instance"),
      text: await response.text(),
    };
  } catch (err) {
    return { error: String(err) };
  }
}"""


class _Page(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        body = b"<!doctype html><title>page</title><p>a page on another origin</p>"
        self.send_response(200)
        self.send_header("content-type", "text/html")
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        pass


@contextmanager
def page_origin() -> Iterator[str]:
    """A server of one page on 127.0.0.1 for the block; yields its origin."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Page)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(10)


def test_a_page_on_an_allowed_origin_can_chat_and_another_cannot(
    page: Page, tmp_path: Path
) -> None:
    """Prevents browsers refusing every gateway answer: the preflight was a 405, and the
    backend's empty `access-control-allow-origin` came through next to the gateway's."""
    backend = fake_model("fake", f"--header {shlex.quote('access-control-allow-origin:')}")
    with (
        page_origin() as allowed,
        page_origin() as other,
        serve(tmp_path / "srv", curated=[backend], gateway={"cors_origins": [allowed]}) as server,
    ):
        page.goto(f"{allowed}/")
        whole: dict[str, Any] = page.evaluate(CALL, [server.url, False])
        assert whole.get("status") == 200, whole
        assert whole["instance"] == "fake:01"  # exposed to the page
        assert '"content": "tok0 ' in whole["text"]
        streamed: dict[str, Any] = page.evaluate(CALL, [server.url, True])
        assert streamed.get("status") == 200, streamed
        assert streamed["text"].rstrip().endswith("data: [DONE]")

        refused = page.context.new_page()
        try:
            refused.goto(f"{other}/")
            blocked: dict[str, Any] = refused.evaluate(CALL, [server.url, False])
            assert "error" in blocked and "Failed to fetch" in blocked["error"], blocked
        finally:
            refused.close()
