"""The catalog over real files and a real SQLite store: merging, ids, overrides, rescans."""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from modelyard.catalog.catalog import Catalog, ScanProgress
from modelyard.catalog.model import Model
from modelyard.errors import ModelNotFound, ValidationFailed
from modelyard.settings import load_settings
from modelyard.store import Store
from tests.catalog.layouts import hf_file, model, ollama_model

Q4_K_M = 15
Q8_0 = 7
OpenCatalog = Callable[..., Catalog]


@pytest.fixture
def open_catalog() -> Iterator[OpenCatalog]:
    """Build a Catalog over the test's data dir; each call opens the store anew (a restart)."""
    stores: list[Store] = []

    def make(
        folders: list[Path] | None = None,
        curated: list[dict[str, Any]] | None = None,
        **discovery: Any,
    ) -> Catalog:
        settings = load_settings(
            discovery={"default_model": False, "folders": folders or [], **discovery},
            curated=curated or [],
        )
        store = Store.open(settings.db_path)
        stores.append(store)
        return Catalog(settings, store)

    yield make
    for store in stores:
        store.close()


def by_id(catalog: Catalog) -> dict[str, Model]:
    return {m.id: m for m in catalog.models()}


def small(name: str = "Test", **fields: Any) -> Callable[[Path], object]:
    values: dict[str, Any] = {
        "arch": "llama",
        "name": name,
        "size_label": "1B",
        "file_type": Q4_K_M,
        "context_length": 4096,
    }
    return model(**{**values, **fields})


def test_real_gemma_file_read_right(
    open_catalog: OpenCatalog, tmp_path: Path, gemma_path: Path
) -> None:
    folder = tmp_path / "models"
    folder.mkdir()
    (folder / gemma_path.name).symlink_to(gemma_path)
    catalog = open_catalog([folder])

    report = catalog.rescan()

    gemma = catalog.get("gemma-3-270m-q4_k_m")
    assert report.added == ("gemma-3-270m-q4_k_m",)
    assert gemma.architecture == "gemma3"
    assert gemma.parameters_b is not None and 0.25 <= gemma.parameters_b <= 0.29
    assert gemma.quantization == "Q4_K_M"
    assert gemma.context_length == 32768
    assert gemma.block_count == 18
    assert (gemma.source, gemma.error, gemma.tier, gemma.enabled) == ("folder", None, "fast", True)
    assert gemma.path == str(folder / gemma_path.name)
    # Regression: the base model was written as "gemma-3-270m-it-..." and tagged instruct. Its
    # header names no finetune and carries no chat template: it is no instruct model.
    assert (gemma.finetune, gemma.chat_template, gemma.instruct) == (None, None, False)


def test_the_bundled_models_are_linked_and_described_by_their_metadata(
    tmp_path: Path, qwen_path: Path, smollm_path: Path, minilm_path: Path
) -> None:
    """The bundled models are hard-linked (not copied) into the data folder and cataloged with
    the traits their headers give: instruct (a chat template), coder, embedding with mean
    pooling, and no chat tier for the embedding model."""
    settings = load_settings(data_dir=tmp_path / "data")
    with contextlib.closing(Store.open(settings.db_path)) as store:
        catalog = Catalog(settings, store)
        catalog.rescan()
        by_path = {Path(m.path or "").name: m for m in catalog.models()}
    for source in (qwen_path, smollm_path, minilm_path):
        linked = settings.models_dir / source.name
        assert linked.stat().st_ino == source.stat().st_ino or linked.resolve() == source
        assert by_path[source.name].source == "default"
    qwen, smol = by_path[qwen_path.name], by_path[smollm_path.name]
    minilm = by_path[minilm_path.name]
    assert (qwen.instruct, qwen.coder, qwen.embedding, qwen.family) == (
        True,
        True,
        False,
        "qwen2.5-coder",
    )
    assert (smol.instruct, smol.embedding, smol.parameters_b) == (True, False, 0.135)
    assert (minilm.embedding, minilm.pooling_type, minilm.tier) == (True, 1, None)
    assert minilm.embedding_length == 384


def test_one_file_reached_three_ways_is_one_model(
    open_catalog: OpenCatalog, tmp_path: Path
) -> None:
    """Regression: an HF blob also named in a folder must not be listed twice."""
    link = hf_file(tmp_path / "hf", "org/Tiny-GGUF", "tiny-1b-q4_k_m.gguf", small())
    folder = tmp_path / "models"
    folder.mkdir()
    os.link(link.resolve(), folder / "hardlinked.gguf")
    (folder / "symlinked.gguf").symlink_to(link)
    catalog = open_catalog([folder])

    catalog.rescan()

    models = catalog.models()
    assert [m.id for m in models] == ["tiny-1b-q4_k_m"]
    tiny = models[0]
    assert (tiny.source, tiny.hf_repo, tiny.path) == ("hf", "org/Tiny-GGUF", str(link))
    assert set(tiny.paths) == {
        str(link),
        str(folder / "hardlinked.gguf"),
        str(folder / "symlinked.gguf"),
    }


def test_split_model_is_one_model_and_a_missing_part_is_an_error(
    open_catalog: OpenCatalog, tmp_path: Path
) -> None:
    folder = tmp_path / "models"
    folder.mkdir()
    parts = [folder / f"Big-70B-Instruct-Q4_K_M-{n:05d}-of-00003.gguf" for n in (1, 2, 3)]
    for number, part in enumerate(parts):
        small("Big", size_label="70B", split_no=number, split_count=3)(part)
    broken = [folder / f"Half-8B-Q8_0-{n:05d}-of-00003.gguf" for n in (1, 3)]
    for part, number in zip(broken, (0, 2), strict=True):
        small("Half", size_label="8B", file_type=Q8_0, split_no=number, split_count=3)(part)
    catalog = open_catalog([folder])

    catalog.rescan()

    models = by_id(catalog)
    assert sorted(models) == ["big-70b-instruct-q4_k_m", "half-8b-q8_0"]
    big = models["big-70b-instruct-q4_k_m"]
    assert big.path == str(parts[0])
    assert big.parts == tuple(str(p) for p in parts)
    assert big.size_bytes == sum(p.stat().st_size for p in parts)
    assert (big.error, big.tier, big.parameters_b) == (None, "powerful", 70.0)
    half = models["half-8b-q8_0"]
    assert half.error is not None and "part 2 of 3 missing" in half.error
    assert (half.enabled, half.tier) == (False, None)


def test_projector_pairs_with_the_models_beside_it(
    open_catalog: OpenCatalog, tmp_path: Path
) -> None:
    folder = tmp_path / "gemma-3-4b-it-GGUF"
    folder.mkdir()
    small("Gemma 3 4b It", arch="gemma3", size_label="4B")(folder / "gemma-3-4b-it-Q4_K_M.gguf")
    small("Gemma 3 4b It", arch="gemma3", size_label="4B", file_type=Q8_0)(
        folder / "gemma-3-4b-it-Q8_0.gguf"
    )
    model(arch="clip", clip=True)(folder / "mmproj-model-f16.gguf")
    lone = tmp_path / "elsewhere"
    lone.mkdir()
    model(arch="clip", clip=True)(lone / "mmproj-orphan-f16.gguf")
    store = tmp_path / "ollama"
    ollama_model(
        store,
        "llava",
        "7b",
        small("llava", size_label="7B"),
        projector=model(arch="clip", clip=True),
    )
    catalog = open_catalog([folder, lone], ollama_models=store)

    catalog.rescan()

    models = by_id(catalog)
    assert sorted(models) == [
        "gemma-3-4b-it-q4_k_m",
        "gemma-3-4b-it-q8_0",
        "llava-7b",
        "mmproj-orphan-f16",
    ]
    for model_id in ("gemma-3-4b-it-q4_k_m", "gemma-3-4b-it-q8_0"):
        assert models[model_id].mmproj == str(folder / "mmproj-model-f16.gguf")
        assert models[model_id].vision is True
    llava = models["llava-7b"]
    assert (llava.source, llava.ollama_name, llava.vision) == ("ollama", "llava:7b", True)
    assert llava.mmproj is not None and Path(llava.mmproj).parent == store / "blobs"
    orphan = models["mmproj-orphan-f16"]
    assert orphan.error is not None and "projector" in orphan.error
    assert orphan.enabled is False


def test_broken_files_are_listed_and_do_not_stop_the_scan(
    open_catalog: OpenCatalog, tmp_path: Path
) -> None:
    folder = tmp_path / "models"
    folder.mkdir()
    small()(folder / "good-1b-q4_k_m.gguf")
    (folder / "empty.gguf").write_bytes(b"")
    (folder / "text.gguf").write_text("this is not a model\n" * 10)
    small()(folder / "truncated.gguf")
    whole = (folder / "truncated.gguf").read_bytes()
    (folder / "truncated.gguf").write_bytes(whole[: len(whole) // 3])
    os.mkfifo(folder / "pipe.gguf")
    catalog = open_catalog([folder])

    report = catalog.rescan()

    models = by_id(catalog)
    assert models["good-1b-q4_k_m"].error is None
    broken = {k: v for k, v in models.items() if k != "good-1b-q4_k_m"}
    assert sorted(broken) == ["empty", "pipe", "text", "truncated"]
    assert all(m.error and not m.enabled and m.tier is None for m in broken.values())
    assert broken["pipe"].error == "not a regular file (a FIFO)"
    assert report.errors == 4


def test_ids_are_unique_and_stable_across_rescans_restarts_and_new_clashes(
    open_catalog: OpenCatalog, tmp_path: Path
) -> None:
    for publisher, size in (("bbb", "7B"), ("ccc", "8B")):
        path = tmp_path / "models" / publisher / "Model-Q4_K_M.gguf"
        path.parent.mkdir(parents=True)
        small(size_label=size)(path)
    catalog = open_catalog([tmp_path / "models"])
    catalog.rescan()
    first = {m.path: m.id for m in catalog.models()}
    assert first[str(tmp_path / "models/bbb/Model-Q4_K_M.gguf")] == "model-q4_k_m"
    clashing = first[str(tmp_path / "models/ccc/Model-Q4_K_M.gguf")]
    assert clashing.startswith("model-q4_k_m-") and len(clashing) == len("model-q4_k_m-") + 6

    earlier = tmp_path / "models" / "aaa" / "Model-Q4_K_M.gguf"
    earlier.parent.mkdir()
    small(size_label="3B")(earlier)
    restarted = open_catalog([tmp_path / "models"])
    report = restarted.rescan()

    after = {m.path: m.id for m in restarted.models()}
    assert {k: after[k] for k in first} == first
    assert report.added == (after[str(earlier)],)
    assert len(set(after.values())) == 3

    (tmp_path / "models/bbb/Model-Q4_K_M.gguf").unlink()
    restarted.rescan()
    assert restarted.get(clashing).path == str(tmp_path / "models/ccc/Model-Q4_K_M.gguf")


def test_ollama_ids_come_from_name_and_tag(open_catalog: OpenCatalog, tmp_path: Path) -> None:
    store = tmp_path / "ollama"
    ollama_model(store, "llama3.2", "3b", small(size_label="3B"))
    ollama_model(
        store, "qwen2.5-coder", "14b-instruct-q4_K_M", small(size_label="14B"), namespace="someone"
    )
    catalog = open_catalog(ollama_models=store)
    catalog.load()

    assert sorted(by_id(catalog)) == ["llama3.2-3b", "someone-qwen2.5-coder-14b-instruct-q4_k_m"]


def test_overrides_survive_rescans_and_restarts(open_catalog: OpenCatalog, tmp_path: Path) -> None:
    folder = tmp_path / "models"
    folder.mkdir()
    path = folder / "tiny-1b-q4_k_m.gguf"
    small()(path)
    catalog = open_catalog([folder])
    assert catalog.load().get("tiny-1b-q4_k_m").tier == "fast"

    changed = catalog.set_overrides(
        "tiny-1b-q4_k_m",
        actor="test",
        tier="powerful",
        enabled=False,
        display_name="Tiny",
        roles={"caption": 90, "code": 10},
    )
    assert (changed.tier, changed.tier_overridden, changed.enabled) == ("powerful", True, False)
    assert (changed.display_name, changed.roles) == ("Tiny", {"caption": 90, "code": 10})

    small(context_length=8192)(path)  # a changed file: its header is read again
    assert catalog.rescan().changed == ("tiny-1b-q4_k_m",)
    restarted = open_catalog([folder])
    restarted.rescan()
    kept = restarted.get("tiny-1b-q4_k_m")
    assert (kept.tier, kept.enabled, kept.display_name, kept.context_length) == (
        "powerful",
        False,
        "Tiny",
        8192,
    )

    cleared = restarted.clear_override("tiny-1b-q4_k_m", "tier", actor="test")
    assert (cleared.tier, cleared.tier_overridden, cleared.enabled) == ("fast", False, False)
    audit = [(e["action"], e["target"], e["actor"]) for e in restarted._store.audit_log()]
    assert audit[:2] == [
        ("override.clear", "tiny-1b-q4_k_m", "test"),
        ("override.set", "tiny-1b-q4_k_m", "test"),
    ]
    last = restarted._store.audit_log()[0]
    assert last["old"]["tier"] == "powerful" and "tier" not in last["new"]


def test_thinking_override_moves_the_automatic_tier(
    open_catalog: OpenCatalog, tmp_path: Path
) -> None:
    folder = tmp_path / "models"
    folder.mkdir()
    small()(folder / "tiny-1b-q4_k_m.gguf")
    catalog = open_catalog([folder])
    catalog.load()

    thinking = catalog.set_overrides("tiny-1b-q4_k_m", actor="test", thinking=True)

    assert (thinking.thinking, thinking.thinking_overridden) == (True, True)
    assert (thinking.tier, thinking.tier_overridden) == ("powerful", False)


@pytest.mark.parametrize(
    ("changes", "param"),
    [
        ({"tier": "huge"}, "tier"),
        ({"thinking": "yes"}, "thinking"),
        ({"display_name": "  "}, "display_name"),
        ({"roles": {"code": 101}}, "roles"),
        ({"roles": {"Code Review": 5}}, "roles"),
    ],
)
def test_bad_override_names_the_field(
    open_catalog: OpenCatalog, tmp_path: Path, changes: dict[str, Any], param: str
) -> None:
    folder = tmp_path / "models"
    folder.mkdir()
    small()(folder / "tiny-1b-q4_k_m.gguf")
    catalog = open_catalog([folder])
    catalog.load()

    with pytest.raises(ValidationFailed) as caught:
        catalog.set_overrides("tiny-1b-q4_k_m", actor="test", **changes)

    assert caught.value.param == param
    assert caught.value.message.startswith(param)
    assert catalog.overrides_for("tiny-1b-q4_k_m").to_dict() == {}


def test_unknown_id_suggests_close_names(open_catalog: OpenCatalog, tmp_path: Path) -> None:
    folder = tmp_path / "models"
    folder.mkdir()
    small()(folder / "tiny-1b-q4_k_m.gguf")
    catalog = open_catalog([folder])
    catalog.load()

    with pytest.raises(ModelNotFound, match="did you mean tiny-1b-q4_k_m"):
        catalog.get("tiny-1b-q4_k")
    with pytest.raises(ValidationFailed, match="field: expected one of"):
        catalog.clear_override("tiny-1b-q4_k_m", "colour", actor="test")


CURATED = {
    "id": "remote-gpt",
    "engine": "remote",
    "url": "http://127.0.0.1:9/v1",
    "parameters_b": 70,
    "tier": "powerful",
    "roles": {"summary": 60},
}


def test_curated_entries_merge_and_take_their_id(open_catalog: OpenCatalog, tmp_path: Path) -> None:
    folder = tmp_path / "models"
    folder.mkdir()
    small()(folder / "remote-gpt.gguf")  # a discovered file wanting the curated id
    catalog = open_catalog([folder], curated=[CURATED])

    report = catalog.rescan()

    models = by_id(catalog)
    remote = models["remote-gpt"]
    assert (remote.source, remote.engine, remote.tier, remote.roles) == (
        "curated",
        "remote",
        "powerful",
        {"summary": 60},
    )
    assert set(report.added) == set(models)
    (other,) = (m for m in models.values() if m.source == "folder")
    assert other.id.startswith("remote-gpt-")
    updated = catalog.set_overrides("remote-gpt", actor="test", roles={"code": 70})
    assert updated.roles == {"summary": 60, "code": 70}


def test_export_import_round_trip_and_a_bad_import_changes_nothing(
    open_catalog: OpenCatalog, tmp_path: Path
) -> None:
    folder = tmp_path / "models"
    folder.mkdir()
    small()(folder / "tiny-1b-q4_k_m.gguf")
    catalog = open_catalog([folder], curated=[CURATED])
    catalog.load()
    catalog.set_overrides("tiny-1b-q4_k_m", actor="test", tier="balanced", roles={"code": 80})
    exported = catalog.export()
    assert exported["overrides"] == {"tiny-1b-q4_k_m": {"tier": "balanced", "roles": {"code": 80}}}
    assert [c["id"] for c in exported["curated"]] == ["remote-gpt"]

    catalog.clear_override("tiny-1b-q4_k_m", "tier", actor="test")
    extra = {
        "id": "vllm-qwen",
        "engine": "vllm",
        "path": str(tmp_path / "qwen"),
        "parameters_b": 32,
    }
    catalog.import_({**exported, "curated": [*exported["curated"], extra]}, actor="restore")

    assert catalog.get("tiny-1b-q4_k_m").tier == "balanced"
    assert catalog.get("vllm-qwen").source == "curated"
    assert catalog.export()["curated"][1]["id"] == "vllm-qwen"
    audit_before = catalog._store.audit_log(1000)

    bad_documents: list[tuple[Any, str]] = [
        ([], "expected a JSON object"),
        ({**exported, "version": 9}, "version"),
        (
            {**exported, "overrides": {"tiny-1b-q4_k_m": {"tier": "mega"}}},
            "overrides.tiny-1b-q4_k_m.tier",
        ),
        ({**exported, "overrides": {}, "curated": [{"id": "x"}]}, "curated[0]"),
        ({**exported, "curated": [{**CURATED, "tier": "fast"}]}, "defined in the config file"),
    ]
    for document, reason in bad_documents:
        with pytest.raises(ValidationFailed, match=reason.replace("[", r"\[")):
            catalog.import_(document, actor="restore")

    assert catalog._store.audit_log(1000) == audit_before
    assert catalog.get("tiny-1b-q4_k_m").roles == {"code": 80}
    assert catalog.get("vllm-qwen").source == "curated"


def test_rescan_reports_added_changed_removed_and_writes_nothing_when_unchanged(
    open_catalog: OpenCatalog, tmp_path: Path
) -> None:
    folder = tmp_path / "models"
    folder.mkdir()
    small()(folder / "a-1b-q4_k_m.gguf")
    catalog = open_catalog([folder])
    first = catalog.rescan()
    assert (first.added, first.headers_read, first.models) == (("a-1b-q4_k_m",), 1, 1)

    scans = catalog._store.query("SELECT count(*) FROM catalog_scans")[0][0]
    again = catalog.rescan()
    assert (again.unchanged_inputs, again.added, again.changed, again.headers_read) == (
        True,
        (),
        (),
        0,
    )
    assert catalog._store.query("SELECT count(*) FROM catalog_scans")[0][0] == scans

    small()(folder / "b-1b-q4_k_m.gguf")
    small(context_length=2048)(folder / "a-1b-q4_k_m.gguf")
    report = catalog.rescan()
    assert (report.added, report.changed, report.headers_read) == (
        ("b-1b-q4_k_m",),
        ("a-1b-q4_k_m",),
        2,
    )

    (folder / "a-1b-q4_k_m.gguf").unlink()
    assert catalog.rescan().removed == ("a-1b-q4_k_m",)


def test_unchanged_tree_of_200_files_rescans_within_50_ms(
    open_catalog: OpenCatalog, tmp_path: Path
) -> None:
    folder = tmp_path / "models"
    for index in range(200):
        path = folder / f"publisher{index % 10}" / f"model-{index}-7b-q4_k_m.gguf"
        path.parent.mkdir(parents=True, exist_ok=True)
        small(f"Model {index}", size_label="7B")(path)
    catalog = open_catalog([folder])
    assert catalog.rescan().models == 200

    timings = []
    for _ in range(3):
        started = time.perf_counter()
        report = catalog.rescan()
        timings.append(time.perf_counter() - started)
        assert report.unchanged_inputs and report.files == 200
    assert min(timings) < 0.050, f"unchanged rescan took {min(timings) * 1000:.1f} ms"


def test_progress_counts_files_found_and_headers_read(
    open_catalog: OpenCatalog, tmp_path: Path
) -> None:
    folder = tmp_path / "models"
    folder.mkdir()
    for index in range(3):
        small()(folder / f"m{index}.gguf")
    events: list[ScanProgress] = []
    catalog = open_catalog([folder])

    catalog.rescan(progress=events.append)

    assert events[0] == ScanProgress(files_found=3, headers_read=0, headers_to_read=0)
    assert [e.headers_read for e in events[1:]] == [1, 2, 3]
    assert {e.headers_to_read for e in events[1:]} == {3}


def test_extra_paths_are_remembered_until_forgotten(
    open_catalog: OpenCatalog, tmp_path: Path
) -> None:
    folder = tmp_path / "downloads"
    folder.mkdir()
    small()(folder / "tiny-1b-q4_k_m.gguf")
    catalog = open_catalog()

    assert catalog.rescan(extra_paths=[folder]).added == ("tiny-1b-q4_k_m",)
    assert catalog.rescan().removed == ()
    assert catalog.folders() == [folder]
    with pytest.raises(ValidationFailed, match="no such file or folder"):
        catalog.rescan(extra_paths=[tmp_path / "absent"])

    assert catalog.forget_folders([folder], actor="test") == [folder]
    assert catalog.rescan().removed == ("tiny-1b-q4_k_m",)


def test_load_scans_a_catalog_never_scanned_and_reads_do_not(
    open_catalog: OpenCatalog, tmp_path: Path
) -> None:
    """Reads never scan (a scan on the event loop stalled every request); ``load`` does,
    once, when the store holds no scan yet."""
    hf_file(tmp_path / "hf", "org/Tiny-GGUF", "tiny-1b-q4_k_m.gguf", small())
    catalog = open_catalog(hf_cache=tmp_path / "hf")

    assert catalog.models() == []
    assert list(catalog.load()) == ["tiny-1b-q4_k_m"]
    assert [m.id for m in catalog.models()] == ["tiny-1b-q4_k_m"]
    assert catalog.load() is catalog.snapshot()
