"""Discovery sources over real layouts: folders, the Hugging Face cache, the Ollama store."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from modelyard.catalog.sources import is_gguf_name
from modelyard.catalog.sources.folders import scan_folders
from modelyard.catalog.sources.hf import hf_cache_dir, scan_hf
from modelyard.catalog.sources.ollama import ollama_models_dir, scan_ollama
from modelyard.settings import load_settings
from tests.catalog.layouts import REVISION, hf_file, model, ollama_model


def test_folder_walk_finds_lm_studio_layout_and_skips_partial_downloads(tmp_path: Path) -> None:
    root = tmp_path / "lmstudio"
    good = root / "bartowski" / "Qwen2.5-7B-Instruct-GGUF" / "Qwen2.5-7B-Instruct-Q4_K_M.gguf"
    good.parent.mkdir(parents=True)
    model(arch="qwen2")(good)
    for skipped in (
        "Qwen2.5-7B-Instruct-Q8_0.gguf.incomplete",
        "Qwen2.5-7B-Instruct-Q6_K.gguf.part",
        "Qwen2.5-7B-Instruct-Q5_K_M.gguf.download",
        "model.partial.gguf",
        ".Qwen2.5-7B-Instruct-Q4_0.gguf",
        "README.md",
        "config.json",
    ):
        (good.parent / skipped).write_bytes(b"GGUF")
    hidden = root / ".cache" / "x.gguf"
    hidden.parent.mkdir()
    model()(hidden)

    scan = scan_folders([root])

    assert [f.path for f in scan.files] == [str(good)]
    found = scan.files[0]
    assert (found.source, found.error, found.size) == ("folder", None, good.stat().st_size)
    assert (found.dev, found.ino) == (good.stat().st_dev, good.stat().st_ino)
    assert scan.warnings == ()


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("a.gguf", True),
        ("A.GGUF", True),
        ("a.gguf.incomplete", False),
        ("a.gguf.tmp", False),
        ("a.part.gguf", False),
        (".a.gguf", False),
        ("a.bin", False),
    ],
)
def test_gguf_names(name: str, expected: bool) -> None:
    assert is_gguf_name(name) is expected


def test_symlink_loop_terminates_with_a_warning(tmp_path: Path) -> None:
    """Regression: a folder symlinked into itself must not make the walk run forever."""
    root = tmp_path / "models"
    (root / "a").mkdir(parents=True)
    model()(root / "a" / "m.gguf")
    (root / "a" / "loop").symlink_to(root)
    (root / "self.gguf").symlink_to(root / "self.gguf")

    scan = scan_folders([root])

    paths = {f.path: f for f in scan.files}
    assert str(root / "a" / "m.gguf") in paths
    assert paths[str(root / "self.gguf")].error is not None
    assert any("already scanned" in w for w in scan.warnings)


def test_symlinked_file_and_folder_are_followed(tmp_path: Path) -> None:
    store = tmp_path / "store"
    store.mkdir()
    model()(store / "real.gguf")
    root = tmp_path / "models"
    root.mkdir()
    (root / "link.gguf").symlink_to(store / "real.gguf")
    (root / "more").symlink_to(store, target_is_directory=True)

    scan = scan_folders([root])

    assert sorted(f.path for f in scan.files) == [
        str(root / "link.gguf"),
        str(root / "more" / "real.gguf"),
    ]
    assert len({f.key for f in scan.files}) == 1


def test_fifo_is_listed_with_an_error_and_never_opened(tmp_path: Path) -> None:
    """Regression: opening a FIFO named like a model would block the scan forever."""
    root = tmp_path / "models"
    root.mkdir()
    os.mkfifo(root / "pipe.gguf")

    scan = scan_folders([root])

    assert len(scan.files) == 1
    assert scan.files[0].error == "not a regular file (a FIFO)"


def test_missing_folder_and_broken_symlink(tmp_path: Path) -> None:
    root = tmp_path / "models"
    root.mkdir()
    (root / "gone.gguf").symlink_to(tmp_path / "nowhere.gguf")

    scan = scan_folders([root, tmp_path / "absent"])

    assert [f.error for f in scan.files] == ["broken symlink"]
    assert scan.warnings == (f"{tmp_path / 'absent'}: no such folder",)


def test_hf_cache_files_carry_repo_revision_and_refs(tmp_path: Path) -> None:
    cache = tmp_path / "hf"
    link = hf_file(
        cache,
        "Qwen/Qwen2.5-0.5B-Instruct-GGUF",
        "qwen2.5-0.5b-instruct-q4_k_m.gguf",
        model(arch="qwen2"),
    )
    (link.parent / "README.md").write_text("not a model")
    old = hf_file(
        cache,
        "Qwen/Qwen2.5-0.5B-Instruct-GGUF",
        "qwen2.5-0.5b-instruct-q8_0.gguf",
        model(arch="qwen2"),
        revision="f" * 40,
        ref=None,
    )

    scan = hf_scan = scan_hf(cache)

    assert hf_scan.warnings == ()
    by_path = {f.path: f for f in scan.files}
    assert set(by_path) == {str(link), str(old)}
    current = by_path[str(link)]
    assert (current.source, current.hf_repo, current.hf_revision, current.hf_refs) == (
        "hf",
        "Qwen/Qwen2.5-0.5B-Instruct-GGUF",
        REVISION,
        ("main",),
    )
    assert current.ino == link.resolve().stat().st_ino
    assert by_path[str(old)].hf_refs == ()


def test_corrupt_hf_repo_is_a_warning_not_an_abort(tmp_path: Path) -> None:
    cache = tmp_path / "hf"
    link = hf_file(cache, "org/good-GGUF", "good-q4_k_m.gguf", model())
    (cache / "models--org--broken").mkdir()  # no snapshots folder

    scan = scan_hf(cache)

    assert [f.path for f in scan.files] == [str(link)]
    assert len(scan.warnings) == 1
    assert "models--org--broken" in scan.warnings[0]


def _hf_cache(**discovery: object) -> Path:
    """Where discovery looks for the Hugging Face cache, with the environment read now."""
    return hf_cache_dir(load_settings(discovery=discovery).discovery.hf_cache)


def test_hf_cache_location(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    assert scan_hf(tmp_path / "no-cache-here").files == ()
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hub-cache"))
    assert _hf_cache() == tmp_path / "hub-cache"
    assert _hf_cache(hf_cache=tmp_path / "configured") == tmp_path / "configured"
    monkeypatch.delenv("HF_HUB_CACHE")
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf-home"))
    assert _hf_cache() == tmp_path / "hf-home" / "hub"
    monkeypatch.delenv("HF_HOME")
    assert _hf_cache() == Path.home() / ".cache" / "huggingface" / "hub"


def test_ollama_names_as_ollama_shows_them(tmp_path: Path) -> None:
    store = tmp_path / "ollama"
    library = ollama_model(store, "llama3.2", "3b", model(arch="llama"))
    user = ollama_model(store, "qwen-coder", "7b", model(arch="qwen2"), namespace="someone")
    other = ollama_model(
        store, "phi", "mini", model(arch="phi3"), registry="hf.co", namespace="microsoft"
    )

    scan = scan_ollama(store)

    names = {f.path: f.ollama_name for f in scan.files}
    assert names == {
        str(library): "llama3.2:3b",
        str(user): "someone/qwen-coder:7b",
        str(other): "hf.co/microsoft/phi:mini",
    }
    assert all(f.source == "ollama" and f.error is None for f in scan.files)


def test_ollama_projector_layer_and_broken_entries(tmp_path: Path) -> None:
    store = tmp_path / "ollama"
    blob = ollama_model(
        store, "llava", "7b", model(arch="llama"), projector=model(arch="clip", clip=True)
    )
    bad = store / "manifests" / "registry.ollama.ai" / "library" / "broken" / "latest"
    bad.parent.mkdir(parents=True)
    bad.write_text("{not json")
    missing = store / "manifests" / "registry.ollama.ai" / "library" / "gone" / "1b"
    missing.parent.mkdir(parents=True)
    missing.write_text(
        '{"layers": [{"mediaType": "application/vnd.ollama.image.model", '
        '"digest": "sha256:abcdef"}]}'
    )

    scan = scan_ollama(store)

    by_name = {(f.ollama_name, f.projector): f for f in scan.files}
    main = by_name[("llava:7b", False)]
    projector = by_name[("llava:7b", True)]
    assert main.path == str(blob)
    assert main.ollama_projector == projector.path
    assert by_name[("gone:1b", False)].error == "no such file"
    assert len(scan.warnings) == 1
    assert "broken" in scan.warnings[0]


def test_ollama_location(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def located() -> Path:
        return ollama_models_dir(load_settings().discovery.ollama_models)

    assert located() == Path(os.environ["OLLAMA_MODELS"])
    monkeypatch.delenv("OLLAMA_MODELS")
    assert located() == Path.home() / ".ollama" / "models"
    assert scan_ollama(tmp_path / "none").files == ()
