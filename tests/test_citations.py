"""What users read cites only what they can open: no internal shorthand anywhere.

Users get a kernel release and file ("Linux 7.2.13, drivers/pci/p2pdma.c"), a
commit id, a public repository at a commit, or a document shipped here. The
project's own reference notes are not shipped, so their source tags (S-new,
S-5.17), test-vector numbers (TV5), patch-series tags (V5-03), section numbers
and search-index ids mean nothing to a user. Scanned: the profiles and whitelist
rows (``p2pview profiles``, ``explain``, JSON ``kernel.caveats``), every string
literal of the package that is not a docstring (CLI, TUI and JSON text), the
bundled topologies, scenarios and demos (comments and descriptions), README and
docs/. Code comments and docstrings may cite the notes; they are not scanned.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

import p2pview
from p2pview.kernel.profiles import PROFILES
from p2pview.kernel.whitelist import ALL_ENTRIES

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = Path(p2pview.__file__).resolve().parent

SHORTHAND = re.compile(
    r"\bS-(?:new|blkdma|\d+\.\d+)\b"  # source tags of the reference notes
    r"|\bTV\d+"  # their test vectors
    r"|\bV(?:5|8|11)-(?:\d+|xx?)\b"  # patch-series tags
    r"|search[- ](?:store|index)"
    r"|\bspec (?:sections?|TV|test vector)|§"
    r"|kernel-p2pdma\.md|qemu-kernel-oracle\.md|shared/spec"
    r"|\b(?:kernel|data-path) notes\b|\bthe notes\b",
    re.IGNORECASE,
)


def _hits(text: str) -> list[str]:
    return [m.group() for m in SHORTHAND.finditer(text)]


def test_the_pattern_catches_what_it_is_for():
    for bad in (
        "S-new",
        "S-5.17 non-hacked parts",
        "(TV13)",
        "V5-03",
        "search-store id 1",
        "spec section 3.1",
        "see kernel-p2pdma.md",
    ):
        assert _hits(bad), bad
    for good in ("Linux 7.2.13, drivers/pci/p2pdma.c", "commit 1af7c26c59eb", "RSS-5", "TVs"):
        assert not _hits(good), good


def test_profiles_cite_what_users_can_open():
    for p in PROFILES:
        for text in (p.title, p.sources, *p.caveats):
            assert not _hits(text), (p.key, text)


def test_whitelist_rows_cite_what_users_can_open():
    for e in ALL_ENTRIES:
        assert not _hits(e.comment) and not _hits(e.citation), e.ids
        assert e.citation, f"{e.ids}: no citation"


def _string_literals(path: Path) -> list[tuple[int, str]]:
    tree = ast.parse(path.read_text())
    docs = {
        id(node.value)
        for node in ast.walk(tree)
        if isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant)
    }
    return [
        (node.lineno, node.value)
        for node in ast.walk(tree)
        if isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in docs
    ]


def test_no_string_the_program_prints_uses_shorthand():
    found = []
    for path in sorted(PACKAGE.rglob("*.py")):
        for line, text in _string_literals(path):
            found += [f"{path.relative_to(PACKAGE)}:{line}: {h}" for h in _hits(text)]
    assert not found


def _user_files() -> list[Path]:
    files = [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]
    files += sorted((ROOT / "topologies").rglob("*.toml"))
    return files


@pytest.mark.parametrize("path", _user_files(), ids=lambda p: str(p.relative_to(ROOT)))
def test_shipped_text_uses_no_shorthand(path):
    found = [
        f"{path.relative_to(ROOT)}:{i}: {h}"
        for i, line in enumerate(path.read_text().splitlines(), 1)
        for h in _hits(line)
    ]
    assert not found


def test_profiles_and_readme_point_to_the_kernel_model():
    assert (ROOT / "docs" / "kernel-model.md").is_file()
    assert "docs/kernel-model.md" in (ROOT / "README.md").read_text()
