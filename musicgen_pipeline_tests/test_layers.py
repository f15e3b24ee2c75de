"""The package's layer rules, checked on its source (imports read with `ast`, nothing imported).

- No import cycle between the package's modules (imports inside functions count; imports under
  ``if TYPE_CHECKING:`` do not, they never run).
- `audio/` and `models/` know nothing of Dagster or the environment: they never import dagster or
  `musicgen_pipeline.settings`, and never read ``os.environ`` / ``os.getenv``.
- The plain modules (partition store, inbox, catalogue, request, limits, naming, ...) never import dagster.
- `get_settings()` is called only at the entry points (CLI commands, the REST app, the configuration
  resource, the detached-run child).
- The partition layout's file names are written in one module, `partition_store.py`.

``python -m musicgen_pipeline_tests.test_layers [PACKAGE_DIR]`` prints the figures (cycles, modules
reading the environment, the longest functions) for any checkout, e.g. an older commit's.
"""

from __future__ import annotations

import ast
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "musicgen_pipeline"
ROOT = "musicgen_pipeline"

# Modules that must not import dagster (beyond audio/ and models/).
PLAIN_MODULES = {
    "musicgen_pipeline.bulk_generation",
    "musicgen_pipeline.bulk_plan",
    "musicgen_pipeline.catalogue",
    "musicgen_pipeline.errors",
    "musicgen_pipeline.inbox",
    "musicgen_pipeline.limits",
    "musicgen_pipeline.media",
    "musicgen_pipeline.naming",
    "musicgen_pipeline.partition_store",
    "musicgen_pipeline.quality",
    "musicgen_pipeline.request",
    "musicgen_pipeline.scene_attempts",
    "musicgen_pipeline.separation",
    "musicgen_pipeline.settings",
}
# Where `get_settings()` may be called: the entry points.
SETTINGS_ENTRY_POINTS = {
    "musicgen_pipeline.settings",  # defines it
    "musicgen_pipeline.resources",  # the configuration resource of a run
    "musicgen_pipeline.launch",  # only in `_main`, the detached-run child process
    "musicgen_pipeline.api.app",
}
LAYOUT_FILE_NAMES = (
    "request.json",
    "summary.json",
    "transition_report.json",
    "separation.json",
    "separation_summary.json",
)
# Reads of settings/the environment in audio/ and models/ that their owners are removing (issues 9
# and 12); each entry must still be a violation (the test fails when one is fixed and still listed).
# models/ is done (issue 9): its parameters are resolved by model_options.py at the entry points.
PENDING_CORE_VIOLATIONS: set[tuple[str, str]] = set()


@dataclass
class Module:
    name: str
    path: Path
    tree: ast.Module
    imports: set[str] = field(default_factory=set)  # every imported module name (internal resolved)


def module_name(path: Path, package: Path) -> str:
    rel = path.relative_to(package.parent).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _runtime_nodes(tree: ast.AST) -> Iterator[ast.AST]:
    """Every node except those under ``if TYPE_CHECKING:``."""
    stack = [tree]
    while stack:
        node = stack.pop()
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            stack.extend(node.orelse)
            continue
        yield node
        stack.extend(ast.iter_child_nodes(node))


def load_modules(package: Path = PACKAGE) -> dict[str, Module]:
    modules: dict[str, Module] = {}
    for path in sorted(package.rglob("*.py")):
        name = module_name(path, package)
        modules[name] = Module(name, path, ast.parse(path.read_text(encoding="utf-8")))
    for module in modules.values():
        is_package = module.path.name == "__init__.py"
        for node in _runtime_nodes(module.tree):
            if isinstance(node, ast.Import):
                module.imports.update(alias.name for alias in node.names)
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    anchor = module.name.split(".")
                    anchor = anchor if is_package else anchor[:-1]
                    anchor = anchor[: len(anchor) - (node.level - 1)]
                    base = ".".join([*anchor, base] if base else anchor)
                module.imports.add(base)
                for alias in node.names:
                    if f"{base}.{alias.name}" in modules:
                        module.imports.add(f"{base}.{alias.name}")
    return modules


def internal_graph(modules: dict[str, Module]) -> dict[str, set[str]]:
    """Module -> the package modules it imports (a package's ``__init__`` is not an edge target unless
    imported by name; `from pkg import sub` points at `pkg.sub`)."""
    return {
        name: {i for i in m.imports if i in modules and i != name and i != ROOT}
        for name, m in modules.items()
    }


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    out: list[list[str]] = []
    counter = [0]

    def visit(v: str) -> None:
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph[v]):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                out.append(sorted(component))

    sys.setrecursionlimit(max(sys.getrecursionlimit(), 10_000))
    for v in sorted(graph):
        if v not in index:
            visit(v)
    return out


def reads_environment(module: Module) -> set[str]:
    """How `module` reads configuration: ``os.environ``, ``os.getenv``, ``get_settings()`` calls."""
    found: set[str] = set()
    for node in _runtime_nodes(module.tree):
        if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id == "os":
            if node.attr in ("environ", "getenv"):
                found.add(f"os.{node.attr}")
        elif isinstance(node, ast.Call):
            func = node.func
            name = (
                func.id
                if isinstance(func, ast.Name)
                else func.attr
                if isinstance(func, ast.Attribute)
                else ""
            )
            if name == "get_settings":
                found.add("get_settings()")
    return found


def _docstrings(tree: ast.Module) -> set[int]:
    ids = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)) and node.body:
            first = node.body[0]
            if isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant):
                ids.add(id(first.value))
    return ids


def layout_strings(module: Module) -> set[str]:
    """The partition layout's file names written as string literals (docstrings aside)."""
    skip = _docstrings(module.tree)
    found = set()
    for node in ast.walk(module.tree):
        if isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in skip:
            found.update(name for name in LAYOUT_FILE_NAMES if node.value.endswith(name))
    return found


def longest_functions(modules: dict[str, Module], top: int = 10) -> list[tuple[int, str]]:
    """(lines, module:function) of the longest functions and methods, longest first."""
    out = []
    for module in modules.values():
        for node in ast.walk(module.tree):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                lines = (node.end_lineno or node.lineno) - node.lineno + 1
                out.append((lines, f"{module.name.removeprefix(ROOT + '.')}:{node.name}"))
    return sorted(out, reverse=True)[:top]


def _core(name: str) -> bool:
    return name.startswith((f"{ROOT}.audio", f"{ROOT}.models"))


def core_violations(modules: dict[str, Module]) -> set[tuple[str, str]]:
    found = set()
    for name, module in modules.items():
        if not _core(name):
            continue
        for imported in module.imports:
            if imported == "dagster" or imported.startswith("dagster.") or imported.startswith("dagster_"):
                found.add((name, "dagster"))
            if imported == f"{ROOT}.settings":
                found.add((name, imported))
        found.update((name, how) for how in reads_environment(module) if how.startswith("os."))
        if "get_settings()" in reads_environment(module):
            found.add((name, f"{ROOT}.settings"))
    return found


# --- tests -----------------------------------------------------------------------------------------


def test_no_import_cycle() -> None:
    found = cycles(internal_graph(load_modules()))
    assert found == [], f"import cycles: {found}"


def test_cycle_finder_finds_a_planted_cycle(tmp_path: Path) -> None:
    package = tmp_path / ROOT
    (package / "sub").mkdir(parents=True)
    (package / "__init__.py").write_text("")
    (package / "sub" / "__init__.py").write_text("")
    (package / "a.py").write_text("from musicgen_pipeline.sub import b\n")
    (package / "sub" / "b.py").write_text("def f():\n    from musicgen_pipeline import a\n")
    (package / "c.py").write_text(
        "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from musicgen_pipeline import a\n"
    )
    (package / "d.py").write_text("from . import c\n")
    graph = internal_graph(load_modules(package))
    assert cycles(graph) == [["musicgen_pipeline.a", "musicgen_pipeline.sub.b"]]
    assert graph["musicgen_pipeline.c"] == set()  # TYPE_CHECKING imports never run
    assert graph["musicgen_pipeline.d"] == {"musicgen_pipeline.c"}


def test_audio_and_models_know_nothing_of_dagster_or_the_environment() -> None:
    found = core_violations(load_modules())
    assert found - PENDING_CORE_VIOLATIONS == set()
    # a pending entry that no longer happens must leave the list (the rule is then enforced for it)
    assert PENDING_CORE_VIOLATIONS - found == set()


def test_plain_modules_do_not_import_dagster() -> None:
    modules = load_modules()
    missing = PLAIN_MODULES - set(modules)
    assert not missing, f"listed plain modules that do not exist: {missing}"
    offenders = {
        name: sorted(i for i in modules[name].imports if i.split(".")[0] == "dagster")
        for name in PLAIN_MODULES
    }
    assert {k: v for k, v in offenders.items() if v} == {}


def test_settings_are_read_only_at_entry_points() -> None:
    readers = {
        name
        for name, module in load_modules().items()
        if "get_settings()" in reads_environment(module)
        and not name.startswith(f"{ROOT}.commands")
        and name != f"{ROOT}.cli"
    }
    assert readers - SETTINGS_ENTRY_POINTS - {n for n, _ in PENDING_CORE_VIOLATIONS} == set()


def test_the_partition_layout_is_written_in_one_module() -> None:
    writers = {name: found for name, m in load_modules().items() if (found := layout_strings(m))}
    assert set(writers) == {f"{ROOT}.partition_store"}, writers


def report(package: Path = PACKAGE) -> str:
    modules = load_modules(package)
    found = cycles(internal_graph(modules))
    env = {name: sorted(reads_environment(m)) for name, m in modules.items() if reads_environment(m)}
    lines = [
        f"package: {package}",
        f"modules: {len(modules)}",
        f"import cycles: {len(found)}" + "".join(f"\n  {len(c)} modules: {', '.join(c)}" for c in found),
        f"modules reading the environment (os.environ/os.getenv/get_settings()): {len(env)}",
        *(f"  {name}: {', '.join(how)}" for name, how in sorted(env.items())),
        "longest functions (lines):",
        *(f"  {n:4d}  {where}" for n, where in longest_functions(modules)),
    ]
    return "\n".join(lines)


if __name__ == "__main__":
    print(report(Path(sys.argv[1]).resolve() if len(sys.argv) > 1 else PACKAGE))
