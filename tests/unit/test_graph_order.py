"""`PackageGraph.order` is networkx's lexicographical topological sort, exactly."""
from __future__ import annotations

import random

import networkx as nx
import pytest

from orchestrator.graph import PackageGraph


@pytest.mark.parametrize("seed", range(60))
def test_order_equals_networkx(seed: int) -> None:
    rng = random.Random(seed)
    n = rng.randint(1, 80)
    names = [f"{rng.choice('abc')}/{rng.randint(0, 999):03d}@{i}" for i in range(n)]
    graph = nx.DiGraph()
    graph.add_nodes_from(names)
    for i in range(n):  # edges only forward in a random permutation: acyclic
        for j in range(i + 1, n):
            if rng.random() < 0.08:
                graph.add_edge(names[i], names[j])
    assert PackageGraph({}, graph).order() == list(nx.lexicographical_topological_sort(graph))
