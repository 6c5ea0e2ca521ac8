#!/usr/bin/env bash
# Sets up everything (tools/setup.sh, a no-op when nothing changed), then runs the test suite.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
bash "$ROOT/tools/setup.sh"
cd "$ROOT"
.venv/bin/ruff check .  # style and unused names first (ruff.toml)
exec .venv/bin/python -m pytest "$@"
