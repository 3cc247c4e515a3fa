"""The package's shape: one wing per part, imports flowing one way, no circle, small modules.

Read from the source with `ast`, every import counted (also those inside functions and under
TYPE_CHECKING), so a wrong-way import fails here before it becomes a habit. docs/ARCHITECTURE.md
explains the rule; this test is its enforcement.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Iterator
from pathlib import Path

import pytest

import wechaty_exporter

PACKAGE = "wechaty_exporter"
SRC = Path(wechaty_exporter.__file__).parent
MAX_LINES = 600

# What each wing (or top-level module) may import of ours, besides itself.
# Import no wing:
PRIMITIVES = {"settings", "qrimage", "webconfig", "webserver", "privatefiles", "__init__"}
ALLOWED: dict[str, set[str]] = {
    "logs": set(),  # the pure core stands alone
    "exporter": {"logs"} | PRIMITIVES,
    "delivery": PRIMITIVES,  # reaches the exporter only over HTTP
    "chatops": {"delivery"} | PRIMITIVES,  # uses delivery's messenger protocol and clients
    "peerbot": {"chatops", "delivery", "logs"} | PRIMITIVES,  # logs: the self-log line format
    "settings": set(),
    "qrimage": set(),
    "privatefiles": set(),  # files that hold login QRs: 0700 dirs, 0600 files, no links
    "webconfig": {"settings"},  # --web.config.file: TLS and basic auth for every HTTP server
    "webserver": {"settings"},  # header deadline and connection cap for every HTTP server
    "environment": set(),  # flags from the environment, for the CLI
    "__init__": set(),
    "config": {
        "settings",
        "exporter.settings",
        "delivery.settings",
        "chatops.settings",  # receiver.commands: the chat commands' keys
        "peerbot.settings",
    },
    "cli": {"*"},
    "__main__": {"cli"},
}


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(SRC).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join([PACKAGE, *parts])


MODULES = {_module_name(p): p for p in sorted(SRC.rglob("*.py"))}


def _imports(path: Path, name: str) -> Iterator[str]:
    """Every module of ours that `path` imports (resolving `from pkg import submodule`)."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.rsplit(".", node.level - 1)[0] if node.level > 1 else package
                module = f"{base}.{node.module}" if node.module else base
            else:
                module = node.module or ""
            targets = [
                f"{module}.{alias.name}" if f"{module}.{alias.name}" in MODULES else module
                for alias in node.names
            ]
        else:
            continue
        for target in targets:
            if target == PACKAGE or target.startswith(PACKAGE + "."):
                # `import a.b.c` names a module; climb to the nearest one we have.
                while target not in MODULES and "." in target:
                    target = target.rpartition(".")[0]
                if target != name:
                    yield target


GRAPH = {name: set(_imports(path, name)) for name, path in MODULES.items()}


def _place(module: str) -> str:
    """The wing or top-level module that `module` belongs to."""
    rest = module.removeprefix(PACKAGE).lstrip(".")
    return rest.split(".")[0] if rest else "__init__"


def _allowed(source: str, target: str) -> bool:
    here, there = _place(source), _place(target)
    if here == there:
        return True
    allowed = ALLOWED[here]
    sub = target.removeprefix(PACKAGE + ".")
    return "*" in allowed or there in allowed or sub in allowed


def test_every_place_is_known() -> None:
    assert {_place(m) for m in MODULES} <= set(ALLOWED), "a new wing needs its rule in ALLOWED"
    for wing in ("logs", "exporter", "delivery", "chatops", "peerbot"):
        assert (SRC / wing / "__init__.py").is_file(), f"wing {wing} is missing"


def test_imports_flow_one_way() -> None:
    wrong = sorted(
        f"{source} imports {target}"
        for source, targets in GRAPH.items()
        for target in targets
        if not _allowed(source, target)
    )
    assert not wrong, "wrong-way imports:\n" + "\n".join(wrong)


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in sorted(graph.get(node, ())):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
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

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def test_no_import_circle() -> None:
    assert not _cycles(GRAPH), f"import circles: {_cycles(GRAPH)}"


def test_the_circle_finder_finds_circles() -> None:
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}
    assert _cycles(graph) == [["a", "b", "c"]]
    assert _cycles({"a": {"b"}, "b": set()}) == []


def test_the_rule_catches_a_wrong_way_import() -> None:
    assert not _allowed(f"{PACKAGE}.logs.state", f"{PACKAGE}.exporter.collector")
    assert not _allowed(f"{PACKAGE}.delivery.receiver", f"{PACKAGE}.exporter.app")
    assert not _allowed(f"{PACKAGE}.settings", f"{PACKAGE}.config")
    assert _allowed(f"{PACKAGE}.exporter.monitor", f"{PACKAGE}.logs.state")


@pytest.mark.parametrize("name", sorted(MODULES))
def test_module_is_small_and_says_why_it_exists(name: str) -> None:
    path = MODULES[name]
    text = path.read_text(encoding="utf-8")
    lines = text.count("\n")
    assert lines <= MAX_LINES, f"{path.relative_to(SRC)}: {lines} lines; split it"
    if text.strip():
        doc = ast.get_docstring(ast.parse(text))
        assert doc, f"{path.relative_to(SRC)}: no docstring saying why it exists"


ARCHITECTURE = SRC.parents[1] / "docs" / "ARCHITECTURE.md"
WINGS = ("logs", "exporter", "delivery", "chatops", "peerbot")


def _backticked(text: str) -> list[str]:
    return [part for i, part in enumerate(text.split("`")) if i % 2]


def _wing_rows() -> dict[str, str]:
    rows = {}
    for line in ARCHITECTURE.read_text(encoding="utf-8").splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) == 2 and cells[0].strip("`") in WINGS:
            rows[cells[0].strip("`")] = cells[1]
    return rows


@pytest.mark.parametrize("wing", WINGS)
def test_architecture_page_names_every_module_of_a_wing(wing: str) -> None:
    """docs/ARCHITECTURE.md's table names exactly the modules each wing has."""
    row = _wing_rows()[wing]
    named = {word.strip("/") for word in _backticked(row)}
    modules = {
        name.rsplit(".", 1)[-1]
        for name, path in MODULES.items()
        if _place(name) == wing and path.name != "__init__.py"
    }
    packages = {path.parent.name for name, path in MODULES.items() if _place(name) == wing} - {wing}
    missing = modules - named
    assert not missing, f"ARCHITECTURE.md's {wing} row does not name {sorted(missing)}"
    assert packages <= named, f"ARCHITECTURE.md's {wing} row does not name {sorted(packages)}"


def test_architecture_page_paths_exist() -> None:
    """Every `wing/module.py` path the page names is a file of the package."""
    text = ARCHITECTURE.read_text(encoding="utf-8")
    paths = set(
        re.findall(r"(?<![\w/])((?:logs|exporter|delivery|chatops|peerbot)/[\w/]+\.py)\b", text)
    )
    assert paths, "the page names no module paths"
    missing = sorted(p for p in paths if not (SRC / p).is_file())
    assert not missing, f"ARCHITECTURE.md names files that do not exist: {missing}"
