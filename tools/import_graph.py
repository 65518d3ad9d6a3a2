"""Print which of Mantle's top-level packages import which, read from the source with `ast`.

    python tools/import_graph.py          # one line per package: what it imports
    python tools/import_graph.py --dot    # the same as a Graphviz digraph

Only imports of Mantle's own packages count; an import inside a function counts too (it is still a
dependency, only a later one). `tests/unit/test_layers.py` holds the edges DESIGN allows and fails
on any other, so this is the command to run when that test fails.
"""

from __future__ import annotations

import ast
import sys
from collections import defaultdict
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
PACKAGES = ("core", "models", "migrations", "inference", "blocks", "governance", "knowledge", "builder",
            "worker", "api", "twilio_sim", "cli", "bench")


def imports_of(path: Path) -> set[str]:
    """The top-level Mantle packages that the module at `path` imports."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names = [node.module]
        else:
            continue
        found.update(name.split(".")[0] for name in names if name.split(".")[0] in PACKAGES)
    return found


def graph(repo: Path = REPO) -> dict[str, set[str]]:
    """Each package's imports of the other packages."""
    edges: dict[str, set[str]] = defaultdict(set)
    for package in PACKAGES:
        for path in sorted((repo / package).rglob("*.py")):
            edges[package] |= imports_of(path) - {package}
    return {package: edges[package] for package in PACKAGES if (repo / package).is_dir()}


def main(argv: list[str]) -> None:
    """Print the graph as text lines, or as Graphviz with `--dot`."""
    edges = graph()
    if "--dot" in argv:
        print("digraph mantle {")
        for package, targets in edges.items():
            for target in sorted(targets):
                print(f'  "{package}" -> "{target}";')
        print("}")
        return
    for package, targets in edges.items():
        print(f"{package:<11} -> {', '.join(sorted(targets)) or '(nothing of ours)'}")


if __name__ == "__main__":
    main(sys.argv[1:])
