#!/usr/bin/env bash
# One command: set up (first run only) and start the dashboard at http://localhost:8501 (this machine only).
#   ./start.sh --share [--allow-server-paths] [--allow-trusted-pickles] [--allow-public-cluster] [--allow-streams]   serve it on every interface: visitors need
#   the link printed below (it carries a token) and may only upload files, unless the operator allows more
set -euo pipefail
cd "$(dirname "$0")"
scripts/setup-venv.sh requirements.txt
# Every browser session runs on its own thread; glibc gives threads their own malloc arenas (up to 8 per
# core) and memory freed in one is rarely handed back, so the server's memory would creep up session after
# session. Two arenas keep it flat (bench/memory_soak.py) at no measurable cost to inference.
export MALLOC_ARENA_MAX="${MALLOC_ARENA_MAX:-2}"
if [ "${1:-}" = "--share" ]; then
  shift
  port=8501
  args=()
  while [ $# -gt 0 ]; do
    case "$1" in
      --allow-server-paths) export YOLOLAB_ALLOW_SERVER_PATHS=1 ;;     # visitors may name paths on the server
      --allow-trusted-pickles) export YOLOLAB_ALLOW_TRUSTED_PICKLES=1 ;;  # visitors may load an ultralytics .pt
      --allow-public-cluster) export YOLOLAB_ALLOW_PUBLIC_CLUSTER=1 ;;    # $YOLOLAB_CLUSTER may be a public address
      --allow-streams) export YOLOLAB_ALLOW_STREAMS=1 ;;                  # visitors may open camera stream URLs (Live)
      --server.port) port="$2"; args+=("$1" "$2"); shift ;;
      *) args+=("$1") ;;
    esac
    shift
  done
  set -- "${args[@]+"${args[@]}"}"
  export YOLOLAB_SHARE=1
  if ! why="$(.venv/bin/python -c 'from ui.access import cluster_refusal; print(cluster_refusal())' 2>/dev/null)"; then
    why="could not check \$YOLOLAB_CLUSTER's address"
  fi
  if [ -n "$why" ]; then
    echo "start.sh --share refused: $why" >&2
    exit 2
  fi
  YOLOLAB_TOKEN="${YOLOLAB_TOKEN:-$(.venv/bin/python -c 'import secrets; print(secrets.token_urlsafe(24))')}"
  export YOLOLAB_TOKEN
  host="$(hostname -I 2>/dev/null | awk '{print $1}')"
  echo "Sharing YOLO Lab on every interface. Open (and share) this link: http://${host:-$(hostname)}:${port}/?token=${YOLOLAB_TOKEN}"
  exec .venv/bin/python -m streamlit run app.py --server.address 0.0.0.0 --logger.hideWelcomeMessage true "$@"
fi
exec .venv/bin/python -m streamlit run app.py "$@"
