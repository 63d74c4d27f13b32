#!/usr/bin/env bash
# Installs everything (scripts/setup.sh), then runs modelyard's main job.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
exec .venv/bin/modelyard serve "$@"
