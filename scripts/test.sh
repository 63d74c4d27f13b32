#!/usr/bin/env bash
# Installs everything (scripts/setup.sh), then runs the checks: ruff, mypy --strict, the import
# contracts (lint-imports, [tool.importlinter] in pyproject.toml), pytest.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
.venv/bin/ruff check src tests bench
.venv/bin/ruff format --check src tests bench
.venv/bin/mypy
.venv/bin/lint-imports
.venv/bin/pytest "$@"
