"""README's module table matches the package: every module is listed, and each imports only
modules listed above it (no upward imports, so no cycles)."""
import ast
import os
import re

from conftest import PACKAGE_DIR, REPO


def table_entries():
    """The module table's first column in order: 'scoring.py', 'models/', ..."""
    text = open(os.path.join(REPO, "README.md"), encoding="utf-8").read()
    table = text[text.index("| module | concern |"):].split("\n\n", 1)[0]
    return re.findall(r"^\| `([^`]+)` \|", table, flags=re.M)


def entry_of(module, entries):
    """The table entry covering a module path relative to the package ('models/deltalm.py')."""
    for entry in entries:
        if module == entry or (entry.endswith("/") and module.startswith(entry)):
            return entry
    return None


def package_modules():
    for root, _, files in os.walk(PACKAGE_DIR):
        for name in files:
            if name.endswith(".py"):
                path = os.path.relpath(os.path.join(root, name), PACKAGE_DIR)
                if path != "__init__.py":
                    yield path.replace(os.sep, "/")


def imported_modules(path):
    """Package modules a module imports (relative imports, resolved to paths)."""
    tree = ast.parse(open(os.path.join(PACKAGE_DIR, path), encoding="utf-8").read())
    here = os.path.dirname(path).split("/") if os.path.dirname(path) else []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.level:
            base = here[: len(here) - (node.level - 1)]
            parts = base + (node.module.split(".") if node.module else [])
            names = [parts] if node.module else [parts + [alias.name] for alias in node.names]
            for name in names:
                candidate = "/".join(name)
                if os.path.isfile(os.path.join(PACKAGE_DIR, candidate + ".py")):
                    yield candidate + ".py"
                elif os.path.isdir(os.path.join(PACKAGE_DIR, candidate)):
                    yield candidate + "/__init__.py"


def test_every_module_is_in_the_table():
    entries = table_entries()
    assert len(entries) == len(set(entries)) > 10
    missing = [m for m in package_modules() if entry_of(m, entries) is None]
    assert not missing, f"modules missing from README's module table: {missing}"
    for entry in entries:
        assert any(entry_of(m, [entry]) for m in package_modules()), f"{entry} does not exist"


def test_imports_point_up_the_table():
    entries = table_entries()
    rank = {entry: index for index, entry in enumerate(entries)}
    upward = []
    for module in package_modules():
        own = entry_of(module, entries)
        for target in imported_modules(module):
            other = entry_of(target, entries)
            if other != own and rank[other] > rank[own]:
                upward.append(f"{module} imports {target}")
    assert not upward, upward
