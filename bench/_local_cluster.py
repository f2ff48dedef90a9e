"""What the cluster bench scripts share: a local two-node Ray cluster, and writing their JSON."""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from core import cluster as cl

ROOT = Path(__file__).resolve().parent.parent


@contextlib.contextmanager
def two_nodes(name: str = "box") -> Iterator[cl.Cluster]:
    """A head and a second node called ``name`` (one CPU each) on this machine, connected; shut down after."""
    from ray.cluster_utils import Cluster

    os.environ["PYTHONPATH"] = str(ROOT)  # the nodes' workers import core
    c = Cluster(initialize_head=True, head_node_args={"num_cpus": 1})
    c.add_node(num_cpus=1, resources={name: 1})
    c.wait_for_nodes()
    try:
        yield cl.connect(c.address)
    finally:
        cl.disconnect()
        c.shutdown()


def write_json(path: Path, out: dict[str, Any]) -> None:
    """The full JSON to ``path``; the figures (all but the machine description) to stdout."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(out, indent=2))
    print(json.dumps({k: v for k, v in out.items() if k != "system"}, indent=2))
