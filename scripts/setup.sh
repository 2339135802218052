#!/usr/bin/env bash
# Quick start, step 1: install the Debian packages, build, install icl under
# /usr/local (Lua module, library, the `icl` command) and run the demo.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/deps.sh
scripts/build.sh
cmake --install build >/dev/null
echo "icl: installed $(command -v icl)"
exec scripts/demo.sh
