"""The layers of docs/architecture.md hold in the code: imports only point down the picture.

Every module under src/keypointgan is parsed with ``ast``; every import (at the top, or
lazily inside a function) from one unit (a top-level package or module of
``keypointgan``) to another must go to a unit drawn on a lower row of the picture.
That rules out a lower layer importing a higher one and any two units importing each
other. The picture is read from docs/architecture.md, so the test and the doc cannot
drift apart.
"""

from __future__ import annotations

import ast
import re
from collections import defaultdict
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "src" / "keypointgan"
DOC = ROOT / "docs" / "architecture.md"


def read_picture(text: str) -> list[tuple[str, list[str]]]:
    """The rows of the layer picture, top to bottom: ``[(layer, [units])]``."""
    m = re.search(r"<!-- layers.*?-->\s*```[a-z]*\n(.*?)```", text, re.S)
    assert m, "docs/architecture.md: no layer picture (a ``` block after a '<!-- layers ... -->' line)"
    rows, layer, body = [], None, False
    for line in m.group(1).splitlines():
        if line.strip() and set(line.strip()) <= set("-+|"):  # a rule; the first one ends the header line
            body = True
            continue
        if "|" not in line or not body:
            continue
        left, right = line.split("|", 1)
        layer = left.strip() or layer
        units = re.findall(r"[a-z_]+", right.split("#")[0])
        if units:
            rows.append((layer, units))
    return rows


def unit_of(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else parts[0]


def module_name(path: Path) -> tuple[str, bool]:
    rel = path.relative_to(PACKAGE.parent).with_suffix("")
    parts = list(rel.parts)
    is_package = parts[-1] == "__init__"
    return ".".join(parts[:-1] if is_package else parts), is_package


def imported(path: Path) -> list[tuple[str, int]]:
    """``(absolute keypointgan module, line)`` of every import in ``path``, lazy ones included."""
    name, is_package = module_name(path)
    package = name.split(".") if is_package else name.split(".")[:-1]
    out = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            out += [(a.name, node.lineno) for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = ".".join(package[:len(package) - node.level + 1] + ([node.module] if node.module else []))
            else:
                base = node.module or ""
            if node.module:
                out.append((base, node.lineno))
            else:  # from . import a, b: each name is a module (or a name of that package)
                out += [(f"{base}.{a.name}", node.lineno) for a in node.names]
    return [(m, line) for m, line in out if m == "keypointgan" or m.startswith("keypointgan.")]


def import_graph() -> dict[tuple[str, str], list[str]]:
    """``{(from unit, to unit): ["file:line", ...]}`` over the whole package."""
    edges: dict[tuple[str, str], list[str]] = defaultdict(list)
    for path in sorted(PACKAGE.rglob("*.py")):
        src = unit_of(module_name(path)[0])
        for target, line in imported(path):
            dst = unit_of(target)
            if dst != src:
                edges[(src, dst)].append(f"{path.relative_to(ROOT)}:{line}")
    return edges


def units_in_code() -> set[str]:
    found = {p.name for p in PACKAGE.iterdir() if p.is_dir() and (p / "__init__.py").is_file()}
    found |= {p.stem for p in PACKAGE.glob("*.py") if p.stem != "__init__"}
    return found


def violations(edges: dict[tuple[str, str], list[str]], rows: list[tuple[str, list[str]]]) -> list[str]:
    """Imports that do not point to a strictly lower row of the picture."""
    rank = {u: len(rows) - i for i, (_, units) in enumerate(rows) for u in units}
    layer = {u: name for name, units in rows for u in units}
    bad = []
    for (src, dst), where in sorted(edges.items()):
        if src == "keypointgan" or rank.get(src, 0) <= rank.get(dst, 0):
            kind = ("a lower layer imports a higher one" if rank.get(src, 0) < rank.get(dst, 0) and
                    layer.get(src) != layer.get(dst) else "not drawn below it")
            bad.append(f"{src} ({layer.get(src)}) imports {dst} ({layer.get(dst)}): {kind}; at {', '.join(where)}")
    return bad


def cycles(edges: dict[tuple[str, str], list[str]]) -> list[list[str]]:
    """Cycles among units (each found once, as a path that returns to its start)."""
    graph = defaultdict(set)
    for src, dst in edges:
        graph[src].add(dst)
    found, state = [], {}

    def visit(u: str, path: list[str]) -> None:
        state[u] = "open"
        for v in sorted(graph[u]):
            if state.get(v) == "open":
                found.append(path[path.index(v):] + [v])
            elif v not in state:
                visit(v, path + [v])
        state[u] = "done"

    for u in sorted(graph):
        if u not in state:
            visit(u, [u])
    return found


@pytest.fixture(scope="module")
def rows():
    return read_picture(DOC.read_text())


def test_the_picture_names_every_unit_once(rows):
    drawn = [u for _, units in rows for u in units]
    assert len(drawn) == len(set(drawn)), f"drawn twice: {sorted({u for u in drawn if drawn.count(u) > 1})}"
    assert [name for name, _ in rows][0] == "commands" and rows[-1][0] == "core"
    assert set(drawn) == units_in_code(), (
        f"docs/architecture.md's picture and src/keypointgan differ: not drawn {sorted(units_in_code() - set(drawn))}, "
        f"drawn but absent {sorted(set(drawn) - units_in_code())}")
    assert {name for name, _ in rows} == {"commands", "library", "core"}


def test_imports_only_point_down_the_picture(rows):
    edges = import_graph()
    assert edges, "found no imports at all: the parser is broken"
    assert not violations(edges, rows), "\n".join(violations(edges, rows))


def test_no_two_units_import_each_other():
    assert not cycles(import_graph()), cycles(import_graph())


def test_the_package_root_imports_nothing_of_the_package():
    assert not imported(PACKAGE / "__init__.py")  # `import keypointgan.core` stays light


def test_the_checker_sees_lazy_imports_upwards_and_cycles(rows, tmp_path):
    # the parser: relative, absolute and lazy imports of one module of each kind
    edges = import_graph()
    assert ("train", "eval") in edges  # lazy: Trainer.log_test_error imports eval.evaluator inside the method
    assert ("commands", "train") in edges and ("data", "core") in edges
    # the rules: a pose -> train import and a data <-> eval pair are both caught
    fake = dict(edges)
    fake[("pose", "train")] = ["pose/x.py:1"]
    assert any("pose (library) imports train" in v for v in violations(fake, rows))
    fake = dict(edges)
    fake[("core", "commands")] = ["core/x.py:1"]
    assert any("a lower layer imports a higher one" in v for v in violations(fake, rows))
    assert cycles({("data", "eval"): [], ("eval", "data"): []}) == [["data", "eval", "data"]]
