#!/usr/bin/env bash
# One command: set up (first run only) and start the dashboard at http://localhost:8501
set -euo pipefail
cd "$(dirname "$0")"
scripts/setup-venv.sh requirements.txt
# Every browser session runs on its own thread; glibc gives threads their own malloc arenas (up to 8 per
# core) and memory freed in one is rarely handed back, so the server's memory would creep up session after
# session. Two arenas keep it flat (bench/memory_soak.py) at no measurable cost to inference.
export MALLOC_ARENA_MAX="${MALLOC_ARENA_MAX:-2}"
exec .venv/bin/python -m streamlit run app.py "$@"
