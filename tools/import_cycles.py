"""Fail when the import graph has a cycle, function-local imports included.

import-linter's layers contract keeps the packages in order; this check covers what it
does not: cycles between modules of one package (`a` imports `b` imports `a`), in the
library and in the applications. Run by `make lint`:

    python tools/import_cycles.py capstone service batch dashboards
"""

from __future__ import annotations

import sys
from pathlib import Path

import grimp

sys.path.insert(0, str(Path.cwd()))  # run from the repository root


def strongly_connected(graph: grimp.ImportGraph) -> list[list[str]]:
    """Tarjan's algorithm over the module graph; components of more than one module."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    on_stack: set[str] = set()
    stack: list[str] = []
    found: list[list[str]] = []
    counter = 0
    for root in sorted(graph.modules):
        if root in index:
            continue
        work = [(root, iter(sorted(graph.find_modules_directly_imported_by(root))))]
        index[root] = low[root] = counter
        counter += 1
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = counter
                    counter += 1
                    stack.append(child)
                    on_stack.add(child)
                    work.append(
                        (child, iter(sorted(graph.find_modules_directly_imported_by(child))))
                    )
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                parent = work[-1][0]
                low[parent] = min(low[parent], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                if len(component) > 1:
                    found.append(sorted(component))
    return found


def main(packages: list[str]) -> int:
    graph = grimp.build_graph(
        *packages,
        include_external_packages=False,
        exclude_type_checking_imports=True,  # annotations only: never executed
        cache_dir=None,
    )
    cycles = strongly_connected(graph)
    for component in cycles:
        print("import cycle:", " <-> ".join(component))
    print(f"{len(graph.modules)} modules, {len(cycles)} import cycle(s)")
    return 1 if cycles else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:] or ["capstone", "service", "batch", "dashboards"]))
