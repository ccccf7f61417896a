"""The package boundaries of ARCHITECTURE.md as import contracts, checked on the source files' ASTs
(nothing is imported). `violations(root)` lists every broken contract under a source root:

* `service` imports neither torch (nor the libraries built on it) nor `engine` nor `worker`, not
  even lazily, and neither does anything it imports from the project at module level (its
  closure), so that the API image stays slim. The embedded mode's lazy worker import lives in
  `diffeditor.embedded`, next to the CLI's dispatch.
* The Python client (`diffeditor.client`) and its command (`diffeditor.submit`) are torch-free
  likewise, closure included: an application that only calls the API installs no engine.
* `engine` knows nothing of HTTP, Redis or the job contract: no `service`, `worker`, FastAPI,
  Starlette, uvicorn, redis or rq.
* `worker` holds no HTTP code: no FastAPI, Starlette or uvicorn.
* The modules inside `engine` import one way: no cycle, counting lazy (function-level) and
  type-checking-only imports too.
"""

from __future__ import annotations

import ast
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

PACKAGES = ("diffeditor", "engine", "service", "worker")
TORCH = ("torch", "diffusers", "transformers", "safetensors", "accelerate")
HTTP = ("fastapi", "starlette", "uvicorn")

# (package, forbidden import prefixes, follow the package's module-level closure)
FORBIDDEN: tuple[tuple[str, tuple[str, ...], bool], ...] = (
    ("service", (*TORCH, "engine", "worker"), True),
    ("diffeditor.client", (*TORCH, "engine", "worker"), True),
    ("diffeditor.submit", (*TORCH, "engine", "worker"), True),
    ("engine", ("service", "worker", *HTTP, "redis", "rq", "fakeredis"), False),
    ("worker", HTTP, False),
)
NO_CYCLES = ("engine",)


@dataclass(frozen=True)
class Import:
    source: str  # the importing module, dotted
    target: str  # the imported module (a project module when it resolves to one), dotted
    line: int
    lazy: bool  # inside a function body: runs only when called
    type_only: bool  # under `if TYPE_CHECKING:`: never runs


def modules(root: Path, packages: Iterable[str] = PACKAGES) -> dict[str, Path]:
    """Dotted module name → source file, for every .py file of the packages under `root`."""
    found: dict[str, Path] = {}
    for package in packages:
        for path in sorted((root / package).rglob("*.py")):
            parts = list(path.relative_to(root).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts.pop()
            found[".".join(parts)] = path
    return found


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _module_imports(name: str, path: Path, known: dict[str, Path]) -> list[Import]:
    """The import statements of one module, resolved to absolute dotted names (one per target and line)."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: dict[tuple[str, int], Import] = {}

    def add(target: str, line: int, lazy: bool, type_only: bool) -> None:
        found.setdefault((target, line), Import(name, target, line, lazy, type_only))

    def visit(node: ast.AST, lazy: bool, type_only: bool) -> None:
        for child in ast.iter_child_nodes(node):
            child_lazy = lazy or isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda))
            if isinstance(child, ast.If) and _is_type_checking(child.test):
                for stmt in child.body:
                    visit_stmt(stmt, child_lazy, True)
                for stmt in child.orelse:
                    visit_stmt(stmt, child_lazy, type_only)
            else:
                visit_stmt(child, child_lazy, type_only)

    def visit_stmt(node: ast.AST, lazy: bool, type_only: bool) -> None:
        if isinstance(node, ast.Import):
            for alias in node.names:
                add(alias.name, node.lineno, lazy, type_only)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:  # relative: up level − 1 packages from this module's own
                anchor = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                base = ".".join([*anchor, *([base] if base else [])])
            for alias in node.names:
                sub = f"{base}.{alias.name}"
                add(sub if sub in known else base, node.lineno, lazy, type_only)
        visit(node, lazy, type_only)

    visit(ast.parse(path.read_text(), str(path)), False, False)
    return list(found.values())


def imports(root: Path, packages: Iterable[str] = PACKAGES) -> list[Import]:
    """Every import statement of the packages' modules, resolved to absolute dotted names."""
    known = modules(root, packages)
    return [imp for name, path in known.items() for imp in _module_imports(name, path, known)]


def _matches(target: str, prefixes: Iterable[str]) -> bool:
    return any(target == p or target.startswith(p + ".") for p in prefixes)


def _in(module: str, package: str) -> bool:
    return module == package or module.startswith(package + ".")


def forbidden_imports(found: list[Import], package: str, banned: tuple[str, ...], closure: bool) -> list[str]:
    """Imports of `banned` by `package`'s modules (any kind); with `closure`, also those of every
    project module that the package reaches through module-level imports."""
    by_source: dict[str, list[Import]] = {}
    for imp in found:
        by_source.setdefault(imp.source, []).append(imp)
    starts = sorted(m for m in by_source if _in(m, package))
    out = [
        f"{imp.source}:{imp.line} imports {imp.target} ({package} must not)"
        for m in starts
        for imp in by_source[m]
        if _matches(imp.target, banned)
    ]
    if closure:
        seen, stack = set(starts), [(m, [m]) for m in starts]
        while stack:
            module, via = stack.pop()
            for imp in by_source.get(module, []):
                if imp.lazy or imp.type_only:
                    continue
                if _matches(imp.target, banned) and not _in(module, package):
                    out.append(
                        f"{module}:{imp.line} imports {imp.target}, and {package} reaches it at import "
                        f"time via {' -> '.join(via)}"
                    )
                if imp.target in by_source and imp.target not in seen:
                    seen.add(imp.target)
                    stack.append((imp.target, [*via, imp.target]))
    return out


def cycles(found: list[Import], package: str) -> list[list[str]]:
    """Import cycles among `package`'s modules (strongly connected components, Tarjan), each as
    its sorted module names; a module importing itself is a cycle of one."""
    graph: dict[str, set[str]] = {}
    for imp in found:
        if _in(imp.source, package) and _in(imp.target, package) and imp.target != imp.source:
            graph.setdefault(imp.source, set()).add(imp.target)
        elif imp.target == imp.source and _in(imp.source, package):
            graph.setdefault(imp.source, set()).add(imp.source)
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    out: list[list[str]] = []

    def strongconnect(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph.get(v, ())):
            if w not in index:
                strongconnect(w)
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
            if len(component) > 1 or v in graph.get(v, ()):
                out.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            strongconnect(v)
    return out


def violations(root: Path) -> list[str]:
    """Every broken contract under `root` (see the module docstring), one line each."""
    found = imports(root)
    out: list[str] = []
    for package, banned, closure in FORBIDDEN:
        out.extend(forbidden_imports(found, package, banned, closure))
    for package in NO_CYCLES:
        out.extend(f"import cycle in {package}: {' <-> '.join(c)}" for c in cycles(found, package))
    return out
