"""Check this bundle on the target: the model file is the one measured, and infer.py finds the recorded detections.

    python verify.py [--images DIR]

Checks the sha256 of the model file and of each image, runs infer.py on the images the decision was measured on
(in images/, or found by their sha256 in ``--images DIR`` when they were too large to include), and compares its
detections with the recorded ones: same count and classes, boxes within 1 px, confidences within 0.001 (a box
whose confidence is within 0.001 of the threshold may be on either side of it). Exit status 0 when everything
matches, 1 when something does not (one line says what), 2 when it cannot be checked here.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def fail(message: str, code: int = 1) -> int:
    print(f"FAIL: {message}" if code == 1 else f"cannot verify: {message}", file=sys.stderr)
    return code


def find_image(entry: dict, search: Path | None) -> Path | None:
    if entry.get("file"):
        return HERE / entry["file"]
    if search is None or not search.is_dir():
        return None
    for path in sorted(search.rglob("*")):
        if path.is_file() and path.stat().st_size == entry["bytes"] and sha256_file(path) == entry["sha256"]:
            return path
    return None


def match(recorded: list[dict], found: list[dict], conf: float, tol: dict) -> tuple[list[str], float, float]:
    """Problems (empty when they agree), the largest box and confidence differences among matched pairs."""
    box_tol, conf_tol = float(tol["box_px"]), float(tol["confidence"])
    left = list(range(len(found)))
    problems: list[str] = []
    worst_box = worst_conf = 0.0
    for r in recorded:
        best = None
        for k in left:
            f = found[k]
            if f["class_id"] != r["class_id"]:
                continue
            dbox = max(abs(a - b) for a, b in zip(f["xyxy"], r["xyxy"], strict=True))
            dconf = abs(f["confidence"] - r["confidence"])
            if dbox <= box_tol and dconf <= conf_tol and (best is None or dbox < best[1]):
                best = (k, dbox, dconf)
        if best is None:
            if r["confidence"] - conf > conf_tol:  # not a borderline box: it should have been found
                box = ", ".join(f"{v:.1f}" for v in r["xyxy"])
                problems.append(f"recorded {r['class_name']} {r['confidence']:.3f} [{box}] not found")
            continue
        left.remove(best[0])
        worst_box, worst_conf = max(worst_box, best[1]), max(worst_conf, best[2])
    for k in left:
        f = found[k]
        if f["confidence"] - conf > conf_tol:
            box = ", ".join(f"{v:.1f}" for v in f["xyxy"])
            problems.append(f"extra {f['class_name']} {f['confidence']:.3f} [{box}] not recorded")
    return problems, worst_box, worst_conf


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--images", type=Path, help="folder holding the images the bundle lists only by sha256")
    args = p.parse_args(argv)
    manifest = json.loads((HERE / "bundle.json").read_text())
    model = manifest["model"]
    path = HERE / model["file"]
    if not path.is_file():
        return fail(f"{model['file']} is missing from the bundle")
    digest = sha256_file(path)
    if digest != model["sha256"]:
        return fail(
            f"{model['file']} has sha256 {digest[:16]}…, not the measured file's {model['sha256'][:16]}…: "
            "it was changed or damaged; unpack the bundle again"
        )
    print(f"{model['file']}: sha256 {digest[:16]}… matches ({manifest['variant']}, {model['bytes']} bytes)")
    recorded = manifest.get("images") or []
    if not any(im.get("detections") is not None for im in recorded):
        return fail(manifest.get("not_recorded") or "the bundle records no detections to compare with", 2)
    runtime = manifest["runtime"]
    if runtime["package"] not in ("onnxruntime", "openvino"):
        return fail(manifest.get("runs_with") or f"{manifest['variant']} needs its own runtime to run", 2)
    try:
        sys.path.insert(0, str(HERE))
        import infer
    except ImportError as exc:
        return fail(f"{exc}: pip install -r requirements.txt", 2)
    try:
        net = infer.load(HERE)
    except ImportError as exc:
        return fail(f"{exc}: pip install -r requirements.txt", 2)
    conf = float(manifest["postprocess"]["conf"])
    tol = manifest["tolerance"]
    bad = 0
    for entry in recorded:
        if entry.get("detections") is None:
            continue
        image = find_image(entry, args.images)
        if image is None or not image.is_file():
            where = "pass --images DIR (the folder that holds it)" if not entry.get("file") else "missing from images/"
            return fail(f"{entry['name']} (sha256 {entry['sha256'][:16]}…): {where}", 2)
        if sha256_file(image) != entry["sha256"]:
            return fail(f"{image.name}: sha256 does not match the image the detections were recorded on")
        found = net.detect(infer.read_image(image)).records(net.names)
        problems, dbox, dconf = match(entry["detections"], found, conf, tol)
        if problems:
            bad += 1
            counts = f"{len(found)} detections, {len(entry['detections'])} recorded"
            print(f"{entry['name']}: {counts}: " + "; ".join(problems))
        else:
            print(
                f"{entry['name']}: {len(found)} detections as recorded "
                f"(largest difference: box {dbox:.3f} px, confidence {dconf:.4f})"
            )
    if bad:
        return fail(
            f"{bad} of {len(recorded)} images differ from the recorded detections (boxes within "
            f"{tol['box_px']} px, confidences within {tol['confidence']})"
        )
    print(f"OK: {len(recorded)} images, detections as recorded by {manifest['variant']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
