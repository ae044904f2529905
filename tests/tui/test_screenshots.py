"""`python -m p2pview.screenshots`: the script that makes README's pictures."""

from __future__ import annotations

from pathlib import Path

import pytest

from p2pview.screenshots import main
from p2pview.tui.screenshots import SHOTS


def test_named_shots_are_written_as_svgs_of_what_the_screen_shows(tmp_path: Path) -> None:
    assert main(["--out", str(tmp_path), "explain", "demo"]) == 0
    explain = (tmp_path / "explain.svg").read_text().replace("&#160;", " ")
    demo = (tmp_path / "demo.svg").read_text().replace("&#160;", " ")
    assert explain.startswith("<svg") and "THRU_HOST_BRIDGE" in explain
    assert "Why does my P2P fail?" in demo and "3/7" in demo
    assert sorted(p.name for p in tmp_path.iterdir()) == ["demo.svg", "explain.svg"]


def test_every_screen_has_a_shot_and_readme_shows_them() -> None:
    names = {s.name for s in SHOTS}
    assert {"topology", "matrix", "explain", "whatif", "stepper", "help", "demo"} <= names
    readme = (Path(__file__).parents[2] / "README.md").read_text()
    for name in ("topology", "matrix", "explain", "whatif", "stepper", "demo"):
        assert f"screenshots/{name}.svg" in readme


def test_an_unknown_shot_is_refused(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        main(["no-such-shot"])
    assert exc.value.code == 2
    assert "unknown shot(s): no-such-shot" in capsys.readouterr().err
