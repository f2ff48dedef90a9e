"""The Ray cluster's nodes and, per node, which runtimes can run there.

``python -m core cluster [--cluster HOST:PORT|auto] [--json]``
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from typing import Any

from core.cli import options
from core.progress import TqdmProgress
from core.results import Result
from core.tables import Column, Table

GROUPS = (options.cluster, options.output)


def arguments(p: argparse.ArgumentParser) -> None:
    """Only the shared groups."""


@dataclass
class ClusterReport(Result):
    """The cluster's nodes, each with what its doctor says can run there."""

    kind = "cluster"
    address: str
    nodes: list[dict[str, Any]]

    def table(self) -> Table:
        columns = (Column("node"), Column("ip"), Column("CPUs"), Column("GB"), Column("GPUs"), Column("runs"))
        rows = [
            (n["handle"], n["ip"], n["cpus"], n["memory_gb"], n["gpus"],
             ", ".join(r["runtime"] for r in n["runtimes"] if r["available"]))
            for n in self.nodes
        ]  # fmt: skip
        return Table(columns, rows)

    def text(self) -> str:
        lines = [f"cluster {self.address}: {len(self.nodes)} node(s)"]
        lines.append("  a variant runs on a node as NODE/runtime:precision, NODE as named first on its line")
        for n in self.nodes:
            head = ", head" if n["head"] else ""
            here = ", this process's node" if n["here"] else ""
            lines.append(
                f"  {n['handle']} ({n['ip']}{head}{here}): {n['cpus']:g} CPUs, {n['memory_gb']} GB, {n['gpus']:g} GPUs"
            )
            if n.get("error"):
                lines.append(f"    cannot run this project's code there: {n['error']}")
            for r in n["runtimes"]:
                state = "yes" if r["available"] else f"no: {r['reason']}"
                lines.append(f"    {r['runtime']:<11} {state}")
        return "\n".join(lines)


def run(args: argparse.Namespace) -> ClusterReport:
    from core.cluster import connect

    cluster = connect(args.cluster)
    with TqdmProgress("doctor on every node", enabled=not args.json) as bar:
        bar(0.1, "asking the nodes")
        nodes = cluster.doctor()
    return ClusterReport(cluster.address, nodes)
