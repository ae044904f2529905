"""The I/O stepper screen: scenarios run and step, the form, highlighting, errors, scale."""

import asyncio

import pytest
from textual.widgets import OptionList, Static, TabbedContent
from tuikit import edit

from p2pview.iosim import (
    BufferKind,
    BufferSegment,
    Iovec,
    Scenario,
    quick_scenario,
    read_scenario,
    simulate,
)
from p2pview.model import BDF
from p2pview.session import session_for
from p2pview.sources import Loaded, load_source
from p2pview.sources.bundled import bundled_scenario_path
from p2pview.tui.analysis import set_iommu
from p2pview.tui.app import TuiArgs, make_app
from p2pview.tui.presenters.stepper_changes import step_changes
from p2pview.tui.presenters.stepper_panels import PANELS, path_tree
from p2pview.tui.presenters.stepper_render import CHANGED, CURRENT, pipeline
from p2pview.tui.presenters.stepper_scenarios import scenario_choices
from p2pview.tui.screens.stepper import StepperScreen
from p2pview.tui.widgets.stepper_form import KernelPrompt, ScenarioForm
from p2pview.tui.widgets.stepper_widgets import WidthView


def _app(source: str):
    app = make_app(TuiArgs(source))
    # Pilot waits for the tab underline's slide after each key; a user does not.
    app.animation_level = "none"
    return app


async def _open(app, pilot) -> StepperScreen:
    await app.loaded()
    await pilot.pause()
    await pilot.press("5")
    await pilot.pause()
    screen = app.screen
    assert isinstance(screen, StepperScreen)
    return screen


async def _settle(app, pilot) -> None:
    await app.loaded()
    await pilot.pause()


async def _pick(app, pilot, screen: StepperScreen, name: str) -> None:
    """Highlight scenario ``name`` in the picker, run it with enter and wait for its trace."""
    picker = screen.query_one("#stepper-choices", OptionList)
    picker.highlighted = picker.get_option_index(name)
    await pilot.press("enter")
    await _settle(app, pilot)


def _text(screen: StepperScreen, selector: str) -> str:
    widget = screen.query_one(selector)
    if isinstance(widget, WidthView):
        return widget.plain
    assert isinstance(widget, Static)
    return str(widget.render())


def _own_scenarios(topology: str) -> list[str]:
    topo = load_source(topology).topology
    return [c.name for c in scenario_choices(topo) if c.fits]


def test_picker_lists_the_topologys_scenarios_first():
    topo = load_source("switch-nvme").topology
    choices = scenario_choices(topo)
    fits = [c.name for c in choices if c.fits]
    assert fits[: len(fits)] == [c.name for c in choices[: len(fits)]]
    assert {"cmb-read-bus-addr", "readv-mixed", "adjacent-cmbs"} <= set(fits)
    other = {c.name: c for c in choices if not c.fits}
    assert not other["eremoteio-dma-map"].runnable  # 01:00.0 has no CMB here, 02:00.0 is absent
    assert "multifunction-acs" in other["eremoteio-dma-map"].note


@pytest.mark.parametrize("topology", ["switch-nvme", "multifunction-acs", "switch-acs-iommu"])
def test_every_bundled_scenario_steps_to_the_end_and_back(topology):
    names = _own_scenarios(topology)
    assert names

    async def run() -> None:
        app = _app(topology)
        async with app.run_test(size=(120, 40)) as pilot:
            screen = await _open(app, pilot)
            picker = screen.query_one("#stepper-choices", OptionList)
            assert picker.option_count >= len(names)
            for name in names:
                assert screen.run_bundled(name), name
                await _settle(app, pilot)
                trace = screen.trace
                assert trace is not None and trace.context.scenario.name == name
                last = len(trace.steps) - 1
                for _ in range(last):
                    await pilot.press("right")
                assert screen.step_index == last
                assert screen.check_action("step", (1,)) is None
                for _ in range(last):
                    await pilot.press("left")
                assert screen.step_index == 0
                assert screen.check_action("step", (-1,)) is None
                # Every panel builds at every step, narrow and wide.
                for index in range(len(trace.steps)):
                    changes = step_changes(trace, index)
                    for _panel, _title, build in PANELS:
                        for width in (40, 76, 150):
                            build(trace, index, changes, width)
                await pilot.press("s")
                await pilot.pause()

    asyncio.run(run())


def test_enter_in_the_picker_runs_the_highlighted_scenario():
    async def run() -> None:
        app = _app("switch-nvme")
        async with app.run_test(size=(80, 24)) as pilot:
            screen = await _open(app, pilot)
            await _pick(app, pilot, screen, "readv-mixed")
            assert screen.trace is not None
            assert screen.trace.context.scenario.name == "readv-mixed"
            assert "mmap" in _text(screen, "#stepper-pipeline")
            await pilot.press("n", "n", "b")
            assert screen.step_index == 1
            await pilot.press("end")
            assert _text(screen, "#stepper-status").endswith("preadv returns 16384")
            await pilot.press("home")
            assert screen.step_index == 0

    asyncio.run(run())


def test_the_form_builds_and_runs_a_trace():
    async def run() -> None:
        app = _app("switch-nvme")
        async with app.run_test(size=(120, 40)) as pilot:
            screen = await _open(app, pilot)
            await pilot.press("f")
            await pilot.pause()
            form = app.screen
            assert isinstance(form, ScenarioForm)
            # The default pair is the selected provider and a BUS_ADDR peer.
            assert form.query_one("#form-provider").value == "0000:1a:00.0"
            assert form.query_one("#form-client").value == "0000:1b:00.0"
            form.query_one("#form-size").value = "nonsense"
            await pilot.press("ctrl+r")
            await pilot.pause()
            assert app.screen is form
            assert "size and offset" in str(form.query_one("#form-error").render())
            form.query_one("#form-size").value = "64K"
            form.query_one("#form-op").value = "write"
            await pilot.press("ctrl+r")
            await _settle(app, pilot)
            assert app.screen is screen
            trace = screen.trace
            assert trace is not None
            sc = trace.context.scenario
            assert sc.write and sc.io_length == 64 * 1024
            assert str(sc.client) == "0000:1b:00.0"
            assert trace.result.outcome == "ok"
            assert "built in the form" in _text(screen, "#stepper-scenario")
            await pilot.press("end")
            assert "pwrite returns 65536" in _text(screen, "#stepper-status")

    asyncio.run(run())


def test_the_form_runs_a_ram_buffer_to_a_non_nvme_function():
    async def run() -> None:
        app = _app("switch-nvme")
        async with app.run_test(size=(120, 40)) as pilot:
            screen = await _open(app, pilot)
            await pilot.press("f")
            await pilot.pause()
            form = app.screen
            form.query_one("#form-provider").value = "ram"
            form.query_one("#form-client").value = "0000:1d:00.0"  # the ConnectX-5 NIC
            await pilot.press("ctrl+r")
            await _settle(app, pilot)
            trace = screen.trace
            assert trace is not None
            assert trace.context.scenario.target.value == "other"
            assert trace.result.outcome == "ok"
            screen.goto("nvme")
            await pilot.pause()
            assert "not an nvme queue" in _text(screen, "#view-nvme")

    asyncio.run(run())


def test_the_current_stage_and_what_changed_are_lit():
    async def run() -> None:
        app = _app("switch-nvme")
        async with app.run_test(size=(120, 40)) as pilot:
            screen = await _open(app, pilot)
            assert screen.run_bundled("cmb-read-bus-addr")
            await _settle(app, pilot)
            assert screen.goto("dma_map")
            await pilot.pause()
            trace = screen.trace
            content = pipeline(trace, screen.step_index)
            lit = [content.plain[s.start : s.end] for s in content.spans if s.style == CURRENT]
            assert lit == ["dma_map"]
            tabs = screen.query_one("#stepper-panels", TabbedContent)
            assert tabs.active == "panel-sg"
            view = screen.query_one("#view-sg", WidthView)
            sg = view.content_for(116)
            changed = [sg.plain[s.start : s.end] for s in sg.spans if s.style == CHANGED]
            assert any("0x383fe0000000" in text for text in changed)
            assert "SG_DMA_BUS_ADDRESS" in sg.plain
            assert "bus addresses 0x383fe0000000-0x383fe001ffff" in sg.plain
            assert tabs.get_tab("panel-sg").has_class("-changed")
            assert not tabs.get_tab("panel-tlp").has_class("-changed")
            # One step back (map_sg) the entry has no DMA address yet.
            await pilot.press("left")
            assert "SG_DMA_BUS_ADDRESS" not in view.content_for(116).plain
            # The device DMA step draws the TLPs turning at the switch.
            assert screen.goto("device_dma")
            await pilot.pause()
            assert tabs.active == "panel-tlp"
            tlp = _text(screen, "#view-tlp")
            assert "18:00.0 Switch Upstream Port  ◆ the TLPs turn here" in tlp
            assert "1b:00.0 nvme client  ▲" in tlp
            assert "1a:00.0 nvme provider  ▼" in tlp

    asyncio.run(run())


def test_v_opens_the_panel_after_the_one_shown_however_it_was_opened():
    """The stage's panel, v's or a clicked tab's: v goes on from the one shown."""

    async def run() -> None:
        app = _app("switch-nvme")
        async with app.run_test(size=(120, 40)) as pilot:
            screen = await _open(app, pilot)
            assert screen.run_bundled("cmb-read-bus-addr")
            await _settle(app, pilot)
            assert screen.goto("map_sg")
            await pilot.pause()
            tabs = screen.query_one("#stepper-panels", TabbedContent)
            assert tabs.active == "panel-sg"
            await pilot.press("v")
            assert tabs.active == "panel-nvme"
            # dma_map is about the scatterlist too: the panel opened with v stays.
            await pilot.press("right")
            assert screen.trace.steps[screen.step_index].stage == "dma_map"
            assert tabs.active == "panel-nvme"
            await pilot.click("#--content-tab-panel-bios")
            await pilot.pause()
            assert tabs.active == "panel-bios"
            await pilot.press("v")
            assert tabs.active == "panel-sg"
            # The nvme stage is about another panel: its own opens.
            await pilot.press("right")
            assert tabs.active == "panel-nvme"

    asyncio.run(run())


def test_the_error_stage_of_eremoteio_dma_map():
    async def run() -> None:
        app = _app("multifunction-acs")
        async with app.run_test(size=(120, 40)) as pilot:
            screen = await _open(app, pilot)
            assert screen.run_bundled("eremoteio-dma-map")
            await _settle(app, pilot)
            text = _text(screen, "#stepper-pipeline")
            assert "dma_map ✗ EREMOTEIO" in text
            assert "nvme (skipped)" in text and "device_dma (skipped)" in text
            assert screen.check_action("failure", ()) is True
            await pilot.press("e")
            assert screen.trace.steps[screen.step_index].stage == "dma_map"
            assert "pread returns -1, errno EREMOTEIO (at dma_map)" in _text(
                screen, "#stepper-status"
            )
            assert "NOT_SUPPORTED" in _text(screen, "#stepper-scenario")
            assert "dma_map failed: EREMOTEIO (BLK_STS_TARGET)" in _text(screen, "#view-sg")
            events = _text(screen, "#stepper-events-text")
            assert "✗ dma_map_sgtable() -> dma_direct_map_sg()" in events
            assert "dmesg: nvme 0000:02:00.0: cannot be used for peer-to-peer DMA" in events
            # Before the error the application sees nothing yet.
            await pilot.press("home")
            assert "pread() in flight" in _text(screen, "#stepper-status")

    asyncio.run(run())


def test_eremoteio_at_gup_marks_the_refused_page():
    async def run() -> None:
        app = _app("multifunction-acs")
        async with app.run_test(size=(120, 40)) as pilot:
            screen = await _open(app, pilot)
            assert screen.run_bundled("eremoteio-gup")
            await _settle(app, pilot)
            await pilot.press("end")
            assert screen.trace.steps[screen.step_index].stage == "gup"
            assert "gup ✗ EREMOTEIO" in _text(screen, "#stepper-pipeline")
            buffer = _text(screen, "#view-buffer")
            assert "✗" in buffer
            assert "GUP refused page 0 of the I/O: EREMOTEIO" in buffer
            assert "bio" in _text(screen, "#stepper-pipeline")  # unreached, still listed

    asyncio.run(run())


def test_a_kernel_override_reruns_at_the_same_stage():
    async def run() -> None:
        app = _app("switch-nvme")
        async with app.run_test(size=(120, 40)) as pilot:
            screen = await _open(app, pilot)
            assert screen.run_bundled("readv-mixed")
            await _settle(app, pilot)
            assert screen.goto("map_sg")
            await pilot.press("k")
            await pilot.pause()
            prompt = app.screen
            assert isinstance(prompt, KernelPrompt)
            prompt.query_one("#kernel-input").value = "6.17"
            await pilot.press("enter")
            await _settle(app, pilot)
            trace = screen.trace
            assert trace.context.datapath.title == "6.17"
            assert trace.steps[screen.step_index].stage == "map_sg"
            # still on the stage's own panel, not flipped back to Buffer
            await pilot.pause()
            assert screen.query_one("#stepper-panels", TabbedContent).active == "panel-sg"
            assert "DMA segments" in _text(screen, "#view-sg")
            assert "this I/O runs under kernel 6.17, verdicts and data path" in _text(
                screen, "#stepper-scenario"
            )

    asyncio.run(run())


def test_what_if_edits_rerun_the_io():
    async def run() -> None:
        app = _app("switch-nvme")
        async with app.run_test(size=(120, 40)) as pilot:
            screen = await _open(app, pilot)
            assert screen.run_bundled("cmb-read-bus-addr")
            await _settle(app, pilot)
            assert screen.goto("dma_map")
            first = screen.trace
            # Turn ACS redirect on at the switch's downstream ports: the pair is no
            # longer BUS_ADDR, and the stepper re-runs the same I/O.
            edit(app, set_iommu(True))
            await _settle(app, pilot)
            assert screen.trace is not first
            assert screen.trace.steps[screen.step_index].stage == "dma_map"
            assert "BUS_ADDR 4" not in _text(screen, "#stepper-scenario")

    asyncio.run(run())


def test_a_256_mib_trace_steps_through_and_summarises_its_requests():
    """A big I/O: every stage can be stepped to and the sg table folds the requests.

    How long this takes is measured in ``benchmarks/bench_tui.py``, not here.
    """

    async def run() -> None:
        app = _app("switch-nvme")
        async with app.run_test(size=(120, 40)) as pilot:
            screen = await _open(app, pilot)
            provider, client = BDF.parse("0000:1a:00.0"), BDF.parse("0000:1b:00.0")
            scenario = quick_scenario("switch-nvme", provider, client, 256 << 20)
            screen.run_scenario(scenario)
            await _settle(app, pilot)
            trace = screen.trace
            assert trace is not None and trace.result.bytes == 256 << 20
            for _ in range(len(trace.steps) - 1):
                screen.action_step(1)
                await pilot.pause()
            assert screen.step_index == len(trace.steps) - 1
            screen.goto("map_sg")
            await pilot.pause()
            sg = _text(screen, "#view-sg")
            assert "… 201 more requests (201 entries) mapped the same way" in sg
            assert "205 requests, 205 entries in all" in sg

    asyncio.run(run())


def test_the_panels_of_a_1_gib_scattered_readv_fold_262143_entries():
    loaded = load_source("switch-nvme")
    size = 1 << 30
    scenario = Scenario(
        name="1 GiB of scattered RAM",
        description="",
        source="switch-nvme",
        kernel=None,
        buffer=(BufferSegment(BufferKind.RAM, size, layout="scattered"),),
        client=BDF.parse("0000:1b:00.0"),
        iovecs=(Iovec(0, size),),
    )
    session = session_for(loaded)
    trace = simulate(scenario, session.topology, session.state)
    assert trace.result.bytes == size
    for index in range(len(trace.steps)):
        changes = step_changes(trace, index)
        for _panel, _title, build in PANELS:
            build(trace, index, changes, 116)
        pipeline(trace, index)
    sg = PANELS[2][2](trace, 7, step_changes(trace, 7), 116).plain
    assert "2048 requests, 262143 entries in all" in sg
    assert "… 112 more entries" in sg


def test_generated_2000_opens_and_runs_the_form():
    async def run() -> None:
        app = _app("generated:2000")
        async with app.run_test(size=(120, 40)) as pilot:
            screen = await _open(app, pilot)
            title = _text(screen, "#stepper-picker-title")
            assert "build one in the form" in title
            await pilot.press("f")
            await pilot.pause()
            form = app.screen
            assert isinstance(form, ScenarioForm)
            await pilot.press("ctrl+r")
            await pilot.pause()
            if app.screen is form:
                # The synthetic providers record no BAR to hold their p2pmem: the form
                # says so at once; a RAM buffer runs.
                assert "no memory BAR" in str(form.query_one("#form-error").render())
                form.query_one("#form-provider").value = "ram"
                await pilot.press("ctrl+r")
            await _settle(app, pilot)
            assert screen.trace is not None
            assert screen.trace.result.outcome == "ok"
            await pilot.press("end")
            await pilot.press("home")
            assert screen.step_index == 0

    asyncio.run(run())


def test_a_scenario_that_cannot_run_here_says_why():
    async def run() -> None:
        app = _app("switch-nvme")
        async with app.run_test(size=(120, 40)) as pilot:
            screen = await _open(app, pilot)
            assert not screen.run_bundled("eremoteio-dma-map")
            # A scenario naming a function without p2pmem: the error is shown, no crash.
            bad = quick_scenario(
                "switch-nvme", BDF.parse("0000:1c:00.0"), BDF.parse("0000:1b:00.0"), 4096
            )
            screen.run_scenario(bad)
            await _settle(app, pilot)
            assert screen.trace is None
            assert "has no p2pmem" in _text(screen, "#stepper-choice-detail")
            assert screen.check_action("step", (1,)) is None
            # After a good run, a failing one leaves the good trace one escape away.
            assert screen.run_bundled("cmb-read-bus-addr")
            await _settle(app, pilot)
            good = screen.trace
            screen.run_scenario(bad)
            await _settle(app, pilot)
            assert not screen.showing_steps
            assert "has no p2pmem" in _text(screen, "#stepper-choice-detail")
            await pilot.press("escape")
            assert screen.showing_steps and screen.trace is good
            await pilot.press("right")
            assert screen.step_index == 1

    asyncio.run(run())


def test_device_names_are_not_markup():
    topo = load_source("switch-nvme").topology
    client = BDF.parse("0000:1b:00.0")
    topo = topo.with_device(client, label="Evil [bold]name[/bold] [8086:1234]")
    provider = BDF.parse("0000:1a:00.0")
    scenario = quick_scenario("switch-nvme", provider, client, 4096)
    loaded = load_source("switch-nvme")
    session = session_for(Loaded(topo, loaded.kind, loaded.report))
    trace = simulate(scenario, topo, session.state)
    lines = path_tree(trace, [client, provider], None, None)
    text = "\n".join(line.plain for line in lines)
    assert "(Evil [bold]name[/bold] [8086:1234])" in text


def test_the_command_palette_runs_scenarios():
    async def run() -> None:
        app = _app("multifunction-acs")
        async with app.run_test(size=(120, 40)) as pilot:
            screen = await _open(app, pilot)
            commands = {c.title: c for c in app.get_system_commands(screen)}
            assert "I/O: build a scenario (f)" in commands
            commands["I/O: run eremoteio-gup"].callback()
            await _settle(app, pilot)
            assert screen.trace.context.scenario.name == "eremoteio-gup"
            titles = [c.title for c in app.get_system_commands(screen)]
            assert "I/O: where it failed (e) ✗ EREMOTEIO" in titles

    asyncio.run(run())


def test_panels_of_stages_not_reached_yet_say_what_will_fill_them():
    session = session_for(load_source("switch-nvme"))
    path = bundled_scenario_path("cmb-read-bus-addr")
    assert path is not None
    trace = simulate(read_scenario(path), session.topology, session.state)
    texts = {
        panel: build(trace, 0, step_changes(trace, 0), 116).plain for panel, _, build in PANELS
    }
    assert "bios: none yet" in texts["bios"]
    assert "bio building turns the pinned pages into bvecs" in texts["bios"]
    assert "scatterlist: none yet" in texts["sg"]
    assert "blk_rq_map_sg() fills one scatterlist per request" in texts["sg"]


def test_the_simulation_worker_leaves_the_app_state_to_the_ui_thread():
    """The worker simulates; only the UI thread gives the app the new run (no race with edits)."""
    import threading

    adopted_on: list[str] = []

    async def run() -> None:
        app = _app("switch-nvme")
        async with app.run_test(size=(80, 24)) as pilot:
            screen = await _open(app, pilot)
            app.watch(
                app,
                "stepper_run",
                lambda _run: adopted_on.append(threading.current_thread().name),
                init=False,
            )
            await _pick(app, pilot, screen, "readv-mixed")
            run = app.stepper_run
            assert run is not None and run.trace is screen.trace
            assert run.scenario.name == "readv-mixed"

    asyncio.run(run())
    assert adopted_on == [threading.main_thread().name]
