"""``python -m bench.discovery``: our header reader against gguf.GGUFReader, same run, same files.

Sections: build the tree (``tree.build_tree``), then time each reader over it. More sections
(a catalog rescan of the same unchanged tree) take the same ``Tree`` and add one call in
``main``.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import gguf

from bench.discovery.tree import Tree, build_tree
from modelyard.catalog.catalog import Catalog
from modelyard.catalog.gguf import DEFAULT_MAX_BYTES, read_header
from modelyard.settings import load_settings
from modelyard.store import Store

SPEED_GOAL = 1000  # times faster than GGUFReader
BYTES_GOAL = DEFAULT_MAX_BYTES
RESCAN_GOAL_S = 0.050  # an unchanged tree
RESCAN_RUNS = 10


@dataclass(frozen=True)
class Timing:
    """Per-file figures of one reader over some files."""

    files: int
    mean_s: float
    max_s: float
    mean_bytes: float
    max_bytes: int


def time_ours(paths: Sequence[Path]) -> Timing:
    seconds: list[float] = []
    read: list[int] = []
    for path in paths:
        start = time.perf_counter()
        header = read_header(path)
        seconds.append(time.perf_counter() - start)
        read.append(header.bytes_read)
    return Timing(
        len(paths), statistics.mean(seconds), max(seconds), statistics.mean(read), max(read)
    )


def time_gguf_reader(paths: Sequence[Path]) -> Timing:
    """GGUFReader memory-maps the file and parses every field and tensor info: its bytes read
    are counted as the file size."""
    seconds: list[float] = []
    sizes: list[int] = []
    for path in paths:
        start = time.perf_counter()
        reader = gguf.GGUFReader(path)
        _ = reader.fields, reader.tensors
        seconds.append(time.perf_counter() - start)
        sizes.append(path.stat().st_size)
        del reader
    return Timing(
        len(paths), statistics.mean(seconds), max(seconds), statistics.mean(sizes), max(sizes)
    )


def mib(count: float) -> str:
    return f"{count / (1024 * 1024):.2f} MiB"


def report(label: str, ours: Timing, theirs: Timing) -> bool:
    ratio = theirs.mean_s / ours.mean_s
    fast_enough = ratio >= SPEED_GOAL
    small_enough = ours.max_bytes <= BYTES_GOAL
    print(f"\n{label}")
    print(
        f"  read_header   {ours.files:4d} files  mean {ours.mean_s * 1e3:8.2f} ms  "
        f"max {ours.max_s * 1e3:8.2f} ms  bytes read mean {mib(ours.mean_bytes)} "
        f"max {mib(ours.max_bytes)}"
    )
    print(
        f"  GGUFReader    {theirs.files:4d} files  mean {theirs.mean_s * 1e3:8.0f} ms  "
        f"max {theirs.max_s * 1e3:8.0f} ms  bytes read mean {mib(theirs.mean_bytes)} "
        f"(file size: it maps and parses the whole file)"
    )
    speed_verdict = "met" if fast_enough else "MISSED"
    print(
        f"  ratio {ratio:,.0f}x faster (goal >= {SPEED_GOAL:,}x: {speed_verdict})"
        f"; max bytes read {mib(ours.max_bytes)} (goal <= {mib(BYTES_GOAL)}: "
        f"{'met' if small_enough else 'MISSED'})"
    )
    return fast_enough and small_enough


def reader_section(tree: Tree, sample: int) -> bool:
    """Both readers over the synthetic files (GGUFReader on a sample) and the Gemma file."""
    ours_synthetic = time_ours(tree.synthetic)
    # Files cycle through the four tokenizer shapes: BPE, BPE, SentencePiece, SentencePiece.
    picked = [tree.synthetic[index] for index in (0, 2, 1, 3) if index < len(tree.synthetic)]
    picked = picked[:sample]
    theirs_synthetic = time_gguf_reader(picked)
    ours_gemma = time_ours([tree.gemma] * 5)
    theirs_gemma = time_gguf_reader([tree.gemma])
    ok = report(
        f"Synthetic: {len(tree.synthetic)} files, 150,000-token vocabularies "
        f"(read_header on all; GGUFReader on {len(picked)} of them, one per tokenizer shape)",
        ours_synthetic,
        theirs_synthetic,
    )
    ok &= report(
        "Gemma 3 270M Q4_K_M (262,144-token vocabulary; read_header 5 times, GGUFReader once)",
        ours_gemma,
        theirs_gemma,
    )
    return ok


def rescan_section(tree: Tree, data_dir: Path) -> bool:
    """The catalog over the same tree: a first scan, then rescans of the unchanged tree."""
    settings = load_settings(
        data_dir=data_dir,
        discovery={"hf": False, "ollama": False, "default_model": False, "folders": [tree.root]},
    )
    store = Store.open(settings.db_path)
    try:
        catalog = Catalog(settings, store)
        first = catalog.rescan()
        times = []
        for _ in range(RESCAN_RUNS):
            start = time.perf_counter()
            report = catalog.rescan()
            times.append(time.perf_counter() - start)
            assert not (report.added or report.removed or report.changed)
    finally:
        store.close()
    median = statistics.median(times)
    ok = median <= RESCAN_GOAL_S
    print(
        f"\nCatalog rescan of the same tree ({first.models} models, {first.files} files)\n"
        f"  first scan     {first.duration_s * 1000:8.1f} ms ({first.headers_read} headers read)\n"
        f"  unchanged      median {median * 1000:6.1f} ms  min {min(times) * 1000:6.1f} ms  "
        f"max {max(times) * 1000:6.1f} ms over {RESCAN_RUNS} rescans\n"
        f"  goal <= {RESCAN_GOAL_S * 1000:.0f} ms: {'met' if ok else 'MISSED'}"
    )
    return ok


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.discovery", description=__doc__)
    parser.add_argument("--files", type=int, default=200, help="synthetic files (200)")
    parser.add_argument(
        "--reader-sample", type=int, default=2, help="synthetic files GGUFReader reads (2)"
    )
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="modelyard-bench-") as folder:
        start = time.perf_counter()
        tree = build_tree(Path(folder), args.files)
        print(
            f"Built {len(tree.synthetic)} synthetic files and the Gemma file in "
            f"{time.perf_counter() - start:.1f} s (files are in the page cache for both readers)"
        )
        ok = reader_section(tree, args.reader_sample)
        ok &= rescan_section(tree, Path(folder) / "data")
    print("\nall goals met" if ok else "\nsome goals MISSED")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
