"""The architecture's layering: the core imports neither textual nor rich."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import p2pview

PACKAGE = Path(p2pview.__file__).parent
LAYERS = ["model", "sources", "kernel", "iosim"]
#: Every module and package of p2pview, each importing only those before it:
#: the four layers, then what the faces share (the engine session, the JSON
#: reports, compare, the CLI's text views, the QEMU oracle), then the faces.
ORDER = [
    *LAYERS,
    "session",
    "jsonreport",
    "matrixjson",
    "compare",
    "views",
    "qemu",
    "tui",
    "screenshots",
    "cli",
    "__main__",
]


def test_core_imports_neither_textual_nor_rich():
    code = (
        "import sys\n"
        "import p2pview.model, p2pview.sources, p2pview.kernel, p2pview.iosim\n"
        # the QEMU machine writer and verifier print plain text: a face without Rich
        "import p2pview.qemu.commands\n"
        "bad = sorted(m for m in sys.modules if m.split('.')[0] in ('textual', 'rich'))\n"
        "print(bad)\n"
        "sys.exit(1 if bad else 0)\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text())
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module:
            found.add(node.module)
        elif isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
    return found


def test_each_layer_imports_only_the_layers_before_it():
    for index, layer in enumerate(LAYERS):
        allowed = {f"p2pview.{name}" for name in LAYERS[: index + 1]}
        for path in (PACKAGE / layer).rglob("*.py"):
            for module in _imports(path):
                if module == "p2pview" or not module.startswith("p2pview."):
                    continue
                top = ".".join(module.split(".")[:2])
                assert top in allowed, f"{path.relative_to(PACKAGE)} imports {module}"


def test_only_tui_imports_textual():
    for path in PACKAGE.rglob("*.py"):
        if "tui" in path.relative_to(PACKAGE).parts:
            continue
        assert not any(m.split(".")[0] == "textual" for m in _imports(path)), path


def _top(path: Path) -> str:
    return path.relative_to(PACKAGE).parts[0].removesuffix(".py")


def test_every_package_imports_only_those_before_it():
    tops = {_top(p) for p in PACKAGE.rglob("*.py")} - {"__init__"}
    assert tops == set(ORDER), "ORDER must name every module and package of p2pview"
    for path in PACKAGE.rglob("*.py"):
        top = _top(path)
        if top == "__init__":
            continue
        allowed = set(ORDER[: ORDER.index(top) + 1])
        for module in _imports(path):
            if module.startswith("p2pview."):
                assert module.split(".")[1] in allowed, (
                    f"{path.relative_to(PACKAGE)} imports {module}"
                )
