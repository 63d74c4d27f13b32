"""Memory estimate against what llama-server really holds: Gemma 3 270M on CPU.

For each context size the real ``llama-server`` is started with the engine's own command,
waited on until ready, sent one short completion (RSS counts memory-mapped weights only once
they are touched, and buffers only once written), and its resident set size is read with
psutil. It is compared with two estimates:

- from GGUF metadata alone (what admission knows before the first start);
- corrected by the buffer sizes llama-server reported in its log (what it knows after).

Goal: within +-10% of RSS. RSS is a fair measure here: the weights are mapped from the file
and fully touched on CPU; the compute buffer is only partly touched by one short request, so
at a large context the estimate sits above RSS (it covers the long-prompt case).
"""

from __future__ import annotations

import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import httpx
import psutil
from tests.support.gemma import assemble_gemma
from tests.support.processes import free_port, stop_group

from modelyard.catalog.model import Model
from modelyard.engines.base import EngineArgs, LaunchSpec, MeasurementKey, MemoryEstimate
from modelyard.engines.llamacpp import LlamaCppEngine, parse_memory_log
from modelyard.settings import LlamaCppSettings, load_settings

CONTEXTS = (2048, 8192, 32768)
GOAL = 0.10
READY_TIMEOUT_S = 60.0
MIB = 1024 * 1024
FILE_TYPES = {2: "Q4_0", 7: "Q8_0", 14: "Q4_K_S", 15: "Q4_K_M", 17: "Q5_K_M", 18: "Q6_K"}


@dataclass(frozen=True)
class Row:
    ctx: int
    rss: int
    estimate: MemoryEstimate
    corrected: MemoryEstimate
    ready_s: float


def run() -> None:
    """Run the three contexts and print one table. Every server it starts, it stops."""
    models_dir = load_settings().models_dir
    path = assemble_gemma(models_dir)
    model, source = gemma_model(path)
    print(f"memory estimate vs RSS: {path.name}, CPU, metadata from {source}")
    rows = [measure(model, ctx) for ctx in CONTEXTS]
    print(
        f"{'ctx':>6} {'estimate':>10} {'error':>7} {'corrected':>10} {'error':>7}"
        f" {'RSS':>9}   goal +-{GOAL:.0%}"
    )
    for row in rows:
        first = error(row.estimate.total, row.rss)
        second = error(row.corrected.total, row.rss)
        verdict = "ok" if abs(first) <= GOAL and abs(second) <= GOAL else "MISSED"
        print(
            f"{row.ctx:>6} {mib(row.estimate.total):>10} {first:>+7.1%}"
            f" {mib(row.corrected.total):>10} {second:>+7.1%} {mib(row.rss):>9}   {verdict}"
        )
    for row in rows:
        parts = row.estimate
        print(
            f"  ctx {row.ctx}: weights {mib(parts.weights)}, KV {mib(parts.kv_cache)}, "
            f"compute {mib(parts.compute)}, overhead {mib(parts.overhead)}; "
            f"reported KV {mib(row.corrected.kv_cache)}, compute {mib(row.corrected.compute)}; "
            f"ready in {row.ready_s:.2f} s"
        )


def measure(model: Model, ctx: int) -> Row:
    engine = LlamaCppEngine(LlamaCppSettings())
    spec = LaunchSpec(f"{model.id}:01", model, free_port(), "bench", EngineArgs(ctx=ctx))
    plan = engine.plan(spec)
    with tempfile.TemporaryDirectory() as folder:
        log = Path(folder) / "server.log"
        with log.open("wb") as out:
            started = time.monotonic()
            process = subprocess.Popen(
                plan.argv, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
            )
        try:
            wait_ready(plan.base_url + plan.health_path, process)
            ready_s = time.monotonic() - started
            warm_up(plan.base_url)
            rss = psutil.Process(process.pid).memory_info().rss
        finally:
            stop_group(process)
        buffers = parse_memory_log(log.read_text(errors="replace").splitlines())
    if buffers is None:
        raise SystemExit(f"llama-server reported no buffer sizes at ctx {ctx}")
    key = engine.measurement_key(spec)

    def lookup(model_id: str, wanted: MeasurementKey) -> dict[str, int] | None:
        return buffers if (model_id, wanted) == (model.id, key) else None

    corrected = LlamaCppEngine(LlamaCppSettings(), measurements=lookup).estimate(spec)
    return Row(ctx, rss, engine.estimate(spec), corrected, ready_s)


def gemma_model(path: Path) -> tuple[Model, str]:
    """The catalog record's memory-relevant fields, read from the file's GGUF header."""
    from modelyard.catalog.gguf import read_header

    try:
        header = read_header(path)
    except NotImplementedError:
        return _model_with_gguf_package(path), "the gguf package (slow: header reader pending)"
    arch = header.architecture or ""
    window = header.kv.get(f"{arch}.attention.sliding_window")
    return (
        Model(
            id="gemma-3-270m",
            name=header.name or path.stem,
            source="default",
            path=str(path),
            architecture=header.architecture,
            quantization=header.quantization,
            block_count=header.block_count,
            embedding_length=header.embedding_length,
            head_count=header.head_count,
            head_count_kv=header.head_count_kv,
            key_length=header.key_length,
            value_length=header.value_length,
            sliding_window=int(window) if window is not None else None,
            tensor_bytes=header.tensor_bytes,
        ),
        "modelyard's GGUF header reader",
    )


def _model_with_gguf_package(path: Path) -> Model:
    from gguf import GGUFReader

    reader = GGUFReader(str(path))

    def value(key: str) -> int | str | None:
        field = reader.fields.get(key)
        if field is None:
            return None
        part = field.parts[field.data[0]]
        if field.types and field.types[0].name == "STRING":
            return bytes(part).decode()
        return int(part[0])

    def number(key: str) -> int | None:
        found = value(key)
        return found if isinstance(found, int) else None

    arch = str(value("general.architecture"))
    file_type = number("general.file_type")
    return Model(
        id="gemma-3-270m",
        name=path.stem,
        source="default",
        path=str(path),
        architecture=arch,
        quantization=FILE_TYPES.get(file_type) if file_type is not None else None,
        block_count=number(f"{arch}.block_count"),
        embedding_length=number(f"{arch}.embedding_length"),
        head_count=number(f"{arch}.attention.head_count"),
        head_count_kv=number(f"{arch}.attention.head_count_kv"),
        key_length=number(f"{arch}.attention.key_length"),
        value_length=number(f"{arch}.attention.value_length"),
        sliding_window=number(f"{arch}.attention.sliding_window"),
        tensor_bytes=sum(int(tensor.n_bytes) for tensor in reader.tensors),
    )


def wait_ready(url: str, process: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + READY_TIMEOUT_S
    with httpx.Client(timeout=2) as client:
        while time.monotonic() < deadline:
            if process.poll() is not None:
                raise SystemExit(f"llama-server exited with {process.returncode}")
            try:
                if client.get(url).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            time.sleep(0.02)
    raise SystemExit(f"llama-server was not ready within {READY_TIMEOUT_S:.0f} s")


def warm_up(base_url: str) -> None:
    """One short completion, so the weights and buffers it uses are resident."""
    body = {"messages": [{"role": "user", "content": "Say hello."}], "max_tokens": 8}
    response = httpx.post(f"{base_url}/v1/chat/completions", json=body, timeout=60)
    response.raise_for_status()


def error(estimate: int, measured: int) -> float:
    return (estimate - measured) / measured


def mib(value: int) -> str:
    return f"{value / MIB:.1f} MiB"


if __name__ == "__main__":
    run()
