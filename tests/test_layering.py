"""The three rooms and their one-way doors, held by tests rather than by habit."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_services_import_without_textual_or_the_sandbox() -> None:
    code = (
        "import sys, pkgutil, importlib, services\n"
        "for m in pkgutil.iter_modules(services.__path__):\n"
        "    importlib.import_module('services.' + m.name)\n"
        "bad = [n for n in sys.modules\n"
        "       if n.split('.')[0] in ('textual', 'tui', 'widgets', 'sandbox')]\n"
        "print(','.join(bad))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True
    )
    assert out.stdout.strip() == ""


def _imports(package: str) -> set[str]:
    found: set[str] = set()
    for path in (ROOT / package).rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                found.update(a.name.split(".")[0] for a in node.names)
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                found.add(node.module.split(".")[0])
    return found


def test_widgets_never_import_services() -> None:
    assert "services" not in _imports("widgets")
    assert "tui" not in _imports("widgets")


def test_widgets_never_import_the_sandbox() -> None:
    assert "sandbox" not in _imports("widgets")


def test_services_never_import_the_faces() -> None:
    assert not {"textual", "tui", "widgets"} & _imports("services")


def test_services_never_import_the_sandbox() -> None:
    assert "sandbox" not in _imports("services")


def test_sandbox_never_imports_the_faces() -> None:
    assert not {"textual", "tui", "widgets"} & _imports("sandbox")
