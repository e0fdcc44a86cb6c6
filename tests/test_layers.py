"""The layout's one rule, read from every module's AST (``chimed_eval.core.layers``).

Every import counts -- at the top of a module, inside a function, under ``TYPE_CHECKING``,
absolute or relative -- and the test fails naming the module and line of:
(a) an import cycle between chimed_eval modules,
(b) an import from a folder above the importer's in :data:`LAYERS` (or of a module directly in
    ``chimed_eval/``, the package's door, from inside a folder),
(c) an import of ``tasks``, ``leaderboards`` or ``training`` from outside ``cli/``.
The plug-ins are ``chimed_eval.tasks``, ``chimed_eval.leaderboards`` and ``chimed_eval.training``
(links to the repository's top-level folders): above every folder but ``cli/``, they import the
folders and each other.
The checker runs on a synthetic package too, so the test is shown able to fail.
"""

from __future__ import annotations

import ast
import re
import sys
from pathlib import Path

from chimed_eval.core.layers import LAYERS, PLUGIN_IMPORTER, PLUGINS

ROOT = Path(__file__).resolve().parents[1]
DOOR = "(door)"  # the layer of the modules directly in the package folder


def package_modules(root: Path, package: str) -> dict[str, Path]:
    """Dotted module name -> file, for every ``.py`` under ``root/package`` (a package is its ``__init__``),
    the plug-in folders it links to included."""
    out = {}
    linked = [d for d in (root / package).iterdir() if d.is_symlink() and d.is_dir()]  # rglob does not follow them
    for f in sorted([*(root / package).rglob("*.py"), *(f for d in linked for f in d.rglob("*.py"))]):
        parts = list(f.relative_to(root).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        out[".".join(parts)] = f
    return out


def imports_of(name: str, path: Path, known: set[str]) -> list[tuple[str, int]]:
    """(imported name, line) for every import in the module, relative ones resolved; a name is cut
    back to the longest known module (``from a.b import c`` imports ``a.b.c`` when it is a module,
    and ``a.b`` itself). Names outside ``known`` (other packages) are kept whole."""
    tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
    pkg = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: list[tuple[str, int]] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            targets = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                up = pkg.split(".")
                up = up[: len(up) - (node.level - 1)] if node.level > 1 else up
                base = ".".join(up + ([base] if base else []))
            targets = [f"{base}.{a.name}" for a in node.names] + [base]
        else:
            continue
        for t in targets:
            cut = t
            while cut and cut not in known:
                cut = cut.rpartition(".")[0]
            target = cut or t
            if target != name and (target, node.lineno) not in found:
                found.append((target, node.lineno))
    return found


def layer_of(module: str, package: str, modules: dict[str, Path]) -> str:
    """The folder directly under the package that holds ``module``, or :data:`DOOR`."""
    parts = module.split(".")
    if len(parts) == 1 or (len(parts) == 2 and not modules[module].name == "__init__.py"):
        return DOOR
    return parts[1]


def cycles(graph: dict[str, dict[str, int]]) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on: set[str] = set()
    out: list[list[str]] = []
    counter = 0
    for start in graph:
        if start in index:
            continue
        work = [(start, iter(graph[start]))]
        index[start] = low[start] = counter
        counter += 1
        stack.append(start)
        on.add(start)
        while work:
            v, it = work[-1]
            for w in it:
                if w not in graph:
                    continue
                if w not in index:
                    index[w] = low[w] = counter
                    counter += 1
                    stack.append(w)
                    on.add(w)
                    work.append((w, iter(graph[w])))
                    break
                if w in on:
                    low[v] = min(low[v], index[w])
            else:
                work.pop()
                if work:
                    low[work[-1][0]] = min(low[work[-1][0]], low[v])
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
    return out


def layer_problems(root: Path, package: str, layers: tuple[str, ...], plugins: tuple[str, ...],
                   plugin_importer: str) -> list[str]:
    """Every breach of the layer rule in ``root/package``, one line each naming file and line."""
    modules = package_modules(root, package)
    known = set(modules)
    rank = {name: i for i, name in enumerate(layers)}
    rank.update({name: rank[plugin_importer] - 0.5 for name in plugins})  # just below their one importer
    problems: list[str] = []
    folders = sorted({p.parent.name for p in (root / package).glob("*/__init__.py")}
                     | {p.parent.relative_to(root / package).parts[0] for p in (root / package).glob("*/**/*.py")})
    for folder in folders:
        if folder not in rank:
            problems.append(f"{package}/{folder}/: a folder with Python modules that is not in the layer order {layers}")
    for folder in layers:
        if folder not in folders:
            problems.append(f"{package}/{folder}/: in the layer order but not a folder of {package}")
    graph: dict[str, dict[str, int]] = {}
    for mod, path in modules.items():
        where = path.relative_to(root)
        src_layer = layer_of(mod, package, modules)
        edges: dict[str, int] = {}
        reported: set[tuple[int, str]] = set()
        for target, line in imports_of(mod, path, known):
            top = target.split(".")[0] if target not in known else layer_of(target, package, modules)
            if top in plugins and src_layer != plugin_importer and src_layer not in plugins:
                problems.append(f"{where}:{line}: {mod} imports the plug-in {target} (only {package}/{plugin_importer}/ may)")
            if target not in known or target.startswith(mod + "."):  # a package importing its own children
                continue
            edges.setdefault(target, line)
            dst_layer = layer_of(target, package, modules)
            if src_layer == DOOR or src_layer == dst_layer or (line, dst_layer) in reported:
                continue
            reported.add((line, dst_layer))  # ``from a.b import c``: a.b and a.b.c, one breach
            if dst_layer == DOOR:
                problems.append(f"{where}:{line}: {mod} imports {target}, a module directly in {package}/ "
                                f"(the door, above every folder)")
            elif src_layer in rank and dst_layer in rank and rank[dst_layer] > rank[src_layer]:
                problems.append(f"{where}:{line}: {mod} imports {target}: {dst_layer}/ is above {src_layer}/ "
                                f"in the layer order")
        graph[mod] = edges
    for comp in cycles(graph):
        members = set(comp)
        links = [f"{modules[m].relative_to(root)}:{line} -> {t}" for m in comp
                 for t, line in graph[m].items() if t in members]
        problems.append(f"import cycle {' <-> '.join(comp)}: " + "; ".join(links))
    return problems


def test_chimed_eval_has_no_cycle_no_upward_import_and_no_plugin_import_outside_cli():
    problems = layer_problems(ROOT, "chimed_eval", LAYERS, PLUGINS, PLUGIN_IMPORTER)
    assert not problems, "\n".join(problems)


def _write(root: Path, files: dict[str, str]) -> None:
    for rel, text in files.items():
        p = root / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(text, encoding="utf-8")


def test_checker_finds_a_synthetic_cycle_upward_import_and_plugin_import(tmp_path):
    _write(tmp_path, {
        "pkg/__init__.py": "",
        "pkg/low/__init__.py": "",
        "pkg/low/base.py": "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from pkg.high.app import App\n",
        "pkg/low/util.py": "def f():\n    from ..high import app\n    import plug.thing\n",
        "pkg/high/__init__.py": "",
        "pkg/high/app.py": "from pkg.low.base import *\nimport plug\n",
        "pkg/high/ok.py": "from . import app\nfrom pkg.low import util\n",
    })
    problems = layer_problems(tmp_path, "pkg", ("low", "high"), ("plug",), "high")
    text = "\n".join(problems)
    assert re.search(r"pkg/low/base\.py:3: pkg\.low\.base imports pkg\.high\.app: high/ is above low/", text), text
    assert re.search(r"pkg/low/util\.py:2: pkg\.low\.util imports pkg\.high\.app: high/ is above low/", text), text
    assert re.search(r"pkg/low/util\.py:3: pkg\.low\.util imports the plug-in plug\.thing", text), text
    assert re.search(r"import cycle pkg\.high\.app <-> pkg\.low\.base: .*pkg/high/app\.py:1 -> pkg\.low\.base", text), text
    assert "pkg/high/app.py:2" not in text and "pkg/high/ok.py" not in text  # the plug-in importer; same folder
    assert len(problems) == 4, text


def test_checker_finds_an_unlisted_folder_and_an_import_of_the_door(tmp_path):
    _write(tmp_path, {
        "pkg/__init__.py": "from pkg.low.base import X\n",
        "pkg/low/__init__.py": "",
        "pkg/low/base.py": "X = 1\nfrom pkg import VERSION\n",
        "pkg/stray/__init__.py": "",
    })
    text = "\n".join(layer_problems(tmp_path, "pkg", ("low", "gone"), (), "low"))
    assert "pkg/stray/: a folder with Python modules that is not in the layer order" in text, text
    assert "pkg/gone/: in the layer order but not a folder of pkg" in text, text
    assert re.search(r"pkg/low/base\.py:2: pkg\.low\.base imports pkg, a module directly in pkg/", text), text
    assert "import cycle" not in text, text  # a package's edges to its own modules are not a cycle


def test_docs_layout_lists_the_folders_in_layer_order():
    for lang in ("en", "zh"):
        page = (ROOT / "docs" / lang / "explanation" / "layout.md").read_text(encoding="utf-8")
        listed = re.findall(r"^\s*chimed_eval/(\w+)/", page.split("\n```\n", 1)[1].split("\n```", 1)[0], flags=re.M)
        assert listed == list(LAYERS), (
            f"docs/{lang}/explanation/layout.md lists {listed}; chimed_eval.core.layers.LAYERS is {list(LAYERS)}")


if __name__ == "__main__":  # python tests/test_layers.py: the problems, one a line
    sys.path.insert(0, str(ROOT))
    print("\n".join(layer_problems(ROOT, "chimed_eval", LAYERS, PLUGINS, PLUGIN_IMPORTER)) or "no problem")
