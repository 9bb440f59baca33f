"""The import layers of docs/architecture.md, checked on the source: no module imports a
higher layer, and no two modules import each other, directly or round a loop.

Every import counts, wherever it stands: at the top, inside a function (a late import
hides a dependency, it does not remove it) and under ``if TYPE_CHECKING:`` (a type names
the layer it comes from).  A module that no row of :data:`LAYERS` covers fails too, so a
new package has to be placed in the table (and in docs/architecture.md) when it appears.
"""

from __future__ import annotations

import ast
import functools
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("gateway", "inbound", "outbound", "rules")

#: Lowest first.  A module may import its own layer or lower ones.  A row names a module
#: or a package (then every module under it); the longest matching row wins.  The bare
#: ``gateway`` is only the package's ``__init__`` (see :data:`EXACT`), not what is under it.
LAYERS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("errors", ("gateway", "gateway.errors")),
    ("rules", ("rules",)),
    ("kernel", ("gateway.config", "gateway.db", "gateway.prepared", "gateway.logs",
                "gateway.models", "gateway.secrets", "gateway.leases", "gateway.memory",
                "gateway.directory", "gateway.tickets", "gateway.active_policy",
                "gateway.migrations", "gateway.job_items")),
    ("edges", ("inbound", "outbound")),
    ("domain", ("gateway.services", "gateway.views", "gateway.trust", "gateway.thread_index",
                "gateway.decisions", "gateway.escalation", "gateway.escalation_notice",
                "gateway.notices", "gateway.recommendations", "gateway.visible_tickets",
                "gateway.satisfaction", "gateway.participants", "gateway.callbacks",
                "gateway.insights")),
    ("features", ("gateway.pipeline", "gateway.grants", "gateway.bulk", "gateway.pending",
                  "gateway.hub")),
    ("runtime", ("gateway.runtime", "gateway.web")),
    ("entry points", ("gateway.cli", "gateway.__main__")),
)


#: Rows that name one module, not the package under it.
EXACT = frozenset({"gateway"})


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _sources() -> dict[str, Path]:
    return {_module_name(path): path for package in PACKAGES
            for path in sorted((ROOT / package).rglob("*.py"))}


MODULES = _sources()


def layer_of(module: str) -> int | None:
    """Index in :data:`LAYERS` of the longest row covering ``module``; None if none does."""
    best: tuple[int, int] | None = None
    for index, (_, prefixes) in enumerate(LAYERS):
        for prefix in prefixes:
            covers = module == prefix or (prefix not in EXACT
                                          and module.startswith(prefix + "."))
            if covers and (best is None or len(prefix) > best[1]):
                best = (index, len(prefix))
    return None if best is None else best[0]


def _is_package(module: str) -> bool:
    return MODULES[module].name == "__init__.py"


def _resolve(module: str, node: ast.ImportFrom) -> str:
    if not node.level:
        return node.module or ""
    base = module.split(".")
    if not _is_package(module):
        base.pop()
    base = base[:len(base) - (node.level - 1)]
    return ".".join([*base, *([node.module] if node.module else [])])


def _owned(name: str) -> str | None:
    """The longest prefix of ``name`` that is one of our modules (None: a third party)."""
    parts = name.split(".")
    while parts:
        candidate = ".".join(parts)
        if candidate in MODULES:
            return candidate
        parts.pop()
    return None


@functools.cache
def imports_of(module: str) -> tuple[tuple[str, int], ...]:
    """(imported module of ours, line) for every import statement in ``module``."""
    return tuple(_imports(module))


def _imports(module: str) -> Iterator[tuple[str, int]]:
    tree = ast.parse(MODULES[module].read_text(encoding="utf-8"), str(MODULES[module]))
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                target = _owned(alias.name)
                if target is not None:
                    yield target, node.lineno
        elif isinstance(node, ast.ImportFrom):
            base = _resolve(module, node)
            for alias in node.names:
                target = _owned(f"{base}.{alias.name}") or _owned(base)
                if target is not None:
                    yield target, node.lineno


GRAPH = {module: sorted({t for t, _ in imports_of(module) if t != module}) for module in MODULES}


def test_every_module_has_a_layer() -> None:
    unplaced = [module for module in MODULES if layer_of(module) is None]
    assert not unplaced, f"modules in no row of LAYERS (add them there and to " \
                         f"docs/architecture.md): {unplaced}"


def test_no_module_imports_a_higher_layer() -> None:
    offences: list[str] = []
    for module in MODULES:
        own = layer_of(module)
        for target, line in imports_of(module):
            theirs = layer_of(target)
            if own is None or theirs is None or theirs <= own:
                continue
            offences.append(f"{MODULES[module].relative_to(ROOT)}:{line}: {module} "
                            f"({LAYERS[own][0]}) imports {target} ({LAYERS[theirs][0]})")
    assert not offences, "imports of a higher layer:\n" + "\n".join(offences)


def _components(graph: dict[str, list[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    for root in graph:
        if root in index:
            continue
        work: list[tuple[str, Iterator[str]]] = [(root, iter(graph[root]))]
        index[root] = low[root] = len(index)
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = len(index)
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(graph.get(child, []))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
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


def _a_cycle(graph: dict[str, list[str]], members: list[str]) -> list[str]:
    """One concrete loop through a component, shortest from its first member (BFS)."""
    inside = set(members)
    start = members[0]
    came_from: dict[str, str] = {}
    frontier = [start]
    while frontier:
        following = []
        for node in frontier:
            for child in graph[node]:
                if child == start:
                    path = [node]
                    while path[-1] != start:
                        path.append(came_from[path[-1]])
                    return [*reversed(path), start]
                if child in inside and child not in came_from:
                    came_from[child] = node
                    following.append(child)
        frontier = following
    return members  # unreachable for a real component


def test_no_import_cycle() -> None:
    cycles = [" → ".join(_a_cycle(GRAPH, members)) for members in _components(GRAPH)]
    assert not cycles, "import cycles:\n" + "\n".join(cycles)


@pytest.mark.parametrize(("graph", "expected"), [
    ({"a": ["b"], "b": ["c"], "c": ["a"], "d": ["a"]}, [["a", "b", "c"]]),
    ({"a": ["b"], "b": []}, []),
])
def test_the_cycle_finder_finds_cycles(graph: dict[str, list[str]],
                                       expected: list[list[str]]) -> None:
    assert _components(graph) == expected
    for members in expected:
        loop = _a_cycle(graph, members)
        assert loop[0] == loop[-1] and set(loop) == set(members)


def test_layer_of_takes_the_longest_row() -> None:
    names = [name for name, _ in LAYERS]
    assert names[layer_of("gateway.errors") or 0] == "errors"
    assert names[layer_of("gateway.pipeline.steps.parse") or 0] == "features"
    assert names[layer_of("inbound.parsing.message") or 0] == "edges"
    assert layer_of("gateway.nonexistent") is None  # "gateway" covers only its __init__
