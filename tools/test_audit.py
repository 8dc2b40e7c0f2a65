#!/usr/bin/env python3
"""Find tests that cannot fail.

Scans the test files (test_*.py, *_test.py) under the paths given, by
default the repository's tests/ and molecule/*/tests/
(`python3 tools/test_audit.py [PATH ...]`). A test is what pytest collects:
a module-level function named test*, or such a method of a class named
Test*. Each test is reported, as `path:line: test: reason`, when

* nothing in its body can fail it: no `assert`, no `with pytest.raises(...)`
  or `pytest.warns(...)` (or their callable form), no `pytest.fail(...)`, no
  `raise AssertionError`, no call of an asserting helper. pytest.skip and
  pytest.xfail do not count: they cannot fail a test;
* its only asserts are always true (`assert True`, `assert "text"`,
  `assert (x == 1, "message")`);
* an argument named by its @pytest.mark.parametrize is never read in its
  body (indirect arguments, which go to fixtures, are left out).

The body means the test's own statements, nested blocks included, but not
the bodies of functions, lambdas or classes defined inside it - except a
nested function the test calls by name, which counts as a helper.

Asserting helpers are found, not hand-listed: a function is one when its own
body can fail as above (calls of other asserting helpers included). They are
looked for among the test module's module-level functions and in the modules
of the test's directory it imports from (`from conftest import ...`,
`import ansible_run`). A helper that only returns a result
(ansible_run.run_playbook, conftest.wait_no_jobs) is no check: the test must
assert on what it returns. The one explicit list is ASSERTING_CALLS below; a
helper the search cannot see (defined in another directory) would be added
there by its dotted name.

Exits 1 when anything is reported, 0 otherwise.
"""

from __future__ import annotations

import argparse
import ast
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Iterator, Union

ROOT = Path(__file__).resolve().parents[1]
# Calls that fail the test wherever they are made.
ASSERTING_CALLS = frozenset({"pytest.fail"})
# Context managers that fail the test when their block does not raise or warn.
CHECKING_CONTEXTS = frozenset({"pytest.raises", "pytest.warns"})
PARAMETRIZE = "pytest.mark.parametrize"
SCOPES = (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda, ast.ClassDef)
NO_CHECK = "cannot fail: no assert, pytest.raises/fail or asserting helper call"
ALWAYS_TRUE = "cannot fail: its only asserts are always true"

Function = Union[ast.FunctionDef, ast.AsyncFunctionDef]


@dataclass(frozen=True)
class Finding:
    """One test that cannot fail, or one of its unused parametrized arguments."""

    path: Path
    line: int
    test: str
    reason: str

    def __str__(self) -> str:
        return f"{self.path}:{self.line}: {self.test}: {self.reason}"


def dotted(node: ast.expr) -> str:
    """'pytest.mark.parametrize' for that attribute chain, 'name' for a name, '' for anything else."""
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        base = dotted(node.value)
        return f"{base}.{node.attr}" if base else ""
    return ""


def called(node: ast.expr) -> str:
    """The dotted name a decorator or call expression calls (or is)."""
    return dotted(node.func if isinstance(node, ast.Call) else node)


def own_nodes(body: Iterable[ast.stmt]) -> Iterator[ast.AST]:
    """Every node of `body`, without looking into the functions, lambdas and classes it defines."""
    stack: list[ast.AST] = list(body)
    while stack:
        node = stack.pop()
        yield node
        if not isinstance(node, SCOPES):
            stack.extend(ast.iter_child_nodes(node))


def is_always_true(test: ast.expr) -> bool:
    """A truthy constant, a non-empty literal tuple/list/set/dict, or an f-string with fixed text."""
    if isinstance(test, ast.Constant):
        return bool(test.value)
    if isinstance(test, (ast.Tuple, ast.List, ast.Set)):
        return bool(test.elts)
    if isinstance(test, ast.Dict):
        return bool(test.keys)
    if isinstance(test, ast.JoinedStr):
        return any(isinstance(part, ast.Constant) and part.value for part in test.values)
    return False


def is_assertion_error(exc: ast.expr | None) -> bool:
    """`raise AssertionError` or `raise AssertionError(...)`."""
    return exc is not None and called(exc) == "AssertionError"


def fails_here(node: ast.AST, helpers: frozenset[str]) -> bool:
    """Can this one node fail the test (given the names of the asserting helpers)?"""
    if isinstance(node, ast.Assert):
        return not is_always_true(node.test)
    if isinstance(node, ast.Raise):
        return is_assertion_error(node.exc)
    if isinstance(node, (ast.With, ast.AsyncWith)):
        return any(called(item.context_expr) in CHECKING_CONTEXTS for item in node.items)
    if isinstance(node, ast.Call):
        name = called(node)
        # pytest.raises(Error, func, *args): the callable form checks by itself.
        return name in ASSERTING_CALLS or name in helpers or (name in CHECKING_CONTEXTS and len(node.args) >= 2)
    return False


def nested_functions(body: list[ast.stmt]) -> list[Function]:
    """The functions `body` defines in its own scope."""
    return [node for node in own_nodes(body) if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef))]


def can_fail(body: list[ast.stmt], helpers: frozenset[str]) -> bool:
    """Can `body` fail: by itself, or by calling an asserting helper (nested functions it calls included)?"""
    helpers = asserting_functions(nested_functions(body), helpers)
    return any(fails_here(node, helpers) for node in own_nodes(body))


def asserting_functions(functions: Iterable[Function], known: frozenset[str]) -> frozenset[str]:
    """`known` plus the names of `functions` that can fail, directly or through each other."""
    found = set(known)
    pending = list(functions)
    changed = True
    while changed:
        changed = False
        for function in list(pending):
            if can_fail(function.body, frozenset(found)):
                found.add(function.name)
                pending.remove(function)
                changed = True
    return frozenset(found)


def module_helpers(tree: ast.Module) -> frozenset[str]:
    """Names of the module-level functions of `tree` that can fail a test calling them."""
    functions = [node for node in tree.body if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef))]
    return asserting_functions(functions, frozenset())


def sibling_helpers(path: Path) -> frozenset[str]:
    """The asserting helpers of the module file `path`; none when there is no such file."""
    if not path.is_file():
        return frozenset()
    return module_helpers(ast.parse(path.read_text(encoding="utf-8"), str(path)))


def imported_helpers(tree: ast.Module, directory: Path) -> frozenset[str]:
    """The asserting helpers `tree` imports from modules of `directory`, under the names it calls them by."""
    names: set[str] = set()
    for node in tree.body:
        if isinstance(node, ast.ImportFrom) and node.module and not node.level:
            helpers = sibling_helpers(directory / f"{node.module}.py")
            names.update(alias.asname or alias.name for alias in node.names if alias.name in helpers)
        elif isinstance(node, ast.Import):
            for alias in node.names:
                prefix = alias.asname or alias.name
                names.update(f"{prefix}.{helper}" for helper in sibling_helpers(directory / f"{alias.name}.py"))
    return frozenset(names)


def collected_tests(tree: ast.Module) -> Iterator[tuple[str, Function]]:
    """(name as pytest shows it, function) of each test in the module."""
    for node in tree.body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and node.name.startswith("test"):
            yield node.name, node
        elif isinstance(node, ast.ClassDef) and node.name.startswith("Test"):
            for method in node.body:
                if isinstance(method, (ast.FunctionDef, ast.AsyncFunctionDef)) and method.name.startswith("test"):
                    yield f"{node.name}::{method.name}", method


def argument_names(node: ast.expr) -> list[str]:
    """The names of a parametrize argnames value: "a,b", ("a", "b") or ["a", "b"]; [] when not literal."""
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return [name.strip() for name in node.value.split(",") if name.strip()]
    if isinstance(node, (ast.Tuple, ast.List)):
        return [elt.value for elt in node.elts if isinstance(elt, ast.Constant) and isinstance(elt.value, str)]
    return []


def keyword(call: ast.Call, name: str) -> ast.expr | None:
    """The value of keyword argument `name` of `call`, if given."""
    return next((kw.value for kw in call.keywords if kw.arg == name), None)


def parametrized_arguments(function: Function) -> list[str]:
    """The arguments the function's @pytest.mark.parametrize decorators give it directly (not indirect)."""
    names: list[str] = []
    for decorator in function.decorator_list:
        if not isinstance(decorator, ast.Call) or called(decorator) != PARAMETRIZE:
            continue
        argnames = decorator.args[0] if decorator.args else keyword(decorator, "argnames")
        indirect = keyword(decorator, "indirect")
        if argnames is None or (isinstance(indirect, ast.Constant) and indirect.value):
            continue
        skipped = set(argument_names(indirect)) if indirect is not None else set()
        names += [name for name in argument_names(argnames) if name not in skipped]
    return names


def read_names(function: Function) -> set[str]:
    """Every name the function's body reads, nested functions and lambdas included."""
    return {node.id for stmt in function.body for node in ast.walk(stmt)
            if isinstance(node, ast.Name) and isinstance(node.ctx, ast.Load)}


def check_test(path: Path, name: str, function: Function, helpers: frozenset[str]) -> list[Finding]:
    """What is wrong with one test: it cannot fail, or it leaves a parametrized argument unused."""
    findings = []
    if not can_fail(function.body, helpers):
        trivial = any(isinstance(node, ast.Assert) for node in own_nodes(function.body))
        findings.append(Finding(path, function.lineno, name, ALWAYS_TRUE if trivial else NO_CHECK))
    used = read_names(function)
    findings += [Finding(path, function.lineno, name, f"parametrized argument '{arg}' never used")
                 for arg in parametrized_arguments(function) if arg not in used]
    return findings


def check_file(path: Path, shown: Path | None = None) -> list[Finding]:
    """Findings for every test of one test file (shown under the name `shown`)."""
    shown = shown or path
    try:
        tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
    except SyntaxError as exc:
        return [Finding(shown, exc.lineno or 0, "<module>", f"does not parse: {exc.msg}")]
    helpers = module_helpers(tree) | imported_helpers(tree, path.parent)
    return [finding for name, function in collected_tests(tree)
            for finding in check_test(shown, name, function, helpers)]


def is_test_file(path: Path) -> bool:
    """pytest's default file patterns: test_*.py and *_test.py."""
    return path.suffix == ".py" and (path.name.startswith("test_") or path.stem.endswith("_test"))


def files_to_check(roots: Iterable[Path]) -> list[Path]:
    """The test files under each root (a root may also be one file)."""
    files: set[Path] = set()
    for root in roots:
        candidates = [root] if root.is_file() else root.rglob("*.py")
        files.update(path for path in candidates if is_test_file(path))
    return sorted(files)


def default_roots() -> list[Path]:
    """The repository's tests/ and molecule/*/tests/."""
    return [ROOT / "tests", *sorted(ROOT.glob("molecule/*/tests"))]


def shown_path(path: Path) -> Path:
    """`path` relative to the working directory when it lies below it."""
    try:
        return path.resolve().relative_to(Path.cwd().resolve())
    except ValueError:
        return path


def audit(roots: Iterable[Path]) -> list[Finding]:
    """Findings for every test file under `roots`."""
    return [finding for path in files_to_check(roots) for finding in check_file(path, shown_path(path))]


def main(argv: list[str] | None = None) -> int:
    """Print each finding for the given paths (default: the repository's tests); 1 if there is any."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("paths", nargs="*", type=Path,
                        help="test directories or files (default: tests/ and molecule/*/tests/)")
    findings = audit(parser.parse_args(argv).paths or default_roots())
    for finding in findings:
        print(finding)
    return 1 if findings else 0


if __name__ == "__main__":
    sys.exit(main())
