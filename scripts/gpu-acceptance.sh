#!/usr/bin/env bash
# The GPU acceptance run, for the day a GPU machine is at hand (README, GPU machines):
#   scripts/gpu-acceptance.sh [--calib DIR] [--data VAL_DIR] [--video CLIP] [--out FILE.json]
# Uses .venv-gpu (the GPU requirements) when it exists, else .venv; under 8 minutes on one modern GPU.
# With ../shared beside the checkout (this project's data), the calibration, labelled set and clip default to it.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=.venv-gpu/bin/python
[ -x "$PY" ] || PY=.venv/bin/python
SHARED="${YOLOLAB_SHARED:-$(cd .. && pwd)/shared}"
defaults=()
if [ -d "$SHARED/datasets" ]; then
  defaults+=(--model "$SHARED/models/yolov5n.pt" --calib "$SHARED/datasets/coco128" --data "$SHARED/datasets/coco-val128")
  [ -f "$SHARED/videos/street_people_car_tokyo_360p.mp4" ] && defaults+=(--video "$SHARED/videos/street_people_car_tokyo_360p.mp4")
fi
exec "$PY" scripts/gpu_acceptance.py "${defaults[@]}" "$@"
