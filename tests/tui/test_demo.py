"""Demo mode: scripts checked at load, played forwards and back, keys, autoplay, the CLI."""

import asyncio
import json
import os
import selectors
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
from textual.widgets import Input, Static
from tuikit import edit

from p2pview.cli import build_parser, demo_server, main
from p2pview.tui.analysis import set_iommu
from p2pview.tui.demo import DemoApp, DemoError, bundled_demos, load_demo, make_demo_app
from p2pview.tui.demo.caption import DemoCaption
from p2pview.tui.demo.theme import PRESENTER
from p2pview.tui.screens.base import ModelScreen
from p2pview.tui.screens.stepper import StepperScreen

BUNDLED = [name for name, _path in bundled_demos()]

#: Textual's screen for each step's ``screen`` key.
SCREEN_CLASS = {
    "topology": "TopologyScreen",
    "matrix": "MatrixScreen",
    "explain": "ExplainScreen",
    "whatif": "WhatIfScreen",
    "stepper": "StepperScreen",
}


def _app(demo, **kwargs) -> DemoApp:
    app = make_demo_app(demo, **kwargs)
    # Pilot waits for the tab underline's slide after each key; a presenter does not.
    app.animation_level = "none"
    return app


def _write_demo(tmp_path: Path, body: str) -> Path:
    path = tmp_path / "talk.toml"
    path.write_text(textwrap.dedent(body), encoding="utf-8")
    return path


def _caption(app: DemoApp) -> DemoCaption:
    """The caption bar of the screen shown (exactly one)."""
    bars = app.screen.query(DemoCaption)
    assert len(bars) == 1, f"{len(bars)} caption bars on {app.screen}"
    return bars.first()


def _check_step(app: DemoApp, index: int) -> None:
    """The screen shows step ``index`` as its script says: screen, caption, counter, stage."""
    demo = app.demo
    step = demo.steps[index]
    assert app.step_index == index
    assert app.current_mode == step.spec.screen
    assert type(app.screen).__name__ == SCREEN_CLASS[step.spec.screen]
    bar = _caption(app)
    text = bar.plain
    assert step.spec.caption in text
    assert demo.title in text
    assert f"{index + 1}/{len(demo.steps)}" in text
    # On screen: a few rows at the top, inside the terminal.
    assert bar.region.height >= 2
    assert bar.region.y == 0
    assert bar.region.bottom <= app.size.height
    if step.spec.screen == "stepper":
        screen = app.screen
        assert isinstance(screen, StepperScreen)
        status = str(screen.query_one("#stepper-status", Static).render())
        assert f"Step {step.stage_index + 1}/" in status
        assert f"· {step.spec.stage}" in status
        assert step.run is not None and app.stepper_run is step.run


# -- playing the bundled demos ---------------------------------------------------------


@pytest.mark.parametrize("name", BUNDLED)
def test_bundled_demo_plays_forwards_and_backwards(name):
    demo = load_demo(name)
    assert len(demo.steps) >= 3

    async def run() -> None:
        app = _app(demo)
        async with app.run_test(size=(100, 30)) as pilot:
            await app.loaded()
            await pilot.pause()
            _check_step(app, 0)
            for index in range(1, len(demo.steps)):
                await pilot.press("space")
                await pilot.pause()
                _check_step(app, index)
            # Past the end without --loop: it stays on the last step.
            await pilot.press("right")
            await pilot.pause()
            _check_step(app, len(demo.steps) - 1)
            for index in reversed(range(len(demo.steps) - 1)):
                await pilot.press("left")
                await pilot.pause()
                _check_step(app, index)
            await pilot.press("left")
            await pilot.pause()
            _check_step(app, 0)
            # The normal load worker never ran: the demo brought its models.
            assert not [w for w in app.workers if w.group == "load"]

    asyncio.run(run())


def test_bundled_demos_are_the_three_of_the_issue():
    assert set(BUNDLED) >= {"why-p2p-fails", "odirect-cmb-read", "v5-series-changes"}


def test_clicker_keys_page_down_and_up():
    demo = load_demo("why-p2p-fails")

    async def run() -> None:
        app = _app(demo)
        async with app.run_test(size=(100, 30)) as pilot:
            await app.loaded()
            await pilot.press("pagedown", "pagedown")
            await pilot.pause()
            _check_step(app, 2)
            await pilot.press("pageup")
            await pilot.pause()
            _check_step(app, 1)

    asyncio.run(run())


def test_v5_demo_runs_each_step_on_its_own_kernels_data_path():
    """A step that names a kernel runs the scenario's data path of that kernel."""
    demo = load_demo("v5-series-changes")
    by_kernel = {}
    for step in demo.steps:
        assert step.run is not None
        kernel = str(step.whatif.session.target.version)
        by_kernel[kernel] = step
        # The scenario's data path and the session's kernel agree.
        named = step.run.scenario.kernel
        assert named is not None
        assert named.version == step.whatif.session.target.version
    assert {"6.2", "6.12", "6.17"} <= set(by_kernel)


def test_stepper_step_shows_the_stage_panel():
    """The tab of the panel the stage is about is open (not the buffer's by default)."""
    demo = load_demo("odirect-cmb-read")
    index = next(i for i, s in enumerate(demo.steps) if s.spec.stage == "map_sg")

    async def run() -> None:
        app = _app(demo)
        async with app.run_test(size=(100, 30)) as pilot:
            await app.loaded()
            for _ in range(index):
                await pilot.press("space")
            await pilot.pause()
            await pilot.pause()
            _check_step(app, index)
            tabs = app.screen.query_one("#stepper-panels")
            assert tabs.active == "panel-sg"

    asyncio.run(run())


def test_going_back_shows_the_step_as_written_after_what_if_edits():
    """Edits made with the screens' own keys stay with that visit, not with the step."""
    demo = load_demo("why-p2p-fails")

    async def run() -> None:
        app = _app(demo)
        async with app.run_test(size=(100, 30)) as pilot:
            await app.loaded()
            await pilot.press("space")
            await pilot.pause()
            edit(app, set_iommu(False))  # as the what-if screen's "i" would
            assert app.whatif is not None and app.whatif.edits
            await pilot.press("space", "left")
            await pilot.pause()
            _check_step(app, 1)
            assert app.whatif is not None and app.whatif.edits == ()
            assert demo.steps[1].whatif.edits == ()

    asyncio.run(run())


def test_restart_and_quit_keys():
    demo = load_demo("odirect-cmb-read")

    async def run() -> None:
        app = _app(demo)
        async with app.run_test(size=(100, 30)) as pilot:
            await app.loaded()
            await pilot.press("space", "space", "space")
            await pilot.pause()
            _check_step(app, 3)
            await pilot.press("r")
            await pilot.pause()
            _check_step(app, 0)
            await pilot.press("q")
            await pilot.pause()
        assert app.return_code == 0

    asyncio.run(run())


def test_demo_keys_give_way_to_a_text_field_and_to_dialogs():
    demo = load_demo("why-p2p-fails")

    async def run() -> None:
        app = _app(demo)
        async with app.run_test(size=(100, 30)) as pilot:
            await app.loaded()
            await pilot.press("space")  # the matrix
            await pilot.pause()
            screen = app.screen
            field = Input(id="test-field")
            await screen.mount(field)
            field.focus()
            await pilot.pause()
            await pilot.press("p", "r", "space", "q")
            await pilot.pause()
            assert field.value == "pr q"
            assert app.step_index == 1 and app.is_running
            # A clicker still steps.
            await pilot.press("pagedown")
            await pilot.pause()
            _check_step(app, 2)
            # Help is a dialog: q closes it, not the demo; the next step closes it too.
            await pilot.press("question_mark")
            await pilot.pause()
            assert not isinstance(app.screen, ModelScreen)
            await pilot.press("q")
            await pilot.pause()
            assert isinstance(app.screen, ModelScreen) and app.is_running
            await pilot.press("question_mark")
            await pilot.pause()
            await pilot.press("pagedown")
            await pilot.pause()
            _check_step(app, 3)

    asyncio.run(run())


def test_screen_keys_1_to_5_get_a_caption_bar_too():
    demo = load_demo("why-p2p-fails")

    async def run() -> None:
        app = _app(demo)
        async with app.run_test(size=(100, 30)) as pilot:
            await app.loaded()
            await pilot.press("4")
            await pilot.pause()
            await pilot.pause()
            assert app.current_mode == "whatif"
            assert demo.steps[0].spec.caption in _caption(app).plain
            await pilot.press("space")
            await pilot.pause()
            _check_step(app, 1)
            # The stepper by hand on a step without a scenario: its picker, then the demo goes on.
            await pilot.press("5")
            await pilot.pause()
            await pilot.pause()
            assert isinstance(app.screen, StepperScreen)
            assert demo.steps[1].spec.caption in _caption(app).plain
            await pilot.press("space")
            await pilot.pause()
            _check_step(app, 2)

    asyncio.run(run())


# -- autoplay --------------------------------------------------------------------------


def test_autoplay_steps_pauses_and_stops_at_the_end():
    demo = load_demo("why-p2p-fails")
    last = len(demo.steps) - 1

    async def run() -> None:
        # A long interval: the test drives the timer's tick itself.
        app = _app(demo, autoplay=600)
        async with app.run_test(size=(100, 30)) as pilot:
            await app.loaded()
            assert "autoplay 600 s" in _caption(app).plain
            await app.autoplay_tick()
            await pilot.pause()
            _check_step(app, 1)
            await pilot.press("p")
            await pilot.pause()
            assert app.paused
            assert "paused" in _caption(app).plain
            await app.autoplay_tick()
            await pilot.pause()
            _check_step(app, 1)  # paused: no step
            await pilot.press("p")
            await pilot.pause()
            assert not app.paused
            assert "autoplay 600 s" in _caption(app).plain
            for index in range(2, last + 1):
                await app.autoplay_tick()
                await pilot.pause()
                _check_step(app, index)
            await app.autoplay_tick()  # at the last step: it stops there
            await pilot.pause()
            _check_step(app, last)
            assert app.ended
            assert "the end" in _caption(app).plain
            await app.autoplay_tick()
            _check_step(app, last)
            await pilot.press("r")
            await pilot.pause()
            _check_step(app, 0)
            assert not app.ended
            assert "autoplay 600 s" in _caption(app).plain

    asyncio.run(run())


def test_autoplay_with_loop_wraps_to_the_first_step():
    demo = load_demo("why-p2p-fails")

    async def run() -> None:
        app = _app(demo, autoplay=600, loop=True)
        async with app.run_test(size=(100, 30)) as pilot:
            await app.loaded()
            for _ in range(len(demo.steps) - 1):
                await pilot.press("space")
            await pilot.pause()
            _check_step(app, len(demo.steps) - 1)
            await app.autoplay_tick()
            await pilot.pause()
            _check_step(app, 0)
            assert not app.ended

    asyncio.run(run())


def test_autoplay_timer_advances_by_itself():
    demo = load_demo("why-p2p-fails")

    async def run() -> None:
        app = _app(demo, autoplay=0.01)
        async with app.run_test(size=(100, 30)) as pilot:
            await app.loaded()
            # However slow the machine, the timer gets there: no bound on how long.
            while app.step_index == 0:
                await pilot.pause(0.02)
            await pilot.press("p")
            await pilot.pause()
            assert app.paused
            assert app.step_index >= 1

    asyncio.run(run())


def test_pause_without_autoplay_only_says_so():
    demo = load_demo("why-p2p-fails")

    async def run() -> None:
        app = _app(demo)
        async with app.run_test(size=(100, 30)) as pilot:
            await app.loaded()
            await pilot.press("p")
            await pilot.pause()
            assert not app.paused
            _check_step(app, 0)
            assert "autoplay" not in _caption(app).plain

    asyncio.run(run())


def test_autoplay_must_be_positive():
    demo = load_demo("why-p2p-fails")
    with pytest.raises(ValueError, match="positive"):
        make_demo_app(demo, autoplay=0)


# -- the presenter theme ---------------------------------------------------------------


def test_presenter_theme_is_the_default_and_has_no_dim_greys():
    demo = load_demo("why-p2p-fails")

    async def run() -> None:
        app = _app(demo)
        async with app.run_test(size=(100, 30)) as pilot:
            await app.loaded()
            assert app.theme == PRESENTER.name
            variables = app.get_css_variables()
            for name in ("text-muted", "foreground-muted"):
                # A solid colour (no alpha blend towards the background) and bright.
                assert variables[name].startswith("#"), variables[name]
                assert len(variables[name]) == 7
                red, green, blue = (int(variables[name][i : i + 2], 16) for i in (1, 3, 5))
                assert min(red, green, blue) >= 0xC0
            await pilot.press("d")
            assert app.theme == "textual-light"
            await pilot.press("d")
            assert app.theme == PRESENTER.name

    asyncio.run(run())


# -- captions are literal --------------------------------------------------------------


def test_markup_in_a_caption_and_title_renders_literally(tmp_path):
    path = _write_demo(
        tmp_path,
        """\
        title = "Talk [b]not bold[/b]"

        [[step]]
        topology = "switch-nvme"
        caption = "[bold red]literal[/] and the IDs [8086:1234] stay as written"
        """,
    )
    demo = load_demo(str(path))

    async def run() -> None:
        app = _app(demo)
        async with app.run_test(size=(100, 30)) as pilot:
            await app.loaded()
            await pilot.pause()
            text = _caption(app).plain
            assert "[bold red]literal[/] and the IDs [8086:1234] stay as written" in text
            assert "Talk [b]not bold[/b]" in text

    asyncio.run(run())


# -- bad demo files are refused at load, with the step -----------------------------------

GOOD_FIRST_STEP = """\
title = "A talk"

[[step]]
topology = "switch-nvme"
caption = "first"
"""


@pytest.mark.parametrize(
    ("second_step", "expected"),
    [
        ('select = "ee:00.0"', r"^step 2: select 'ee:00\.0'"),
        ('peer = "dead:beef"', r"^step 2: peer 'dead:beef'"),
        ('screen = "slides"', r"^step 2: unknown screen 'slides'"),
        ('screen = "stepper"', r"^step 2: the stepper screen needs a scenario"),
        ('stage = "gup"', r"^step 2: stage gup needs a scenario"),
        ('scenario = "cmb-read-bus-addr"\nstage = "warp"', r"^step 2: unknown stage 'warp'"),
        ('edits = [{ acs = "1b:00.0", set = ["RR"] }]', r"^step 2: .*no ACS capability"),
        ('edits = [{ acs = "19:00.0", set = ["XX"] }]', r"^step 2: acs set"),
        ('topology = "no-such-topology"', r"^step 2: "),
        ("wobble = 1", r"^step 2: unknown key"),
    ],
)
def test_a_bad_step_is_refused_with_its_number(tmp_path, second_step, expected):
    path = _write_demo(
        tmp_path, GOOD_FIRST_STEP + f'\n[[step]]\ncaption = "second"\n{second_step}\n'
    )
    with pytest.raises(DemoError, match=expected):
        load_demo(str(path))


def test_a_stage_the_scenario_never_reaches_is_refused(tmp_path):
    # eremoteio-dma-map stops at dma_map with -EREMOTEIO: it has no nvme stage.
    path = _write_demo(
        tmp_path,
        """\
        title = "A failing read"

        [[step]]
        topology = "multifunction-acs"
        screen = "stepper"
        scenario = "eremoteio-dma-map"
        stage = "gup"
        caption = "pinned"

        [[step]]
        stage = "nvme"
        caption = "never gets here"
        """,
    )
    with pytest.raises(DemoError, match=r"^step 2: scenario eremoteio-dma-map stops before"):
        load_demo(str(path))


def test_an_unknown_demo_names_the_bundled_ones():
    with pytest.raises(DemoError, match="why-p2p-fails"):
        load_demo("no-such-demo")


# -- the command line ------------------------------------------------------------------


def test_cli_refuses_a_bad_demo_with_exit_2_before_drawing(tmp_path, capsys):
    path = _write_demo(
        tmp_path, GOOD_FIRST_STEP + '\n[[step]]\ncaption = "second"\nselect = "ee:00.0"\n'
    )
    assert main(["demo", str(path)]) == 2
    captured = capsys.readouterr()
    assert captured.err.startswith("p2pview demo: step 2: select 'ee:00.0'")
    assert captured.out == ""  # nothing drawn


def test_cli_refuses_an_unknown_demo_and_a_bad_autoplay(capsys):
    assert main(["demo", "no-such-demo"]) == 2
    assert "p2pview demo: no demo 'no-such-demo'" in capsys.readouterr().err
    assert main(["demo", "--autoplay", "0"]) == 2
    assert "--autoplay" in capsys.readouterr().err


def test_cli_lists_the_bundled_demos(capsys):
    assert main(["demo", "--list"]) == 0
    out = capsys.readouterr().out
    for name, _path in bundled_demos():
        demo = load_demo(name)
        assert name in out
        assert demo.title in out
        assert f" {len(demo.steps)} " in out


def test_cli_demo_defaults():
    args = build_parser().parse_args(["demo"])
    assert args.name == "why-p2p-fails"
    assert args.autoplay is None and not args.loop and not args.list and not args.serve


# -- the browser -------------------------------------------------------------------------


@pytest.mark.parametrize("size", [(80, 24), (160, 45)])
def test_demo_starts_at_a_browser_size(size):
    """textual-serve starts the app at 80x24 and resizes it to the browser's window."""
    demo = load_demo("odirect-cmb-read")

    async def run() -> None:
        app = _app(demo)
        async with app.run_test(size=size) as pilot:
            await app.loaded()
            await pilot.press("space", "space")
            await pilot.pause()
            _check_step(app, 2)
            await pilot.resize_terminal(200, 50)
            await pilot.pause()
            _check_step(app, 2)

    asyncio.run(run())


def test_serve_builds_a_server_for_the_demo_command(tmp_path, monkeypatch):
    pytest.importorskip("textual_serve")
    args = build_parser().parse_args(["demo", "odirect-cmb-read", "--autoplay", "8", "--loop"])
    server = demo_server(args, "One O_DIRECT read")  # constructing it opens no port
    assert server.command.endswith("-m p2pview demo odirect-cmb-read --autoplay 8 --loop")
    assert server.public_url == "http://localhost:8000"
    # A demo file is passed by its absolute path.
    path = _write_demo(tmp_path, GOOD_FIRST_STEP)
    monkeypatch.chdir(tmp_path)
    args = build_parser().parse_args(["demo", "talk.toml", "--port", "8123"])
    server = demo_server(args, "A talk")
    assert str(path) in server.command
    assert server.public_url.endswith(":8123")


def _read_packets(proc: subprocess.Popen, wanted: bytes, deadline: float) -> bytes:
    """Read the web driver's packets until their data holds ``wanted``."""
    assert proc.stdout is not None
    selector = selectors.DefaultSelector()
    selector.register(proc.stdout, selectors.EVENT_READ)
    buffer = b""
    data = b""
    while wanted not in data:
        if time.monotonic() > deadline or proc.poll() is not None:
            break
        if not selector.select(timeout=0.5):
            continue
        chunk = os.read(proc.stdout.fileno(), 65536)
        if not chunk:
            break
        buffer += chunk
        while len(buffer) >= 5:
            size = int.from_bytes(buffer[1:5], "big")
            if len(buffer) < 5 + size:
                break
            if buffer[:1] == b"D":
                data += buffer[5 : 5 + size]
            buffer = buffer[5 + size :]
    return data


def test_demo_runs_under_the_web_driver_as_textual_serve_starts_it(tmp_path):
    """What textual-serve runs per browser tab: the web driver on pipes, nothing before it.

    Run from another directory, so that ``-m p2pview`` is the installed package
    (its CSS files and bundled demos included), not the checkout.
    """
    env = dict(os.environ)
    env.update(
        TEXTUAL_DRIVER="textual.drivers.web_driver:WebDriver",
        TEXTUAL_COLOR_SYSTEM="truecolor",
        COLUMNS="120",
        ROWS="36",
    )
    proc = subprocess.Popen(
        [sys.executable, "-m", "p2pview", "demo", "why-p2p-fails"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=env,
        cwd=tmp_path,
    )
    assert proc.stdin is not None and proc.stdout is not None
    try:
        # The server needs the prelude line first; any print before the app would break it.
        assert proc.stdout.readline() == b"__GANGLION__\n"
        # A generous guard against a hang, not a timing check.
        data = _read_packets(proc, b"Why does my P2P fail?", time.monotonic() + 120)
        assert b"Why does my P2P fail?" in data
        quit_packet = json.dumps({"type": "quit"}).encode()
        proc.stdin.write(b"M" + len(quit_packet).to_bytes(4, "big") + quit_packet)
        proc.stdin.flush()
        assert proc.wait(timeout=120) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
