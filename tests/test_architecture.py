"""The layering of docs/architecture.md, enforced by reading every module's imports.

Rules (each test names the offending module and import):

- imports only go down: ``protocol`` < ``config``, ``telemetry`` < ``pki`` < ``spool`` <
  ``server``, ``client`` < ``console`` < ``daemon`` < ``cli`` (``ALLOWED`` says exactly what
  each layer may import); every import counts, also one inside a function or
  under ``if TYPE_CHECKING:``, because a typing-only dependency on a higher
  layer is still a design dependency;
- ``protocol/`` is sans-IO: it imports no module whose job is I/O;
- there is no import cycle between modules among the imports that run when a
  module is imported (imports inside functions and under ``TYPE_CHECKING`` are
  the usual ways out of a cycle, so they are left out of this one check);
- no module is over ``MAX_LINES`` lines, except the few listed, at their
  current size, in ``OVERSIZE_ALLOWED``.

Why a plain ``ast`` test and not import-linter: it needs no dependency, sees the
same imports (function-local and ``TYPE_CHECKING`` ones included), and one file
holds all four rules; import-linter would cover the layering and the cycles but
not the stdlib I/O ban of ``protocol/`` nor the module size, so we would need
this test anyway.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

PACKAGE = "concentrador"
SOURCE_ROOT = Path(__file__).resolve().parent.parent / PACKAGE

LAYERS = (
    "protocol",
    "config",
    "telemetry",
    "pki",
    "spool",
    "server",
    "client",
    "console",
    "daemon",
    "cli",
)
# What each layer may import of ours (besides the root package, which only holds
# ``__version__``). ``server`` and ``client`` are siblings: neither imports the other.
# ``telemetry`` holds the metric objects every layer records into; it imports nothing of ours.
ALLOWED: dict[str, frozenset[str]] = {
    "protocol": frozenset({"protocol"}),
    "config": frozenset({"config", "protocol"}),
    "pki": frozenset({"pki", "config", "protocol"}),
    "telemetry": frozenset({"telemetry"}),
    "spool": frozenset({"spool", "config", "protocol", "telemetry"}),
    "server": frozenset({"server", "spool", "config", "protocol", "pki", "telemetry"}),
    "client": frozenset({"client", "spool", "config", "protocol", "pki", "telemetry"}),
    # The operator console reads the layers below and is started by the daemon.
    "console": frozenset(LAYERS) - {"daemon", "cli"},
    "daemon": frozenset(LAYERS) - {"cli"},
    "cli": frozenset(LAYERS),
    # ``python -m concentrador`` runs the CLI.
    "__main__": frozenset({"cli"}),
    # The root ``__init__`` runs on every ``import concentrador.<anything>``: an
    # import there would be an import from every layer, so it imports nothing of ours.
    "__init__": frozenset(),
}

# Modules whose job is I/O: the sans-IO protocol core imports none of them.
# (``importlib.resources`` reading the packaged WSDL and ``io.BytesIO`` are not I/O.)
IO_MODULES = frozenset(
    {
        "aiohttp",
        "apscheduler",
        "asyncio",
        "fcntl",
        "glob",
        "http",
        "mmap",
        "multiprocessing",
        "os",
        "pathlib",
        "select",
        "selectors",
        "shutil",
        "signal",
        "socket",
        "socketserver",
        "sqlite3",
        "ssl",
        "subprocess",
        "tempfile",
        "threading",
        "urllib.request",
        "watchdog",
        "zeep",
    }
)

MAX_LINES = 400
# Modules already over MAX_LINES, at their size when this test was written: they
# may shrink (then lower or drop the entry) but not grow. Split them, don't add more.
OVERSIZE_ALLOWED: dict[str, int] = {}


@dataclass(frozen=True)
class Import:
    """One imported module of one of our modules."""

    importer: str
    target: str
    line: int
    in_function: bool
    type_checking: bool

    @property
    def at_import_time(self) -> bool:
        """Whether this import runs when the importer itself is imported."""
        return not (self.in_function or self.type_checking)

    def __str__(self) -> str:
        where = " (in a function)" if self.in_function else ""
        where += " (under TYPE_CHECKING)" if self.type_checking else ""
        return f"{self.importer}:{self.line} imports {self.target}{where}"


def module_name(path: Path) -> str:
    parts = [PACKAGE, *path.relative_to(SOURCE_ROOT).with_suffix("").parts]
    if parts[-1] == "__init__" and len(parts) > 1:
        parts.pop()
    return ".".join(parts)


def discover_modules() -> dict[str, Path]:
    return {module_name(path): path for path in sorted(SOURCE_ROOT.rglob("*.py"))}


MODULES = discover_modules()


def is_type_checking_test(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def absolute_base(importer: str, is_package: bool, node: ast.ImportFrom) -> str:
    """The module a ``from ... import`` names, with relative dots resolved."""
    if not node.level:
        return node.module or ""
    package = importer.split(".") if is_package else importer.split(".")[:-1]
    package = package[: len(package) - (node.level - 1)]
    return ".".join([*package, node.module] if node.module else package)


def raw_imports(tree: ast.Module, importer: str, is_package: bool) -> Iterator[Import]:
    """Every imported module name, anywhere in the tree, with where it sits."""

    def visit(node: ast.AST, in_function: bool, type_checking: bool) -> Iterator[Import]:
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield Import(importer, alias.name, node.lineno, in_function, type_checking)
        elif isinstance(node, ast.ImportFrom):
            base = absolute_base(importer, is_package, node)
            for alias in node.names:
                # ``from pkg import sub`` imports the module ``pkg.sub`` when there is one.
                target = f"{base}.{alias.name}" if f"{base}.{alias.name}" in MODULES else base
                yield Import(importer, target, node.lineno, in_function, type_checking)
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda):
            in_function = True
        if isinstance(node, ast.If) and is_type_checking_test(node.test):
            for child in node.body:
                yield from visit(child, in_function, True)
            for child in node.orelse:
                yield from visit(child, in_function, type_checking)
            return
        for child in ast.iter_child_nodes(node):
            yield from visit(child, in_function, type_checking)

    yield from visit(tree, False, False)


def scan_imports() -> list[Import]:
    found: list[Import] = []
    for name, path in MODULES.items():
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        found.extend(raw_imports(tree, name, path.name == "__init__.py"))
    return found


IMPORTS = scan_imports()


def ours(imports: list[Import]) -> list[Import]:
    return [i for i in imports if i.target == PACKAGE or i.target.startswith(PACKAGE + ".")]


def layer_of(module: str) -> str | None:
    """The layer of one of our modules; ``None`` for the root package itself."""
    parts = module.split(".")
    if len(parts) == 1:
        return None
    return parts[1]


def importer_layer(module: str) -> str:
    return layer_of(module) or "__init__"


def test_the_scan_sees_the_whole_tree() -> None:
    # Without this, a wrong SOURCE_ROOT would make every other test pass on nothing.
    assert set(LAYERS) <= {layer_of(m) for m in MODULES}
    assert len(MODULES) > 50
    assert len(ours(IMPORTS)) > 200
    # No function-local import of ours is left in the tree to look for: the
    # next test proves on a sample that the scan sees them.
    assert any(i.type_checking for i in ours(IMPORTS))


def test_the_scan_sees_local_type_checking_and_relative_imports() -> None:
    source = (
        "from typing import TYPE_CHECKING\n"
        "import concentrador.spool.layout\n"
        "from . import faults\n"
        "if TYPE_CHECKING:\n"
        "    from concentrador.server.state import ServerState\n"
        "def f():\n"
        "    from concentrador.cli import main\n"
    )
    found = {
        i.target: i
        for i in raw_imports(ast.parse(source), "concentrador.protocol.soap", is_package=False)
    }
    assert found["concentrador.spool.layout"].at_import_time
    assert found["concentrador.protocol.faults"].at_import_time
    assert found["concentrador.server.state"].type_checking
    assert found["concentrador.cli"].in_function


def layering_offenders(imports: list[Import]) -> list[str]:
    offenders = []
    for found in ours(imports):
        layer = importer_layer(found.importer)
        target = layer_of(found.target)
        if target is None:
            continue  # the root package: ``__version__`` only
        if layer not in ALLOWED:
            offenders.append(f"{found}: {layer!r} is not a known layer (add it to ALLOWED)")
        elif target not in ALLOWED[layer]:
            offenders.append(
                f"{found}: {layer} may import only {sorted(ALLOWED[layer])}, not {target}"
            )
    return offenders


def io_offenders(imports: list[Import]) -> list[str]:
    return [
        str(found)
        for found in imports
        if layer_of(found.importer) == "protocol"
        and any(found.target == m or found.target.startswith(m + ".") for m in IO_MODULES)
    ]


def import_time_graph(imports: list[Import]) -> dict[str, dict[str, Import]]:
    graph: dict[str, dict[str, Import]] = {name: {} for name in MODULES}
    for found in ours(imports):
        if found.at_import_time and found.target in MODULES and found.target != found.importer:
            graph[found.importer].setdefault(found.target, found)
    return graph


def cycle_reports(imports: list[Import]) -> list[str]:
    graph = import_time_graph(imports)
    reports = []
    for group in strongly_connected(graph):
        if len(group) > 1:
            chain = shortest_cycle(graph, group[0], set(group))
            reports.append(f"{' <-> '.join(group)}:\n  " + "\n  ".join(map(str, chain)))
    return reports


def test_the_checks_catch_what_they_forbid() -> None:
    def edge(importer: str, target: str, *, in_function: bool = False) -> Import:
        return Import(importer, target, 1, in_function, type_checking=False)

    upward = edge("concentrador.spool.layout", "concentrador.server.app", in_function=True)
    [report] = layering_offenders([upward])
    assert report.startswith("concentrador.spool.layout:1 imports concentrador.server.app")
    assert layering_offenders([edge("concentrador.cli.client", "concentrador.client.push")]) == []
    assert io_offenders([edge("concentrador.protocol.soap", "asyncio")])
    assert io_offenders([edge("concentrador.protocol.soap", "os.path")])
    assert not io_offenders([edge("concentrador.protocol.soap", "osxmlfoo")])
    assert not io_offenders([edge("concentrador.spool.layout", "os")])
    loop = [
        edge("concentrador.protocol.soap", "concentrador.protocol.faults"),
        edge("concentrador.protocol.faults", "concentrador.protocol.dispatch"),
        edge("concentrador.protocol.dispatch", "concentrador.protocol.soap"),
    ]
    [report] = cycle_reports(loop)
    assert all(str(found) in report for found in loop)
    broken = [*loop[:2], edge(loop[2].importer, loop[2].target, in_function=True)]
    assert cycle_reports(broken) == []


def test_imports_only_go_down_the_layers() -> None:
    offenders = layering_offenders(IMPORTS)
    assert not offenders, "imports going up the layers:\n" + "\n".join(offenders)


def test_protocol_does_no_io() -> None:
    offenders = io_offenders(IMPORTS)
    assert not offenders, "protocol/ is sans-IO, yet:\n" + "\n".join(offenders)


def test_no_import_cycles() -> None:
    cycles = cycle_reports(IMPORTS)
    assert not cycles, "import cycles (move an import into a function or a module):\n" + (
        "\n".join(cycles)
    )


def strongly_connected(graph: dict[str, dict[str, Import]]) -> list[list[str]]:
    """Tarjan's algorithm, iterative: the groups of modules that import each other."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    groups: list[list[str]] = []
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
                    work.append((child, iter(graph[child])))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                group = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    group.append(member)
                    if member == node:
                        break
                groups.append(sorted(group))
    return groups


def shortest_cycle(
    graph: dict[str, dict[str, Import]], start: str, group: set[str]
) -> list[Import]:
    """The shortest chain of imports from ``start`` back to itself within ``group``."""
    came_from: dict[str, Import] = {}
    frontier = [start]
    while frontier:
        following = []
        for node in frontier:
            for target, found in graph[node].items():
                if target not in group or target in came_from:
                    continue
                came_from[target] = found
                if target == start:
                    chain = [found]
                    while chain[0].importer != start:
                        chain.insert(0, came_from[chain[0].importer])
                    return chain
                following.append(target)
        frontier = following
    raise AssertionError(f"{start} is in a cycle but none was found")


def line_count(path: Path) -> int:
    return len(path.read_text(encoding="utf-8").splitlines())


def test_no_module_is_too_long() -> None:
    offenders = []
    for name, path in MODULES.items():
        lines = line_count(path)
        limit = OVERSIZE_ALLOWED.get(name, MAX_LINES)
        if lines > limit:
            offenders.append(f"{name}: {lines} lines, over {limit}")
    assert not offenders, "modules too long (split them by concept):\n" + "\n".join(offenders)


def test_the_oversize_allowlist_is_not_stale() -> None:
    # An entry that no longer needs its slack must go, so the module cannot grow back.
    stale = []
    for name, allowed in OVERSIZE_ALLOWED.items():
        lines = line_count(MODULES[name]) if name in MODULES else 0
        if lines < allowed:
            stale.append(f"{name}: listed at {allowed}, now {lines} lines")
    assert not stale, "lower or drop these OVERSIZE_ALLOWED entries:\n" + "\n".join(stale)
