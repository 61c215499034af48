# SPDX-License-Identifier: AGPL-3.0-only
"""The layer rules of ``docs/development.md``, read from the imports of ``mas_twisted/``.

Every import counts: at module level, under ``if TYPE_CHECKING:`` and inside functions (a
lazy import is still a dependency; hiding one in a function only hides a cycle). Beside the
imports, SQL lives in ``storage/`` (and ``sql/``): a string literal that reads as a SQL
statement anywhere else in the package is a violation. Docstrings may talk about SQL.

The checker is tested on small trees written for the purpose, so that a rule that cannot
fail is found out here, not in review.
"""

from __future__ import annotations

import ast
import re
import textwrap
import unittest
from collections.abc import Iterator
from pathlib import Path

PACKAGE = "mas_twisted"
ROOT = Path(__file__).resolve().parent.parent / PACKAGE

#: (layer of the importing module, layers it must not import).
FORBIDDEN: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("handlers", ("rest",)),
    ("storage", ("handlers", "rest", "app")),
    ("types", ("storage", "handlers", "rest")),
    ("oauth2", ("storage", "handlers", "rest")),
    ("jose", ("storage", "handlers", "rest")),
    ("urls", ("storage", "handlers", "rest")),
    (
        "metrics",
        ("storage", "handlers", "rest", "app", "queue", "config", "types", "oauth2", "jose", "api", "urls"),
    ),
)

#: Layers allowed to hold SQL statements.
SQL_LAYERS = frozenset({"storage"})

#: A statement, not a word: the keyword and what must follow it, in SQL's usual upper case.
SQL_STATEMENT = re.compile(
    r"\b(?:SELECT\s+(?:DISTINCT\s+)?[\w\"*(]|INSERT\s+INTO\s|UPDATE\s+\w+\s+SET\s|DELETE\s+FROM\s"
    r"|CREATE\s+(?:UNIQUE\s+)?(?:TABLE|INDEX|TRIGGER|VIEW)\s|ALTER\s+TABLE\s|DROP\s+(?:TABLE|INDEX)\s"
    r"|WITH\s+\w+\s+AS\s*\()"
)


def layer_of(module: str) -> str | None:
    """``mas_twisted.handlers.login`` → ``handlers``; ``mas_twisted.urls`` → ``urls``."""
    parts = module.split(".")
    if parts[0] != PACKAGE or len(parts) < 2:
        return None
    return parts[1]


def module_name(root: Path, path: Path) -> str:
    relative = path.relative_to(root.parent).with_suffix("")
    parts = list(relative.parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _imported_modules(tree: ast.AST, module: str, is_package: bool) -> Iterator[tuple[int, str]]:
    """Every module an import statement names, with its line; relative imports resolved."""
    package = module if is_package else module.rpartition(".")[0]
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield node.lineno, alias.name
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base_parts = package.split(".")
                if node.level > 1:
                    base_parts = base_parts[: -(node.level - 1)]
                base = ".".join(base_parts)
                target = f"{base}.{node.module}" if node.module else base
            else:
                target = node.module or ""
            yield node.lineno, target
            # ``from mas_twisted import rest`` imports the layer too.
            for alias in node.names:
                yield node.lineno, f"{target}.{alias.name}"


def _docstring_nodes(tree: ast.AST) -> set[int]:
    ids: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef):
            body = node.body
            if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant):
                ids.add(id(body[0].value))
    return ids


def _string_constants(tree: ast.AST) -> Iterator[tuple[int, str]]:
    skip = _docstring_nodes(tree)
    for node in ast.walk(tree):
        if isinstance(node, ast.JoinedStr):
            skip.update(id(v) for v in node.values)
    for node in ast.walk(tree):
        if isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in skip:
            yield node.lineno, node.value
        elif isinstance(node, ast.JoinedStr):
            # An f-string's literal parts, joined with a placeholder where the values go.
            text = "".join(v.value if isinstance(v, ast.Constant) else "x" for v in node.values)
            yield node.lineno, str(text)


def check_tree(root: Path) -> list[str]:
    """The violations of the layer rules in the package at ``root``, one line each."""
    violations: list[str] = []
    for path in sorted(root.rglob("*.py")):
        module = module_name(root, path)
        layer = layer_of(module)
        if layer is None:
            continue
        tree = ast.parse(path.read_text(), filename=str(path))
        where = path.relative_to(root.parent)
        forbidden = dict(FORBIDDEN).get(layer, ())
        seen: set[tuple[int, str]] = set()
        for lineno, target in _imported_modules(tree, module, path.name == "__init__.py"):
            target_layer = layer_of(target)
            if target_layer in forbidden and (lineno, target_layer) not in seen:
                seen.add((lineno, target_layer))
                violations.append(f"{where}:{lineno}: {layer}/ imports {target_layer}/ ({target})")
        if layer not in SQL_LAYERS:
            for lineno, text in _string_constants(tree):
                if SQL_STATEMENT.search(text):
                    snippet = " ".join(text.split())[:60]
                    violations.append(f"{where}:{lineno}: SQL outside storage/: {snippet!r}")
    return violations


class LayerRulesTestCase(unittest.TestCase):
    def test_the_package_keeps_the_layer_rules(self) -> None:
        violations = check_tree(ROOT)
        self.assertEqual(violations, [], "\n" + "\n".join(violations))


class CheckerTestCase(unittest.TestCase):
    """The checker finds each kind of violation, and only violations."""

    def setUp(self) -> None:
        import tempfile

        self._tmp = tempfile.TemporaryDirectory()
        self.addCleanup(self._tmp.cleanup)
        self.root = Path(self._tmp.name) / PACKAGE
        for package in ("", "handlers", "rest", "storage", "types", "oauth2", "jose", "app"):
            directory = self.root / package
            directory.mkdir(parents=True, exist_ok=True)
            (directory / "__init__.py").write_text("")

    def write(self, relative: str, source: str) -> None:
        (self.root / relative).write_text(textwrap.dedent(source))

    def test_a_clean_tree_passes(self) -> None:
        self.write("rest/login.py", "from mas_twisted.handlers import login\nimport mas_twisted.storage\n")
        self.write("handlers/login.py", "from mas_twisted.storage import users\n")
        self.write("storage/users.py", "from mas_twisted.types import users\nQ = 'SELECT id FROM users'\n")
        self.write("types/users.py", '"""SELECT users FROM the past, in a docstring."""\nX = "selected"\n')
        self.assertEqual(check_tree(self.root), [])

    def test_each_forbidden_import_is_found(self) -> None:
        cases = {
            "handlers/a.py": "from mas_twisted.rest.login import LoginResource\n",
            "handlers/b.py": "from mas_twisted import rest\n",
            "storage/a.py": "def f():\n    from mas_twisted.handlers import x\n",
            "storage/b.py": "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    import mas_twisted.app.service\n",
            "storage/c.py": "from ..rest import login\n",
            "types/a.py": "from mas_twisted.storage.database import DatabasePool\n",
            "oauth2/a.py": "from . import x\nfrom ..handlers.token import TokenHandler\n",
            "jose/a.py": "import mas_twisted.rest.keys\n",
            "urls.py": "from mas_twisted.storage import stores\n",
        }
        for relative, source in cases.items():
            self.write(relative, source)
        found = check_tree(self.root)
        self.assertEqual(len(found), len(cases), "\n".join(found))
        for relative in cases:
            self.assertTrue(any(line.startswith(f"{PACKAGE}/{relative}:") for line in found), relative)

    def test_sql_outside_storage_is_found(self) -> None:
        self.write("handlers/a.py", 'Q = "SELECT user_id FROM users WHERE username = ?"\n')
        self.write("rest/b.py", "def f(t):\n    return f'DELETE FROM {t} WHERE x = 1'\n")
        self.write("app/c.py", 'Q = ("UPDATE users "\n     "SET locked_at = ?")\n')
        self.write("handlers/ok.py", 'MSG = "Select an account from the list"\nX = "update the set"\n')
        found = check_tree(self.root)
        self.assertEqual(len(found), 3, "\n".join(found))
        self.assertTrue(all("SQL outside storage/" in line for line in found))
