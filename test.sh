#!/usr/bin/env bash
# One command: set up (first run only) and run the whole test suite. Extra arguments go to pytest.
# Real-model tests read ../shared (or $YOLOLAB_SHARED); browser tests need Debian's chromium.
set -euo pipefail
cd "$(dirname "$0")"
scripts/setup-venv.sh requirements-dev.txt
exec .venv/bin/python -m pytest "$@"
