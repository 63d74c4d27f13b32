"""Discovery benchmark: our GGUF header reader against ``gguf.GGUFReader``.

Run from the repository root: ``.venv/bin/python -m bench.discovery``.
"""
