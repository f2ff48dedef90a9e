"""Static or dynamic input sides: which runs a rect shape faster, per CPU runtime (issue: input shape).

    .venv/bin/python bench/shape_sessions.py [--model yolov5n] [--calib DIR] [--hw 384x640] [--rounds 7]

The rect shape runs the FP32, FP16 and INT8 files made for 640x640, cut at the Detect head with their Resizes
scaling (core.runtime.head). A runtime can run that graph either with the input's height and width fixed to the
shape (one session or compiled model per shape) or left dynamic (one for every shape); each backend keeps what this
measured faster (Zen 4: ONNX Runtime dynamic sides, 1-6 % faster; OpenVINO static, 4-60 % faster).
For each runtime and file, both run the same random batch in alternating order over ``--rounds`` rounds of
``--calls`` calls; the figure is the median ms per call and the ratio dynamic / static (above 1: static wins).
Prints markdown, writes JSON with --out.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import numpy as np
import onnx

from core.model import open_store
from core.runtime import machine_line, physical_cores, system_info
from core.runtime.head import cut_at_head, head_from_model, resize_by_scales
from core.variants import Variant


def _dynamic(graph: bytes) -> bytes:
    model = onnx.ModelProto()
    model.ParseFromString(graph)
    dims = model.graph.input[0].type.tensor_type.shape.dim
    for axis, name in ((2, "height"), (3, "width")):
        dims[axis].Clear()
        dims[axis].dim_param = name
    return model.SerializeToString()


def _ort(graph: bytes):
    import onnxruntime as ort

    so = ort.SessionOptions()
    so.intra_op_num_threads = physical_cores()
    so.log_severity_level = 4
    session = ort.InferenceSession(graph, so, providers=["CPUExecutionProvider"])
    return lambda x: session.run(None, {session.get_inputs()[0].name: x})


def _ov(graph: bytes):
    import openvino as ov

    core = ov.Core()
    compiled = core.compile_model(
        core.read_model(graph),
        "CPU",
        {"PERFORMANCE_HINT": "LATENCY", "INFERENCE_NUM_THREADS": physical_cores(), "INFERENCE_PRECISION_HINT": "f32"},
    )  # as ov:fp32 and ov:int8 compile it (the default hint is bf16 on some CPUs)
    request = compiled.create_infer_request()
    return lambda x: request.infer({0: x})


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default="yolov5n")
    ap.add_argument("--calib", type=Path, default=None)
    ap.add_argument("--hw", default="384x640", help="the rect input, HEIGHTxWIDTH")
    ap.add_argument("--rounds", type=int, default=7)
    ap.add_argument("--calls", type=int, default=10)
    ap.add_argument("--out", type=Path, default=None)
    args = ap.parse_args()
    hw = tuple(int(v) for v in args.hw.lower().split("x"))
    store = open_store(args.model, calib_dir=args.calib)
    x = np.random.default_rng(0).random((1, 3, *hw), dtype=np.float32)
    files = ["ort:fp32", "ort:fp16"] + (["ort:int8"] if args.calib else [])
    rows = []
    for name in files:
        proto = onnx.load(str(store.variant_artefact(Variant.parse(name))))
        static = cut_at_head(resize_by_scales(proto), head_from_model(proto), 1, hw)
        for runtime, make in (("onnxruntime", _ort), ("openvino", _ov)):
            if runtime == "openvino" and name == "ort:fp16":
                continue  # OpenVINO runs the FP32 file (ov:bf16 is a hint on it), never the FP16 one
            runs = {"static": make(static), "dynamic": make(_dynamic(static))}
            times: dict[str, list[float]] = {k: [] for k in runs}
            for fn in runs.values():
                fn(x)  # first call allocates
            for r in range(args.rounds):
                for k in list(runs)[:: 1 if r % 2 == 0 else -1]:
                    t = time.perf_counter()
                    for _ in range(args.calls):
                        runs[k](x)
                    times[k].append((time.perf_counter() - t) * 1e3 / args.calls)
            med = {k: statistics.median(v) for k, v in times.items()}
            rows.append({"runtime": runtime, "file": Variant.parse(name).spec.artefact.value,
                         "static_ms": round(med["static"], 2), "dynamic_ms": round(med["dynamic"], 2),
                         "dynamic_over_static": round(med["dynamic"] / med["static"], 3)})  # fmt: skip
    machine = machine_line(system_info())
    print(f"{machine}; input {hw[1]}x{hw[0]}, {args.rounds} rounds x {args.calls} calls\n")
    print("| runtime | file | static sides ms | dynamic sides ms | dynamic / static |\n|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['runtime']} | {r['file']} | {r['static_ms']} | {r['dynamic_ms']} | {r['dynamic_over_static']} |")
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps({"machine": machine, "hw": list(hw), "rows": rows}, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
