"""The package's layers, as import rules: each module imports only its own layer and the ones
below it; the core and the evaluation never import fairseq; nothing imports the CLI."""

import ast
import os

import pytest
from conftest import PACKAGE_DIR

pytestmark = pytest.mark.unit

# Lowest first. A module may import modules of its own layer and of the layers before it.
LAYERS = [
    ("core", ("core",)),  # fairseq-free: dominant sets, samplers, words, QE methods, files
    ("evaluation", ("evaluation",)),  # fairseq-free: metrics, gold, calibration, reports
    ("plugin", ("models", "criterions", "optim")),  # fairseq registries: training side
    ("decoding", ("decoding",)),  # recording generators, Monte Carlo, the search+QE loop
    ("task", ("tasks",)),  # translation_qe and fairseq-generate's hook
    ("api", ("api",)),  # QEModel
    ("demo", ("demo", "testing")),  # synthetic language, l10n preparation, test fixtures
    ("cli", ("cli",)),  # every command; nothing imports it
]
FAIRSEQ_FREE = ("core", "evaluation")


def layer_of(module):
    """The layer index of a package module path ('core/words.py'); None for __init__.py."""
    if module == "__init__.py":
        return None
    top = module.split("/")[0].removesuffix(".py")
    for index, (_, folders) in enumerate(LAYERS):
        if top in folders:
            return index
    raise AssertionError(f"{module} is in no layer: add its folder to LAYERS")


def package_modules():
    for root, _, files in os.walk(PACKAGE_DIR):
        for name in files:
            if name.endswith(".py"):
                path = os.path.relpath(os.path.join(root, name), PACKAGE_DIR)
                yield path.replace(os.sep, "/")


def imports_of(path, text=None):
    """(package modules imported, external top-level packages imported) by a module (its
    source ``text`` if given), function-level imports included; relative and absolute package
    imports resolved to paths."""
    if text is None:
        text = open(os.path.join(PACKAGE_DIR, path), encoding="utf-8").read()
    tree = ast.parse(text)
    here = path.split("/")[:-1]
    internal, external = set(), set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                parts = alias.name.split(".")
                if parts[0] == "fairseq_sigmoid_qe":
                    internal.update(resolve(parts[1:], []))
                else:
                    external.add(parts[0])
        elif isinstance(node, ast.ImportFrom):
            module = node.module.split(".") if node.module else []
            if node.level:
                base = here[: len(here) - (node.level - 1)]
            elif module[:1] == ["fairseq_sigmoid_qe"]:
                base, module = [], module[1:]
            else:
                external.add(module[0])
                continue
            internal.update(resolve(base + module, [alias.name for alias in node.names]))
    return internal, external


def resolve(parts, names):
    """Package module paths that ``from PARTS import NAMES`` reaches."""
    candidate = "/".join(parts)
    if parts and os.path.isfile(os.path.join(PACKAGE_DIR, candidate + ".py")):
        return [candidate + ".py"]
    found = [candidate + "/__init__.py" if parts else "__init__.py"]
    for name in names:  # a submodule imported by name
        path = f"{candidate}/{name}".lstrip("/")
        if os.path.isfile(os.path.join(PACKAGE_DIR, path + ".py")):
            found.append(path + ".py")
        elif os.path.isdir(os.path.join(PACKAGE_DIR, path)):
            found.append(path + "/__init__.py")
    return found


def test_every_module_is_in_a_layer():
    modules = list(package_modules())
    assert len(modules) > 30
    for module in modules:
        layer_of(module)


def test_imports_point_down_the_layers():
    upward = []
    for module in package_modules():
        own = layer_of(module)
        for target in imports_of(module)[0]:
            other = layer_of(target)
            if own is not None and other is not None and other > own:
                upward.append(f"{module} ({LAYERS[own][0]}) imports {target} ({LAYERS[other][0]})")
            if own is None and other == len(LAYERS) - 1:
                upward.append(f"{module} imports the CLI module {target}")
    assert not upward, upward


def test_core_and_evaluation_never_import_fairseq():
    found = [
        f"{module} imports {package}"
        for module in package_modules()
        if layer_of(module) is not None and LAYERS[layer_of(module)][0] in FAIRSEQ_FREE
        for package in imports_of(module)[1]
        if package in ("fairseq", "fairseq_cli")
    ]
    assert not found, found


def test_no_import_cycle():
    graph = {module: imports_of(module)[0] - {module} for module in package_modules()}
    state = {}

    def visit(module, path):
        if state.get(module) == "done":
            return
        assert state.get(module) != "open", " -> ".join(path + [module])
        state[module] = "open"
        for target in sorted(graph.get(module, ())):
            if target.endswith("__init__.py"):
                continue  # a package's __init__ registers its folder; not part of a cycle
            visit(target, path + [module])
        state[module] = "done"

    for module in sorted(graph):
        visit(module, [])


def test_the_checks_see_a_violation():
    """The rules are not vacuous: an upward import and a fairseq import in the core are found."""
    text = "from ..cli.evaluate import main\nimport fairseq.utils\n"
    internal, external = imports_of("core/example.py", text)
    assert internal == {"cli/evaluate.py"} and "fairseq" in external
    assert layer_of("cli/evaluate.py") > layer_of("core/example.py")
