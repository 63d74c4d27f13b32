"""The vLLM engine's description: command line, memory estimate, sleep plan, metrics."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from modelyard.catalog.model import Model
from modelyard.engines.base import EngineArgs, LaunchSpec
from modelyard.engines.vllm import VllmEngine, parse_metrics
from modelyard.errors import EngineError
from modelyard.settings import VllmSettings

GIB = 1024**3

# A Qwen2.5-0.5B-Instruct config.json's sizes (24 layers, 14 heads, 2 KV heads, 896 wide).
QWEN_CONFIG = {
    "architectures": ["Qwen2ForCausalLM"],
    "hidden_size": 896,
    "num_attention_heads": 14,
    "num_hidden_layers": 24,
    "num_key_value_heads": 2,
    "max_position_embeddings": 32768,
}


def model_folder(tmp_path: Path, weights: int = 1000) -> Path:
    folder = tmp_path / "qwen"
    folder.mkdir()
    (folder / "config.json").write_text(json.dumps(QWEN_CONFIG))
    (folder / "model-00001-of-00002.safetensors").write_bytes(b"\0" * (weights // 2))
    (folder / "model-00002-of-00002.safetensors").write_bytes(b"\0" * (weights - weights // 2))
    (folder / "tokenizer.json").write_text("{}")  # not weights
    return folder


def spec(folder: Path, **args: object) -> LaunchSpec:
    model = Model(id="qwen", name="qwen", source="curated", engine="vllm", path=str(folder))
    return LaunchSpec("qwen:01", model, 8311, alias="qwen:01", args=EngineArgs(**args))  # type: ignore[arg-type]


def test_command_line_budgets_the_gpu_share_instead_of_vllms_default(tmp_path: Path) -> None:
    """Prevents vLLM taking 90% of the GPU (its default) whatever modelyard admitted."""
    engine = VllmEngine(VllmSettings(overhead_bytes=GIB), {0: 20 * GIB})
    plan = engine.plan(spec(model_folder(tmp_path, 3 * GIB), ctx=8192, parallel=4))
    argv = list(plan.argv)
    assert argv[:3] == ["vllm", "serve", str(tmp_path / "qwen")]
    assert argv[argv.index("--port") + 1] == "8311"
    assert argv[argv.index("--host") + 1] == "127.0.0.1"
    assert argv[argv.index("--served-model-name") + 1] == "qwen:01"
    assert argv[argv.index("--max-model-len") + 1] == "8192"
    assert argv[argv.index("--max-num-seqs") + 1] == "4"
    # 3 GiB weights + 1 GiB overhead + KV 2*24*2*64*2 B * 8192 = 96 MiB, over 20 GiB: 0.21
    assert argv[argv.index("--gpu-memory-utilization") + 1] == "0.21"
    assert "--enable-sleep-mode" in argv and plan.env == {"VLLM_SERVER_DEV_MODE": "1"}
    assert plan.served_name == "qwen:01" and plan.start_group == "gpu:0"
    assert plan.sleep is not None and plan.sleep.sleep[2].path == "/sleep?level=2"
    assert plan.sleep.host_bytes == 3 * GIB


def test_estimate_reads_the_folder_weights_and_kv_for_the_context(tmp_path: Path) -> None:
    engine = VllmEngine(VllmSettings(overhead_bytes=0), {0: 20 * GIB})
    estimate = engine.estimate(spec(model_folder(tmp_path, 5000), ctx=1000))
    assert estimate.weights == 5000 and estimate.device == 0
    assert estimate.kv_cache == 2 * 24 * 2 * 64 * 2 * 1000


def test_no_gpu_or_a_model_too_big_is_a_clear_engine_error(tmp_path: Path) -> None:
    folder = model_folder(tmp_path)
    with pytest.raises(EngineError, match=r"memory\.gpus"):
        VllmEngine(VllmSettings(), {}).plan(spec(folder))
    with pytest.raises(EngineError, match="more than 95%"):
        VllmEngine(VllmSettings(overhead_bytes=10 * GIB), {0: 10 * GIB}).plan(spec(folder))
    bare = Model(id="x", name="x", source="curated", engine="vllm")
    with pytest.raises(EngineError, match="no `path`"):
        VllmEngine(VllmSettings(), {0: GIB}).plan(LaunchSpec("x:01", bare, 1, alias="x:01"))


def test_sleep_mode_off_plans_no_sleep(tmp_path: Path) -> None:
    plan = VllmEngine(VllmSettings(sleep_mode=False), {0: 80 * GIB}).plan(
        spec(model_folder(tmp_path))
    )
    assert plan.sleep is None and "--enable-sleep-mode" not in plan.argv and not plan.env


def test_metrics_sum_the_three_gauges_over_label_sets() -> None:
    text = b"""# HELP vllm:num_requests_running Number of requests in model execution batches.
# TYPE vllm:num_requests_running gauge
vllm:num_requests_running{engine="0",model_name="q"} 3.0
vllm:num_requests_running{engine="1",model_name="q"} 1.0
vllm:num_requests_waiting{engine="0",model_name="q"} 2.0
vllm:kv_cache_usage_perc{engine="0",model_name="q"} 0.5
vllm:prompt_tokens_total{engine="0",model_name="q"} 99.0
"""
    assert parse_metrics(text) == {"running": 4.0, "waiting": 2.0, "kv_cache_usage": 0.5}
    assert parse_metrics(b"# nothing\n") is None
