"""The architecture as a test: who may import whom, and no import cycles.

Data flows one way: sources -> snapshots -> pure computation -> faces.  Every import
statement of the product counts, at module level or inside a function (a lazy import is
still a dependency), except those under ``if TYPE_CHECKING:`` (types only).
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("tui", "widgets")

#: Pure computation: no I/O, no Textual, no clients, no simulator, no faces.
PURE = {"tui.chain", "tui.network", "tui.stats", "tui.economics", "tui.site", "tui.alerts",
        "tui.dashboard", "tui.model", "tui.history", "tui.safe", "tui.wire", "tui.fleet",
        "tui.fmt", "tui.glyphs", "tui.curtail", "tui.squeeze", "tui.tariff"}
IO_MODULES = {"httpx", "aiohttp", "asyncio", "socket", "sqlite3", "smtplib", "subprocess",
              "ssl", "http", "urllib.request", "textual", "rich", "threading", "select"}
#: The engine and every headless face: never Textual.
HEADLESS = {"tui.engine", "tui.spec", "tui.demo", "tui.api", "tui.logs", "tui.config",
            "tui.catalog", "tui.store", "tui.notify", "tui.daemon", "tui.remote", "tui.wire",
            "tui.metrics", "tui.sources.prometheus", "tui.tokens"}


def module_name(path: Path) -> str:
    rel = path.relative_to(ROOT).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _type_checking_block(node: ast.AST) -> bool:
    return isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test)


def imports_of(path: Path) -> set[str]:
    """Every module ``path`` imports (absolute names), TYPE_CHECKING blocks aside."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    me = module_name(path)
    pkg = me if path.name == "__init__.py" else me.rpartition(".")[0]
    found: set[str] = set()

    def visit(node: ast.AST) -> None:
        if _type_checking_block(node):
            for child in node.orelse:  # type: ignore[attr-defined]
                visit(child)
            return
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                up = pkg.split(".")
                up = up[: len(up) - (node.level - 1)]
                base = ".".join(up + ([base] if base else []))
            found.add(base)
            for a in node.names:  # "from tui import chain" imports the module tui.chain
                found.add(f"{base}.{a.name}")
        for child in ast.iter_child_nodes(node):
            visit(child)

    visit(tree)
    return found


def product_modules() -> dict[str, Path]:
    out = {}
    for pkg in PACKAGES:
        for path in (ROOT / pkg).rglob("*.py"):
            out[module_name(path)] = path
    return out


MODULES = product_modules()
GRAPH = {name: imports_of(path) for name, path in MODULES.items()}


def internal(name: str) -> set[str]:
    """The product modules ``name`` depends on (a ``from a import b`` of a function of
    ``a`` names ``a``)."""
    return {m for m in GRAPH[name] if m in MODULES and m != name}


def hits(name: str, forbidden: set[str]) -> list[str]:
    return sorted(m for m in GRAPH[name]
                  if any(m == f or m.startswith(f + ".") for f in forbidden))


def test_the_modules_named_in_the_rules_exist() -> None:
    for name in PURE | {"tui.engine", "tui.spec", "tui.demo"}:
        assert name in MODULES, name


@pytest.mark.parametrize("name", sorted(PURE))
def test_pure_computation_does_no_io_and_no_textual(name: str) -> None:
    bad = hits(name, IO_MODULES | {"tui.sources", "tui.sim", "tui.engine", "tui.app",
                                   "tui.cli", "widgets", "tui.store", "tui.daemon"})
    assert not bad, f"{name} imports {bad}"


def test_sources_import_no_textual_no_simulator_no_faces() -> None:
    for name in MODULES:
        if name.startswith("tui.sources"):
            bad = hits(name, {"textual", "tui.sim", "tui.demo", "tui.app", "tui.engine",
                              "widgets", "tui.cli", "tui.daemon"})
            assert not bad, f"{name} imports {bad}"


@pytest.mark.parametrize("name", sorted(HEADLESS))
def test_the_engine_and_headless_faces_import_no_textual(name: str) -> None:
    if name not in MODULES:
        pytest.fail(f"{name} is listed as headless but does not exist")
    bad = hits(name, {"textual", "widgets", "tui.app"})
    assert not bad, f"{name} imports {bad}"


def test_panes_import_no_sources_and_never_fetch() -> None:
    for name in MODULES:
        if name.startswith("widgets"):
            bad = hits(name, {"tui.sources", "tui.engine", "tui.sim", "tui.demo", "httpx",
                              "aiohttp", "socket", "sqlite3", "tui.store", "tui.daemon"})
            assert not bad, f"{name} imports {bad}"


def test_only_the_demo_wiring_imports_the_simulator() -> None:
    allowed = {"tui.demo", "tui.cli"}  # tui.cli: the `minertop sim` subcommand
    for name in MODULES:
        if name.startswith("tui.sim") or name in allowed:
            continue
        assert not hits(name, {"tui.sim"}), f"{name} imports the simulator"


def _cycles() -> list[list[str]]:
    """Every elementary cycle's representative (Tarjan's strongly connected components)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on: set[str] = set()
    out: list[list[str]] = []
    counter = [0]

    def strong(v: str) -> None:
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in sorted(internal(v)):
            if w not in index:
                strong(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))

    for v in sorted(MODULES):
        if v not in index:
            strong(v)
    return out


def test_no_import_cycles() -> None:
    cycles = _cycles()
    assert not cycles, f"import cycles: {cycles}"


def test_the_checker_sees_a_cycle_and_a_forbidden_import(tmp_path: Path) -> None:
    """The rules above would fail on a violation (a test of the test)."""
    saved = dict(GRAPH)
    try:
        GRAPH["tui.chain"] = GRAPH["tui.chain"] | {"textual.app", "tui.engine"}
        assert hits("tui.chain", IO_MODULES) == ["textual.app"]
        assert ["tui.chain", "tui.engine"] in [
            [m for m in c if m in ("tui.chain", "tui.engine")] for c in _cycles()]
    finally:
        GRAPH.clear()
        GRAPH.update(saved)
