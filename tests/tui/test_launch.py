"""Starting the TUI from the command line: load errors, mistyped commands, no terminal."""

from __future__ import annotations

import asyncio
import io
from pathlib import Path

import pytest

from p2pview import cli, tui
from p2pview.tui.app import P2PViewApp, TuiArgs
from p2pview.tui.model import TuiStart


class Terminal(io.StringIO):
    """A stream that says it is a terminal."""

    def isatty(self) -> bool:
        return True


def as_terminal(monkeypatch: pytest.MonkeyPatch) -> None:
    """Standard input and output are a terminal.

    Called in the test itself: capsys puts its own streams in place when the
    test starts, after every fixture.
    """
    monkeypatch.setattr("sys.stdin", Terminal())
    monkeypatch.setattr("sys.stdout", Terminal())


@pytest.fixture
def apps(monkeypatch: pytest.MonkeyPatch) -> list[P2PViewApp]:
    """Every app the CLI builds; each runs headless, shows its first screen and quits."""
    built: list[P2PViewApp] = []

    class Headless(P2PViewApp):
        def run(self, *args: object, **kwargs: object) -> None:  # type: ignore[override]
            async def main() -> None:
                async with self.run_test() as pilot:
                    await self.loaded()
                    await pilot.pause()

            asyncio.run(main())

    def make(args: TuiArgs | None = None, start: TuiStart | None = None) -> P2PViewApp:
        app = Headless(args, start)
        built.append(app)
        return app

    monkeypatch.setattr(tui, "make_app", make)
    return built


@pytest.mark.parametrize(
    ("name", "said"),
    [
        ("broken.toml", "broken.toml"),
        ("missing.tar.gz", "missing.tar.gz: no such file or directory"),
    ],
)
def test_a_source_that_cannot_load_is_reported_before_any_screen(
    name: str,
    said: str,
    tmp_path: Path,
    apps: list[P2PViewApp],
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    as_terminal(monkeypatch)
    (tmp_path / "broken.toml").write_text("[[device]]\nbdf = 'not a bdf'\n")
    assert cli.main([str(tmp_path / name)]) == 2
    assert apps == []  # no screen at all
    err = capsys.readouterr().err
    assert err.startswith("p2pview: error: ") and said in err


def test_a_source_that_loads_opens_on_it(
    apps: list[P2PViewApp], monkeypatch: pytest.MonkeyPatch
) -> None:
    as_terminal(monkeypatch)
    assert cli.main(["switch-nvme"]) == 0
    (app,) = apps
    assert app.whatif is not None and app.whatif.topology.name == "switch-nvme"
    assert app.current_mode == "topology"


@pytest.mark.parametrize(
    ("argv", "said"),
    [
        (["bogus"], "unknown command 'bogus';"),
        (["matrx", "switch-nvme"], "unknown command 'matrx' (did you mean 'p2pview matrix'?)"),
        (["explian"], "(did you mean 'p2pview explain'?)"),
    ],
)
def test_a_mistyped_command_says_unknown_command(
    argv: list[str],
    said: str,
    apps: list[P2PViewApp],
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    as_terminal(monkeypatch)
    assert cli.main(argv) == 2
    assert apps == []
    err = capsys.readouterr().err
    assert said in err
    assert "unrecognized arguments" not in err


@pytest.mark.parametrize("stream", ["stdin", "stdout"])
def test_without_a_terminal_the_tui_refuses_and_names_the_commands(
    stream: str,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    apps: list[P2PViewApp],
) -> None:
    other = "stdout" if stream == "stdin" else "stdin"
    monkeypatch.setattr(f"sys.{other}", Terminal())
    monkeypatch.setattr(f"sys.{stream}", io.StringIO())
    assert cli.main(["switch-nvme"]) == 2
    assert apps == []
    err = capsys.readouterr().err
    where = "standard input" if stream == "stdin" else "standard output"
    assert f"needs a terminal, and {where} is not one" in err
    assert "'p2pview matrix switch-nvme'" in err
    assert "'p2pview explain switch-nvme PROVIDER CLIENT'" in err


def test_a_driver_chosen_in_textual_driver_needs_no_terminal(
    monkeypatch: pytest.MonkeyPatch, apps: list[P2PViewApp]
) -> None:
    # textual-serve runs the app on pipes with its web driver named here
    monkeypatch.setenv("TEXTUAL_DRIVER", "textual.drivers.web_driver:WebDriver")
    monkeypatch.setattr("sys.stdin", io.StringIO())
    monkeypatch.setattr("sys.stdout", io.StringIO())
    assert cli.main(["switch-nvme"]) == 0
    assert len(apps) == 1
