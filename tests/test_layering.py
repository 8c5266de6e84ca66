"""Layering as a test: every import in the package (module level or inside a function) points down the
table below, and the module-level imports have no cycle. A new module must be placed in the table first.

Modules in one row may import each other; a function-level import back into the same row (a package's
facade calling a sibling, say) is allowed, a module-level cycle is not: it makes import order matter."""
import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "lstm_scratch"

# Bottom to top. A module may import from its own row and the rows below it, never from a row above.
# An entry names a module or a package (then it covers every module inside, unless a longer entry
# names that module); "lstm_scratch" is only the package's own __init__ (the public facade).
LAYERS = (
    ("atomic", "checks", "jit_cache"),              # atomic writes, argument checks, where Numba caches
    ("variants",),                                  # the table of architectures
    ("losses",),                                    # framewise losses and metrics (NumPy)
    ("ctc",),                                       # CTC loss, decoding, CER (uses losses' label checks)
    ("objectives",),                                # one row per loss: loss, prediction, metric
    ("datasets.store", "datasets.mfcc", "datasets.timit_corpus"),
    ("datasets.split",),                            # Split (checks its loss against the objectives)
    ("datasets.strokes",),
    ("datasets.music", "datasets.timit", "datasets.iam_ondb", "datasets.synthetic_handwriting", "datasets.jzs"),
    ("datasets.registry",),                         # the task table, load, load_task
    ("datasets.report", "datasets"),                # data list / info text; the package facade
    ("kernels.primitives",),
    ("kernels.lstm", "kernels.gated"),
    ("kernels",),                                   # the kernel dispatcher
    ("reference",),
    ("layer",),
    ("gradcheck",),                                 # finite differences and random layers, for tests/tutorials
    ("network",),
    ("lstm_scratch",),                              # the package facade: Layer, Network, ...
    ("noise",),                                     # input noise x + σξ, shared by both protocols
    ("momentum", "datacheck", "minibatch"),         # the update; data checks; JZS's minibatch epoch
    ("config", "memory"),                           # TrainConfig: what determines a run; will it fit
    ("timing", "parallel"),                         # the training-step timer; thread pinning and warm-up
    ("provenance", "records", "rundir"),            # code/library/host identity; record schema; run directory
    ("train",),
    ("search",),
    ("analysis",),
    ("analysis.jzs_table",),                        # JZS Table 1 from a benchmark (uses report's page machinery)
    ("selfcheck", "demo"),                          # the self-check; the demo study + its report
    ("cli",),
)
RANK = {("lstm_scratch" if name == "lstm_scratch" else f"lstm_scratch.{name}"): rank
        for rank, row in enumerate(LAYERS) for name in row}


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def layer_of(module: str) -> int | None:
    """Row of ``module`` in LAYERS: its own entry, else that of the nearest enclosing package."""
    name = module
    while name != "lstm_scratch":
        if name in RANK:
            return RANK[name]
        name = name.rsplit(".", 1)[0]
    return RANK["lstm_scratch"] if module == "lstm_scratch" else None


def _is_module(name: str) -> bool:
    path = PACKAGE.parent.joinpath(*name.split("."))
    return path.with_suffix(".py").is_file() or path.is_dir()


def _nodes(tree: ast.AST, top_level_only: bool):
    """Every node, or (``top_level_only``) every node that runs at import time: not function bodies."""
    if not top_level_only:
        yield from ast.walk(tree)
        return
    stack = [tree]
    while stack:
        node = stack.pop()
        yield node
        if not isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)):
            stack.extend(ast.iter_child_nodes(node))


def imports_of(module: str, source: str, is_package: bool = False,
               top_level_only: bool = False) -> list[tuple[int, str]]:
    """(line, imported lstm_scratch module) for every import in ``source`` (only those at module level
    with ``top_level_only``), relative ones resolved; ``from package import name`` counts as importing
    the submodule when ``name`` is one."""
    package = module if is_package else module.rsplit(".", 1)[0]
    found = []
    for node in _nodes(ast.parse(source), top_level_only):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names if alias.name.split(".")[0] == "lstm_scratch"]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[:len(package.split(".")) - (node.level - 1)]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            if target.split(".")[0] != "lstm_scratch":
                continue
            for alias in node.names:
                submodule = f"{target}.{alias.name}"
                found.append((node.lineno, submodule if _is_module(submodule) else target))
    return sorted(set(found))


def upward_imports(module: str, source: str, is_package: bool = False) -> list[str]:
    """One line per import of ``source`` that points to a higher row than ``module``'s own."""
    own = layer_of(module)
    problems = []
    for line, target in imports_of(module, source, is_package):
        rank = layer_of(target)
        if rank is None:
            problems.append(f"{module}:{line} imports {target}, which is in no row of LAYERS")
        elif rank > own:
            problems.append(f"{module}:{line} imports {target} (row {rank}: {LAYERS[rank]}) from row {own} "
                            f"{LAYERS[own]}: an upward import")
    return problems


def package_modules() -> dict[str, Path]:
    return {module_name(path): path for path in sorted(PACKAGE.rglob("*.py"))}


def test_every_module_has_a_row():
    unplaced = [module for module in package_modules() if layer_of(module) is None]
    assert not unplaced, f"place these modules in tests/test_layering.py LAYERS: {unplaced}"


def test_no_import_flows_upwards():
    problems = []
    for module, path in package_modules().items():
        if layer_of(module) is not None:
            problems += upward_imports(module, path.read_text(encoding="utf-8"), path.name == "__init__.py")
    assert not problems, "imports against the layering (tests/test_layering.py LAYERS):\n" + "\n".join(problems)


def find_cycle(graph: dict) -> list[str] | None:
    """One cycle of a directed graph {node: targets} as [a, b, ..., a], or None (depth-first search)."""
    done, path = set(), []

    def visit(node):
        if node in path:
            return path[path.index(node):] + [node]
        if node in done or node not in graph:
            return None
        path.append(node)
        for target in sorted(graph[node]):
            cycle = visit(target)
            if cycle:
                return cycle
        path.pop()
        done.add(node)
        return None

    for node in sorted(graph):
        cycle = visit(node)
        if cycle:
            return cycle
    return None


def test_module_level_imports_have_no_cycle():
    graph = {module: {target for _, target in imports_of(module, path.read_text(encoding="utf-8"),
                                                         path.name == "__init__.py", top_level_only=True)
                      if target != module}
             for module, path in package_modules().items()}
    cycle = find_cycle(graph)
    assert cycle is None, "module-level import cycle: " + " -> ".join(cycle)


def test_the_cycle_finder_finds_the_old_losses_ctc_cycle():
    source = {"lstm_scratch.losses": "def loss_function():\n    from .ctc import ctc_loss\n",
              "lstm_scratch.ctc": "from .losses import check_label_values\n"}
    every = {m: {t for _, t in imports_of(m, text)} for m, text in source.items()}
    assert find_cycle(every) in (["lstm_scratch.ctc", "lstm_scratch.losses", "lstm_scratch.ctc"],
                                 ["lstm_scratch.losses", "lstm_scratch.ctc", "lstm_scratch.losses"])
    top = {m: {t for _, t in imports_of(m, text, top_level_only=True)} for m, text in source.items()}
    assert find_cycle(top) is None                        # deferred into a function: caught by the rows instead
    assert upward_imports("lstm_scratch.losses", source["lstm_scratch.losses"])


@pytest.mark.parametrize("module, source, offender", [
    ("lstm_scratch.losses", "import numpy\n\nfrom .ctc import ctc_loss\n", "lstm_scratch.losses:3 imports lstm_scratch.ctc"),
    ("lstm_scratch.datasets.music", "def f():\n    from ..train import train\n",
     "lstm_scratch.datasets.music:2 imports lstm_scratch.train"),
    ("lstm_scratch.network", "from lstm_scratch import cli\n", "lstm_scratch.network:1 imports lstm_scratch.cli"),
    ("lstm_scratch.train", "from . import search\n", "lstm_scratch.train:1 imports lstm_scratch.search"),
], ids=["losses->ctc (the old cycle)", "function-level", "absolute", "from-package-import-module"])
def test_a_deliberately_upward_import_is_reported_with_its_line(module, source, offender):
    problems = upward_imports(module, source)
    assert len(problems) == 1 and problems[0].startswith(offender), problems


def test_downward_and_sibling_imports_pass():
    assert upward_imports("lstm_scratch.train", "from .network import Network\nfrom . import records\n") == []
    assert upward_imports("lstm_scratch.datasets", "from .registry import load\n", is_package=True) == []
    assert upward_imports("lstm_scratch.analysis.stats", "import numpy\nfrom ..variants import get\n") == []
