"""One vocabulary of styles: views mark text by meaning, each face gives the colours."""

from __future__ import annotations

import re
from pathlib import Path

import p2pview
from p2pview.tui.presenters.explain_content import THEME_STYLES
from p2pview.views.styles import THEME

PACKAGE = Path(p2pview.__file__).parent
ATTRIBUTES = {"", "bold", "italic"}


def test_every_style_name_has_terminal_and_tui_colours() -> None:
    assert set(THEME) <= set(THEME_STYLES)


def test_views_and_the_cli_use_style_names_not_colours() -> None:
    files = [*(PACKAGE / "views").glob("*.py"), PACKAGE / "cli.py"]
    for path in files:
        if path.name == "styles.py":
            continue
        for m in re.finditer(r'style="([^"]*)"', path.read_text()):
            name = m[1]
            assert name in THEME or name in ATTRIBUTES, f"{path.name}: style={name!r}"


def test_explain_on_a_terminal_is_coloured_by_the_theme(capsys, monkeypatch) -> None:
    from p2pview.cli import main

    monkeypatch.setenv("FORCE_COLOR", "1")
    monkeypatch.setenv("COLUMNS", "120")
    assert main(["explain", "switch-nvme", "0000:1a:00.0", "0000:1b:00.0"]) == 0
    out = capsys.readouterr().out
    # BUS_ADDR in bold green (SGR 1;32), as verdict.bus_addr says.
    assert "\x1b[1;32mBUS_ADDR, distance 4\x1b[0m" in out
