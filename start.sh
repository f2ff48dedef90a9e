#!/usr/bin/env bash
# One command: set up (first run only) and start the dashboard at http://localhost:8501
set -euo pipefail
cd "$(dirname "$0")"
scripts/setup-venv.sh requirements.txt
exec .venv/bin/python -m streamlit run app.py "$@"
