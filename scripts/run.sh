#!/usr/bin/env bash
# Installs everything (scripts/setup.sh), then runs modelyard's main job.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
export MODELYARD_PROFILE=${MODELYARD_PROFILE:-development}
exec .venv/bin/modelyard serve "$@"
