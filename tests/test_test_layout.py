# SPDX-License-Identifier: AGPL-3.0-only
"""The tests mirror the tree: every test package under ``tests/`` is a package of
``mas_twisted/`` (``tests/rest/oauth2`` tests ``mas_twisted/rest/oauth2``), apart from the few
that test the whole service (:data:`NOT_MIRRORED`), and no test module imports another test
module. What tests share lives in ``tests/factories.py`` (users, clients, sessions and tokens)
and in a package's ``_base.py``/``_helpers.py``, so that running, moving or deleting one test
module never changes another.

As in ``test_layers.py``, the checkers are also run on small trees written for the purpose.
"""

from __future__ import annotations

import ast
import tempfile
import unittest
from pathlib import Path

TESTS = Path(__file__).resolve().parent
PACKAGE = TESTS.parent / "mas_twisted"

#: Test packages that test the service as a whole rather than one package of it.
NOT_MIRRORED = frozenset({"integration"})


def _is_test_module(module: str) -> bool:
    return module.split(".")[-1].startswith("test_")


def imports_of_test_modules(tests: Path) -> list[str]:
    """``path:line: imports test module`` for every import of a ``tests.…test_*`` module."""
    found = []
    for path in sorted(tests.rglob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                names = [node.module] + [f"{node.module}.{alias.name}" for alias in node.names]
            elif isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            else:
                continue
            for name in names:
                if name.split(".")[0] == tests.name and _is_test_module(name):
                    found.append(f"{path.relative_to(tests.parent)}:{node.lineno}: imports {name}")
                    break
    return found


def unmirrored_packages(tests: Path, package: Path) -> list[str]:
    """Test packages (directories with test modules) with no package of the same path in ``package``."""
    found = []
    for directory in sorted(p for p in tests.rglob("*") if p.is_dir()):
        relative = directory.relative_to(tests)
        if relative.parts[0] in NOT_MIRRORED or relative.parts[0] == "__pycache__":
            continue
        if not any(directory.glob("test_*.py")):
            continue
        if not (package / relative / "__init__.py").is_file():
            found.append(f"{tests.name}/{relative.as_posix()}: no {package.name}/{relative.as_posix()}/")
    return found


class TestLayoutTestCase(unittest.TestCase):
    def test_no_test_module_imports_another(self) -> None:
        self.assertEqual(imports_of_test_modules(TESTS), [])

    def test_test_packages_mirror_the_package(self) -> None:
        self.assertEqual(unmirrored_packages(TESTS, PACKAGE), [])


class CheckerTestCase(unittest.TestCase):
    def setUp(self) -> None:
        tmp = tempfile.TemporaryDirectory()
        self.addCleanup(tmp.cleanup)
        self.root = Path(tmp.name)
        self.tests = self.root / "tests"
        self.package = self.root / "pkg"
        for path in (
            "tests/__init__.py",
            "tests/util/__init__.py",
            "pkg/__init__.py",
            "pkg/util/__init__.py",
        ):
            self.write(path, "")

    def write(self, relative: str, source: str) -> None:
        path = self.root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(source, encoding="utf-8")

    def test_a_clean_tree_passes(self) -> None:
        self.write("tests/util/_helpers.py", "X = 1\n")
        self.write("tests/util/test_a.py", "from tests.util._helpers import X\nimport tests.factories\n")
        self.write("tests/integration/test_b.py", "from tests.util._helpers import X\n")
        self.assertEqual(imports_of_test_modules(self.tests), [])
        self.assertEqual(unmirrored_packages(self.tests, self.package), [])

    def test_each_import_of_a_test_module_is_found(self) -> None:
        self.write("tests/util/test_a.py", "X = 1\n")
        self.write("tests/util/test_b.py", "from tests.util.test_a import X\n")
        self.write("tests/util/test_c.py", "def f():\n    import tests.util.test_a\n")
        self.write("tests/util/_helpers.py", "from tests.util import test_a\n")
        self.assertEqual(
            imports_of_test_modules(self.tests),
            [
                "tests/util/_helpers.py:1: imports tests.util.test_a",
                "tests/util/test_b.py:1: imports tests.util.test_a",
                "tests/util/test_c.py:2: imports tests.util.test_a",
            ],
        )

    def test_a_test_package_without_its_package_is_found(self) -> None:
        self.write("tests/tasks/test_a.py", "")
        self.write("tests/util/deeper/test_b.py", "")
        self.write("tests/util/fixtures/data.yaml", "")  # no test module: not a test package
        self.assertEqual(
            unmirrored_packages(self.tests, self.package),
            ["tests/tasks: no pkg/tasks/", "tests/util/deeper: no pkg/util/deeper/"],
        )
