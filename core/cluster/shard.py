"""Sharded evaluation: the labelled images split into chunks that run on whichever node is free, each chunk
in a fresh actor; the result is the same as one process's (a lost chunk is retried elsewhere)."""

from __future__ import annotations

import time
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from core.cluster.remote import _DetectorActor, _first_line
from core.errors import InputError, RuntimeUnavailableError

if TYPE_CHECKING:
    from core.cluster.session import Cluster
    from core.model import ModelStore
    from core.runtime import ModelInfo, PostParams
    from core.variants import Variant


CHUNK_IMAGES = 16  # images per task: progress, load balance and retries at this grain


STALL_S = 300.0  # no chunk finished for this long, none running anywhere: an error, not a hang


def _collect_chunk(
    items: list[tuple[str, bytes, np.ndarray]],
    artefacts: list[tuple[str, str, str, Any]],
    info: ModelInfo,
    input_hw: tuple[int, int],
    display: PostParams,
    shape: str = "square",
) -> tuple[Any, list[int], list[str]]:
    """Runs on a node: the chunk's images through every variant (``core.measure.evaluation.collect``)."""
    import tempfile

    import ray

    from core.data import LabelledImage
    from core.measure import collect
    from core.runtime import BackendOptions
    from core.variants import Shape

    actor = _DetectorActor()
    dets = []
    for variant, name, sha, data in artefacts:
        payload = ray.get(data) if isinstance(data, ray.ObjectRef) else data
        actor.load(variant, name, sha, payload, info, input_hw, BackendOptions(threads=1, shape=Shape(shape)))
        dets.append(actor.det)
    with tempfile.TemporaryDirectory(prefix="yololab-shard-") as tmp:
        labelled = []
        for i, (name, blob, labels) in enumerate(items):
            path = Path(tmp) / f"{i:06d}-{Path(name).name}"
            path.write_bytes(blob)
            labelled.append(LabelledImage(path, labels))
        got, shown, unreadable = collect(dets, labelled, display, True)
        readable = [int(p.name.split("-", 1)[0]) for p in shown]
    for d in dets:
        d.close()
    return got, readable, [n.split("-", 1)[1] for n in unreadable]


def sharded_collect(
    cluster: Cluster,
    store: ModelStore,
    variants: Sequence[Variant],
    items: Sequence[Any],
    shards: int,
    display: PostParams,
    progress: Any = None,
    stall_s: float = STALL_S,
) -> tuple[list[Any], list[Path], list[str]]:
    """:func:`core.measure.evaluation.collect` over the cluster: chunks of :data:`CHUNK_IMAGES` images, at most
    ``shards`` at a time, anywhere there is a free CPU; a chunk whose worker or node dies is retried
    elsewhere (Ray's task retries). The chunks' results are merged in image order, so every statistic
    equals one process's on the same images."""
    import ray

    from core.measure import Collected

    if shards < 1:
        raise InputError(f"a sharded eval needs at least 1 shard, got {shards}")
    artefacts = []
    for v in variants:
        if v.node:
            raise InputError(f"{v}: a sharded evaluation runs every variant on every node; drop the node")
        path = store.variant_artefact(v)
        sha, ref = cluster.ship(path)
        artefacts.append((str(v), path.name, sha, ref))
    chunks = [list(items[i : i + CHUNK_IMAGES]) for i in range(0, len(items), CHUNK_IMAGES)]
    task = ray.remote(num_cpus=1, max_retries=3, retry_exceptions=False, scheduling_strategy="SPREAD")(_collect_chunk)
    info, hw = store.info(), store.input_hw
    pending: dict[Any, int] = {}
    done: dict[int, tuple[Any, list[int], list[str]]] = {}
    queue = list(range(len(chunks)))
    last = time.monotonic()
    while queue or pending:
        while queue and len(pending) < shards:
            k = queue.pop(0)
            payload = [(str(it.image), it.image.read_bytes(), it.labels) for it in chunks[k]]
            pending[task.remote(payload, artefacts, info, hw, display, store.shape.value)] = k
        ready, _ = ray.wait(list(pending), num_returns=1, timeout=1.0)
        for ref in ready:
            k = pending.pop(ref)
            first, last_img = k * CHUNK_IMAGES + 1, k * CHUNK_IMAGES + len(chunks[k])
            try:
                done[k] = ray.get(ref)
            except Exception as exc:
                for other in pending:
                    ray.cancel(other, force=True)
                why = _first_line(exc)
                raise RuntimeUnavailableError(
                    f"shard {k + 1} of {len(chunks)} (images {first}-{last_img}) failed on every try: {why}"
                ) from None
            last = time.monotonic()
            if progress is not None:
                progress(len(done) / len(chunks), f"shard {k + 1}/{len(chunks)} done ({len(done)} of {len(chunks)})")
        if pending and time.monotonic() - last > stall_s:
            for other in pending:
                ray.cancel(other, force=True)
            alive = ", ".join(n.name for n in cluster.nodes()) or "none"
            raise RuntimeUnavailableError(
                f"no shard finished for {stall_s:.0f} s and {len(pending)} wait for a node (live nodes: {alive}): "
                "stopped"
            )
    per_variant = [Collected.merge([done[k][0][i] for k in range(len(chunks))]) for i in range(len(variants))]
    shown: list[Path] = []
    unreadable: list[str] = []
    for k in range(len(chunks)):
        _, readable, bad = done[k]
        shown += [chunks[k][i].image for i in readable]
        unreadable += bad
    return per_variant, shown, unreadable
