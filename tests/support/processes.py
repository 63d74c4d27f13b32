"""What tests and benchmarks share about ports, child processes and waiting on a condition."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import socket
import subprocess
import time
from collections.abc import Callable, Iterator

import psutil
import pytest

# Servers the fleet spawns. fake_ollama.py is not one: like Ollama, a test starts it and the
# fleet only attaches to it (see ``external_server``).
SERVER_MARKERS = ("fake_backend.py", "fake_vllm.py", "llama-server")


def free_port() -> int:
    """A loopback port the kernel just handed out as free."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def stop_group(process: subprocess.Popen[bytes], timeout_s: float = 10.0) -> None:
    """SIGTERM the process group, then SIGKILL what is left after ``timeout_s``; reaps it."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(timeout_s)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait()
    with contextlib.suppress(ProcessLookupError):  # children that outlived the leader
        os.killpg(process.pid, signal.SIGKILL)


@contextlib.contextmanager
def external_server(argv: list[str], port: int, within: float = 15.0) -> Iterator[int]:
    """Run a server the test owns (a fake Ollama, a remote API) until the block ends: yields
    ``port`` once it accepts connections; fails at once if it exits first. Stopped (its group)
    at the end."""
    process = subprocess.Popen(argv, start_new_session=True, stdout=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + within
        while True:
            if process.poll() is not None:
                pytest.fail(f"{argv[1]} exited with code {process.returncode} before serving")
            with socket.socket() as sock, contextlib.suppress(OSError):
                sock.settimeout(0.5)
                sock.connect(("127.0.0.1", port))
                break
            if time.monotonic() > deadline:
                pytest.fail(f"{argv[1]} did not listen on {port} within {within}s")
            time.sleep(0.01)
        yield port
    finally:
        stop_group(process)


def server_children(markers: tuple[str, ...] = SERVER_MARKERS) -> list[psutil.Process]:
    """Live (not zombie) descendants of this test process whose command line names a server."""
    found = []
    for child in psutil.Process().children(recursive=True):
        try:
            if child.status() == psutil.STATUS_ZOMBIE:
                continue
            cmdline = " ".join(child.cmdline())
        except psutil.Error:
            continue
        if any(marker in cmdline for marker in markers):
            found.append(child)
    return found


async def wait_for(
    condition: Callable[[], bool], within: float, what: str, interval: float = 0.005
) -> None:
    """Poll ``condition`` until true; fail naming ``what`` after ``within`` seconds."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    while not condition():
        if loop.time() > deadline:
            pytest.fail(f"timed out after {within}s waiting for {what}")
        await asyncio.sleep(interval)
