"""The deployment bundle: what was measured, as a zip that runs and checks itself on the target.

A bundle holds the exact graph the variant's runtime ran (for the CPU backends: the variant's ONNX file cut before
the Detect head's box decode, as :mod:`core.runtime.head` runs it; its source file's sha256 checked against the
store's record), the settings around it (class names, input size and shape policy, letterbox, thresholds, the box
decode's strides and anchors, the INT8 recipe if any), the decision card as JSON, a standalone ``infer.py``
(onnxruntime or openvino, numpy and opencv; no import of this project) that reproduces the letterbox, decode and
NMS, and ``verify.py``, which runs ``infer.py`` on the images the decision was measured on (in the zip, or their
sha256 when too large) and checks the detections against the recorded ones (boxes within 1 px, confidences within
0.001). TensorRT variants ship the ONNX file and the engine build settings: an engine is tied to its GPU and
TensorRT version.

Zip entries are plain relative names under one folder; nothing from the machine that made it (paths, users) is
written into them.
"""

from __future__ import annotations

import hashlib
import io
import json
import re
import zipfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from core.cache import read_verified
from core.data import load_image
from core.errors import InputError, RuntimeUnavailableError
from core.measure import DecisionCard
from core.model import ModelStore, SourceKind
from core.progress import Progress, no_progress, scaled
from core.results import Result
from core.runtime import BackendOptions, Detector, HeadGraphs, PostParams, head_from_model, system_info
from core.tables import Column, Table
from core.variants import Runtime, Shape, Variant

STANDALONE = Path(__file__).with_name("standalone")
FORMAT = 1  # bundle.json's schema
TOLERANCE = {"box_px": 1.0, "confidence": 0.001}  # what verify.py accepts as the same detection
MAX_IMAGE_BYTES = 8 << 20  # an image larger than this is listed by its sha256, not included
MAX_IMAGES_BYTES = 32 << 20  # nor once the images included reach this much
PAD_VALUE = 114  # the letterbox's gray (core.runtime.geometry)
MAX_WH = 7680  # class offset of the one-pass class-aware NMS (core.runtime.geometry)
MAX_NMS_CANDIDATES = 30000  # (core.runtime.processing)
_ZIP_TIME = (1980, 1, 1, 0, 0, 0)  # fixed: the same inputs make the same zip

# runtime -> (package infer.py runs it with, ONNX Runtime providers); TensorRT kinds ship build settings instead
_RUNS_WITH: dict[Runtime, tuple[str, list[str]]] = {
    Runtime.ORT: ("onnxruntime", ["CPUExecutionProvider"]),
    Runtime.ORT_CUDA: ("onnxruntime", ["CUDAExecutionProvider", "CPUExecutionProvider"]),
    Runtime.OV: ("openvino", []),
    Runtime.ORT_TRT: ("tensorrt", []),
    Runtime.TRT: ("tensorrt", []),
}
_OV_HINT = {"fp32": "f32", "bf16": "bf16", "int8": "f32"}  # core.runtime.backends.openvino


@dataclass(frozen=True)
class ShipImage:
    """One image the decision was measured on, and what the variant found in it."""

    name: str  # the name it had (a file name, no folders)
    data: bytes = field(repr=False)
    detections: list[dict[str, Any]] | None = None  # records (class_id, class_name, confidence, xyxy); None: unknown
    input_hw: tuple[int, int] | None = None

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.data).hexdigest()


@dataclass
class ShipRun(Result):
    """A bundle written: what it holds and where its recorded detections come from."""

    kind = "ship"
    variant: str
    out: str
    bytes: int
    model_file: str  # the graph in the zip ("model.onnx")
    model_sha256: str
    source_file: str  # the variant's file in the store it was made from
    source_sha256: str
    recorded_from: str  # "compare RESULT.json" / "the sample pictures"
    rerun: str  # what the re-run here found ("reproduced: ...", "not run here: ...")
    images: list[dict[str, Any]]
    entries: list[dict[str, Any]]

    def table(self) -> Table:
        rows = [(e["name"], e["bytes"], e["what"]) for e in self.entries]
        notes = (
            f"{self.variant}: {self.model_file} sha256 {self.model_sha256[:16]}…, from {self.source_file} "
            f"(sha256 {self.source_sha256[:16]}…, checked against the store's record)",
            f"detections recorded from {self.recorded_from}; {self.rerun}",
            "on the target: pip install -r requirements.txt, then python verify.py (exit 0: detections as recorded)",
        )
        return Table((Column("file"), Column("bytes"), Column("what")), rows, notes)

    def text(self) -> str:
        return f"wrote {self.out} ({self.bytes / 1e6:.1f} MB)\n" + self.table().to_text()


@dataclass(frozen=True)
class Bundle:
    """A bundle made in memory: the zip's bytes, its folder name and its manifest."""

    data: bytes = field(repr=False)
    folder: str
    manifest: dict[str, Any]
    entries: list[dict[str, Any]]
    rerun: str


def check_shippable(variant: Variant) -> None:
    if variant.node:
        raise InputError(f"{variant} runs on a cluster node: ship it as {variant.base} (the bundle is the same file)")
    if variant.runtime not in _RUNS_WITH:
        raise InputError(
            f"{variant} runs the PyTorch checkpoint; ship takes ONNX Runtime, OpenVINO and TensorRT variants "
            "(e.g. ort:fp32: the same model exported to ONNX)"
        )


def _safe_name(name: str, taken: set[str]) -> str:
    """A plain file name for the zip (no folders, no odd characters), unique among ``taken``."""
    base = re.sub(r"[^A-Za-z0-9._-]+", "_", Path(name.replace("\\", "/")).name).lstrip(".") or "image"
    candidate, k = base, 1
    while candidate in taken:
        stem, dot, ext = base.rpartition(".")
        candidate = f"{stem or base}-{k}{dot}{ext}" if dot else f"{base}-{k}"
        k += 1
    taken.add(candidate)
    return candidate


def _records(dets: Any) -> list[dict[str, Any]]:
    return [
        {**r, "confidence": round(float(c), 5)}
        for r, c in zip(dets.to_records(ndigits=3), dets.confidence, strict=True)
    ]


def match_detections(recorded: Sequence[dict[str, Any]], found: Sequence[dict[str, Any]], conf: float) -> list[str]:
    """What differs between two detection lists of one image (empty when they agree within :data:`TOLERANCE`;
    a box within the confidence tolerance of the threshold may be on either side of it). verify.py does the same."""
    box_tol, conf_tol = TOLERANCE["box_px"], TOLERANCE["confidence"]
    left = list(range(len(found)))
    problems = []
    for r in recorded:
        hit = next(
            (
                k
                for k in left
                if found[k]["class_id"] == r["class_id"]
                and abs(found[k]["confidence"] - r["confidence"]) <= conf_tol
                and max(abs(a - b) for a, b in zip(found[k]["xyxy"], r["xyxy"], strict=True)) <= box_tol
            ),
            None,
        )
        if hit is not None:
            left.remove(hit)
        elif r["confidence"] - conf > conf_tol:
            problems.append(f"recorded {r['class_name']} {r['confidence']:.3f} not found")
    problems += [
        f"extra {found[k]['class_name']} {found[k]['confidence']:.3f}"
        for k in left
        if found[k]["confidence"] - conf > conf_tol
    ]
    return problems


def _graph(store: ModelStore, variant: Variant, source: Path) -> tuple[bytes, dict[str, Any], str]:
    """The graph the variant's runtime runs, its decode settings, and how it relates to ``source``."""
    import onnx

    proto = onnx.load(str(source), load_external_data=False)
    head = head_from_model(proto)
    rect = store.shape is Shape.RECT
    cut = head is not None and (variant.runtime in (Runtime.ORT, Runtime.OV) or rect)
    info = store.info()
    if not cut:
        if rect:
            dims = proto.graph.input[0].type.tensor_type.shape.dim
            if all(d.dim_value for d in dims[2:]):
                raise InputError(
                    f"{source.name} has a fixed input size and no YOLOv5 head metadata: only the square shape ships",
                )
        decode = {"kind": "graph", "layout": info.layout.value, "output": proto.graph.output[0].name}
        return source.read_bytes(), decode, f"{source.name} itself (the whole graph, box decode included)"
    assert head is not None
    graphs = HeadGraphs(proto, head)
    data = graphs.graph(1, None, dynamic_sides=True) if rect else graphs.graph()
    decode = {
        "kind": "head",
        "layout": info.layout.value,
        "outputs": list(head.outputs),
        "strides": list(head.strides),
        "anchors": head.anchors.tolist(),
        "num_outputs": head.num_outputs,
    }
    sides = ", Resizes by scale and height and width open (rect)" if rect else ""
    how = f"{source.name} cut before the Detect head's box decode{sides}, as {variant.runtime.label} runs it"
    return data, decode, how


def _runtime(variant: Variant, versions: dict[str, str]) -> dict[str, Any]:
    package, providers = _RUNS_WITH[variant.runtime]
    spec: dict[str, Any] = {"variant_runtime": variant.runtime.value, "package": package}
    if package == "onnxruntime":
        spec |= {"providers": providers, "graph_optimization": "ORT_ENABLE_ALL", "version": versions.get(package, "")}
    elif package == "openvino":
        hint = _OV_HINT.get(variant.precision.value, "f32")
        spec |= {
            "config": {"PERFORMANCE_HINT": "LATENCY", "INFERENCE_PRECISION_HINT": hint},
            "version": versions.get(package, ""),
        }
    return spec


def _build_settings(variant: Variant, store: ModelStore, workspace_mb: int) -> dict[str, Any]:
    """How the TensorRT engine was built from the ONNX file (core.runtime.backends.tensorrt): rebuild it so."""
    hw = store.input_hw
    rect = store.shape is Shape.RECT
    shapes = (
        f" --minShapes=images:1x3x32x32 --optShapes=images:1x3x{hw[0]}x{hw[1]} --maxShapes=images:1x3x{hw[0]}x{hw[1]}"
        if rect
        else ""
    )
    return {
        "network": "strongly typed (the ONNX file decides each layer's precision: FP32, FP16, or INT8 Q/DQ)",
        "precision": variant.precision.value,
        "workspace_mb": workspace_mb,
        "input_hw": list(hw),
        "shape": store.shape.value,
        "trtexec": f"trtexec --onnx=model.onnx --stronglyTyped --memPoolSize=workspace:{workspace_mb}M"
        f"{shapes} --saveEngine=model.engine",
        "why": "a TensorRT engine is tied to the GPU model and TensorRT version that built it; build it on the target",
    }


def _requirements(package: str, version: str) -> str:
    pin = f"=={version.split('-')[0]}" if version else ""
    runtime = f"{package}{pin}  # the version the detections were recorded with\n" if package != "tensorrt" else ""
    return f"{runtime}numpy\nopencv-python-headless\n"


def _readme(manifest: dict[str, Any]) -> str:
    v, rt = manifest["variant"], manifest["runtime"]["package"]
    lines = [
        f"{manifest['model']['name']} as {v}: deployment bundle",
        "",
        f"model.onnx       the graph {v} ran ({manifest['model']['derived']})",
        "bundle.json      class names, input size and shape, letterbox, thresholds, box decode, recorded detections",
        "decision.json    the decision card this variant was chosen on",
        "infer.py         python infer.py IMAGE... [--json]   (needs only requirements.txt; no import of the tool)",
        "verify.py        python verify.py   re-runs infer.py on images/ and checks the recorded detections",
        "",
        "On the target:  pip install -r requirements.txt && python verify.py",
    ]
    if rt == "tensorrt":
        lines += ["", "TensorRT: build the engine on the target GPU with build.json's settings (its trtexec line)."]
    return "\n".join(lines) + "\n"


def _detect_all(det: Detector, images: Sequence[ShipImage], params: PostParams, progress: Progress) -> list[Any]:
    out = []
    for k, im in enumerate(images):
        progress(k / max(1, len(images)), f"running {det.variant} on {im.name}")
        rgb = load_image(im.data, im.name)
        out.append((det.detect(rgb, params).detections, det.hw_for(rgb.shape[:2])))
    return out


def make_bundle(
    store: ModelStore,
    variant: Variant,
    images: Sequence[ShipImage],
    params: PostParams,
    *,
    decision: dict[str, Any] | None = None,
    recorded_from: str = "the sample pictures",
    options: BackendOptions | None = None,
    progress: Progress = no_progress,
) -> Bundle:
    """The zip for ``variant`` of ``store``'s model. Images whose ``detections`` are given (a compare run's) keep
    them, after a run here confirms the store's file reproduces them (an error says where it does not); images
    without are recorded from that run. A variant that cannot run here ships with what was given (nothing for a
    TensorRT variant made without a result: its bundle says so)."""
    check_shippable(variant)
    if not images:
        raise InputError("ship needs at least one image to record the detections on")
    if any(im.detections is None for im in images) and params.classes is not None and not params.classes:
        raise InputError("--classes selects no class")
    source = store.variant_artefact(variant, scaled(progress, 0.0, 0.3))
    if store.source.kind is SourceKind.ONNX and source == store.source.path:
        source_sha = store.source.sha256
    else:
        checked = read_verified(source)
        if checked is None:
            raise InputError(f"{source.name} does not match its recorded sha256: it was changed; run again to rebuild")
        source_sha = checked.sha256
    graph, decode, derived = _graph(store, variant, source)
    info = store.info()
    versions = system_info().get("versions", {})
    runtime = _runtime(variant, versions)

    found: list[Any] | None = None
    rerun = ""
    try:
        det = store.open_detector(variant, options, scaled(progress, 0.3, 0.5))
    except RuntimeUnavailableError as exc:
        rerun = f"not run here ({exc})"
    else:
        try:
            found = _detect_all(det, images, params, scaled(progress, 0.5, 0.95))
        finally:
            det.close()
    recorded: list[dict[str, Any]] = []
    taken: set[str] = set()
    included = 0
    problems = []
    for k, im in enumerate(images):
        entry: dict[str, Any] = {"name": _safe_name(im.name, set()), "sha256": im.sha256, "bytes": len(im.data)}
        dets, hw = im.detections, im.input_hw
        if found is not None:
            here = _records(found[k][0])
            if dets is None:
                dets, hw = here, found[k][1]
            elif differ := match_detections(dets, here, params.conf):
                problems.append(f"{im.name}: " + "; ".join(differ[:3]))
        entry["input_hw"] = list(hw) if hw else None
        entry["detections"] = dets
        if len(im.data) <= MAX_IMAGE_BYTES and included + len(im.data) <= MAX_IMAGES_BYTES:
            entry["file"] = f"images/{_safe_name(im.name, taken)}"
            included += len(im.data)
        recorded.append(entry)
    if problems:
        raise InputError(
            f"the {variant} file built here does not reproduce the recorded detections ({'; '.join(problems[:2])}): "
            "open the model with the same options the result was measured with (calibration folder and method, "
            "weight bits, image size, shape)"
        )
    if found is not None:
        total = f"{sum(len(e['detections'] or []) for e in recorded)} detections on {len(recorded)} images"
        given = any(im.detections is not None for im in images)
        rerun = (
            f"re-run here: the same {total} (boxes within {TOLERANCE['box_px']:g} px, confidences within "
            f"{TOLERANCE['confidence']:g})"
            if given
            else f"run here: {total}"
        )

    folder = re.sub(r"[^A-Za-z0-9._-]+", "-", f"{store.source.name}-{variant}").strip("-")
    manifest: dict[str, Any] = {
        "format": FORMAT,
        "variant": str(variant),
        "model": {
            "name": store.source.name,
            "file": "model.onnx",
            "sha256": hashlib.sha256(graph).hexdigest(),
            "bytes": len(graph),
            "source_file": source.name,
            "source_sha256": source_sha,
            "derived": derived,
        },
        "runtime": runtime,
        "class_names": list(info.names),
        "input": {
            "size": store.input_size,
            "hw": list(store.input_hw),
            "shape": store.shape.value,
            "stride": info.stride,
            "layout": "NCHW float32 RGB 0..1",
        },
        "letterbox": {
            "pad_value": PAD_VALUE,
            "interpolation": "bilinear (cv2.INTER_LINEAR)",
            "centred": True,
            "scale_up": True,
        },
        "postprocess": {
            "conf": params.conf,
            "iou": params.iou,
            "max_det": params.max_det,
            "classes": list(params.classes) if params.classes is not None else None,
            "class_aware_nms": True,
            "class_offset": MAX_WH,
            "max_nms_candidates": MAX_NMS_CANDIDATES,
        },
        "decode": decode,
        "tolerance": TOLERANCE,
        "recorded_from": recorded_from,
        "rerun": rerun,
        "measured_on": {k: system_info().get(k) for k in ("cpu", "cpu_summary", "gpu", "os")} | {"versions": versions},
        "images": recorded,
    }
    if found is None and all(im.detections is None for im in images):
        manifest["not_recorded"] = (
            f"{variant} could not run where the bundle was made ({rerun}); no detections recorded"
        )
    if runtime["package"] == "tensorrt":
        manifest["runs_with"] = (
            f"{variant} runs a TensorRT engine: build it on the target GPU from model.onnx with build.json's settings"
        )
    if variant.recipe:
        manifest["recipe"] = store.recipes.get(variant.recipe).to_dict()

    entries: list[tuple[str, bytes, str]] = [
        ("model.onnx", graph, f"the graph {variant} ran"),
        ("bundle.json", json.dumps(manifest, indent=2).encode(), "settings and recorded detections"),
        (
            "decision.json",
            json.dumps(
                decision
                or {
                    "variant": str(variant),
                    "decision": None,
                    "note": "made without a decision card (no --from result)",
                },
                indent=2,
            ).encode(),
            "the decision card",
        ),
        ("infer.py", (STANDALONE / "infer.py").read_bytes(), "standalone inference"),
        ("verify.py", (STANDALONE / "verify.py").read_bytes(), "checks the recorded detections"),
        ("requirements.txt", _requirements(runtime["package"], runtime.get("version", "")).encode(), "what to install"),
        ("README.txt", _readme(manifest).encode(), "how to run it"),
    ]
    if "recipe" in manifest:
        entries.append(("recipe.json", json.dumps(manifest["recipe"], indent=2).encode(), "the INT8 recipe"))
    if runtime["package"] == "tensorrt":
        workspace = (options or BackendOptions()).tensorrt.workspace_mb
        settings = _build_settings(variant, store, workspace)
        entries.append(("build.json", json.dumps(settings, indent=2).encode(), "TensorRT engine build settings"))
    for im, entry in zip(images, recorded, strict=True):
        if "file" in entry:
            entries.append((entry["file"], im.data, "an image the decision was measured on"))
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, data, _ in entries:
            zi = zipfile.ZipInfo(f"{folder}/{name}", _ZIP_TIME)
            zi.compress_type = zipfile.ZIP_DEFLATED
            zi.external_attr = 0o644 << 16
            zf.writestr(zi, data)
    progress(1.0, "bundle ready")
    listed = [{"name": name, "bytes": len(data), "what": what} for name, data, what in entries]
    return Bundle(buf.getvalue(), folder, manifest, listed, rerun)


def card_dict(card: DecisionCard) -> dict[str, Any]:
    """The decision card as JSON: its headline and each number with its spread or interval."""
    return {
        "variant": card.variant,
        "reference": card.reference,
        "headline": card.headline(),
        "latency_ms": card.latency.to_dict() if card.latency else None,
        "latency_source": card.latency_source,
        "fps": round(card.fps, 2) if card.fps else None,
        "speedup": card.speedup.to_dict() if card.speedup else None,
        "delta_map": card.delta.to_dict() if card.delta else None,
        "agreement": card.agreement.to_dict() if card.agreement else None,
        "conf": card.conf,
        "model_mb": card.model_mb,
        "memory_mb": card.memory_mb,
        "runs_on": card.runs_on,
    }


def compare_decision(doc: dict[str, Any], variant: str) -> dict[str, Any]:
    """What a compare result says about ``variant`` against its reference, image by image, as the decision."""
    per_image = []
    for im in doc["images"]:
        row = next(v for v in im["variants"] if v["variant"] == variant)
        per_image.append({"image": Path(im["image"]).name, "latency_ms": row["latency_ms"],
                          "agreement": row["agreement"], "input_hw": row.get("input_hw")})  # fmt: skip
    parts = [p["agreement"] for p in per_image if p["agreement"]]
    totals = {k: sum(p[k] for p in parts) for k in ("matched", "missed", "extra")} if parts else None
    return {
        "variant": variant,
        "reference": doc["reference"],
        "source": "compare",
        "conf": doc["conf"],
        "agreement_total": totals,
        "images": per_image,
        "latency_note": "ms per image, end to end (letterbox + inference + NMS): median and p10-p90 of the timed runs",
    }


def images_from_compare(doc: dict[str, Any], variant: str, base: Path) -> list[ShipImage]:
    """The images a compare result was measured on, with ``variant``'s detections. A relative name is looked up
    from the working folder, then beside the result file; a recorded digest must match."""
    if doc.get("kind") != "compare":
        raise InputError(
            f"ship --from takes a compare --json result (it records detections per image); this is a "
            f"{doc.get('kind') or 'file without a kind'!s} result"
        )
    out = []
    for im in doc.get("images", []):
        row = next((v for v in im["variants"] if v["variant"] == variant), None)
        if row is None:
            ran = ", ".join(v["variant"] for v in im["variants"])
            raise InputError(f"the result has no {variant} (it compared {ran})")
        path = Path(im["image"])
        if not path.is_file() and not path.is_absolute():
            path = base / path
        try:
            data = path.read_bytes()
        except OSError as exc:
            raise InputError(f"{im['image']}: the image the result was measured on cannot be read ({exc})") from exc
        digest = im.get("digest")
        if digest and hashlib.sha256(data).hexdigest()[: len(digest)] != digest:
            raise InputError(f"{path}: not the picture the result was measured on (its content changed)")
        hw = row.get("input_hw")
        out.append(ShipImage(path.name, data, list(row["detections"]), tuple(hw) if hw else None))
    if not out:
        raise InputError("the result lists no images")
    return out


def check_compare_settings(doc: dict[str, Any], store: ModelStore) -> None:
    """The model options must be the ones the result was measured with (else its detections cannot be reproduced)."""
    if doc.get("model") and doc["model"] != store.source.name:
        raise InputError(f"the result was measured with model {doc['model']}, not {store.source.name}: pass --model")
    shape = doc.get("shape", Shape.SQUARE.value)
    if shape != store.shape.value:
        raise InputError(f"the result was measured with the {shape} input shape: pass --shape {shape}")
    if doc.get("imgsz") and doc["imgsz"] != store.input_size:
        raise InputError(f"the result was measured at image size {doc['imgsz']}: pass --imgsz {doc['imgsz']}")


def compare_params(doc: dict[str, Any]) -> PostParams:
    classes = doc.get("classes")
    return PostParams(conf=float(doc["conf"]), iou=float(doc["iou"]), max_det=int(doc.get("max_det", 300)),
                      classes=tuple(classes) if classes else None)  # fmt: skip


def sample_ship_images(paths: Sequence[Path]) -> list[ShipImage]:
    return [ShipImage(p.name, p.read_bytes()) for p in paths]
