"""The stepper's queue limits and the form's controller fields (issue 14, the TUI part).

What a kernel developer checks against ``/sys/block/nvme*/queue/*``: the limits
the run used and where each comes from, MDTS / SGL / sgl_threshold / pool size /
DMA mode edited in the form, a bad value named by its field, a DMA mode that
contradicts the topology said to be a what-if, and what a re-run changed.
"""

import asyncio
from dataclasses import replace

from textual.widgets import Static

from p2pview.tui.app import TuiArgs, make_app
from p2pview.tui.presenters.stepper_render import CHANGED
from p2pview.tui.screens.stepper import StepperScreen
from p2pview.tui.widgets.stepper_controller import ControllerPrompt
from p2pview.tui.widgets.stepper_form import ScenarioForm
from p2pview.tui.widgets.stepper_limits import LimitsView
from p2pview.tui.widgets.stepper_widgets import WidthView


def _app(source: str):
    app = make_app(TuiArgs(source))
    app.animation_level = "none"
    return app


async def _settle(app, pilot) -> None:
    await app.loaded()
    await pilot.pause()


async def _open(app, pilot) -> StepperScreen:
    await _settle(app, pilot)
    await pilot.press("5")
    await pilot.pause()
    screen = app.screen
    assert isinstance(screen, StepperScreen)
    return screen


async def _form(app, pilot, **fields: str) -> ScenarioForm:
    """Open the form and set fields by id suffix (``size="1M"`` sets ``#form-size``)."""
    await pilot.press("f")
    await pilot.pause()
    form = app.screen
    assert isinstance(form, ScenarioForm)
    for name, value in fields.items():
        form.query_one(f"#form-{name.replace('_', '-')}").value = value
    await pilot.pause()
    return form


async def _run_form(app, pilot, **fields: str) -> ScenarioForm:
    form = await _form(app, pilot, **fields)
    await pilot.press("ctrl+r")
    await _settle(app, pilot)
    return form


def _text(screen, selector: str) -> str:
    widget = screen.query_one(selector)
    if isinstance(widget, WidthView):
        return widget.plain
    assert isinstance(widget, Static)
    return str(widget.render())


def _error(form: ScenarioForm) -> str:
    return str(form.query_one("#form-error", Static).render())


def test_mdts_5_splits_a_1_mib_read_into_8_requests_and_the_limits_say_why():
    async def run() -> None:
        app = _app("switch-nvme")
        async with app.run_test(size=(120, 40)) as pilot:
            screen = await _open(app, pilot)
            await _run_form(app, pilot, size="1M", mdts="5")
            assert app.screen is screen
            trace = screen.trace
            assert trace is not None and trace.result.bytes == 1 << 20
            assert screen.goto("request")
            await pilot.pause()
            bios = _text(screen, "#view-bios")
            assert "requests: 8" in bios
            assert "128 KiB" in bios
            # The limits line atop the panel: the value sysfs would show.
            line = _text(screen, "#limits-bios")
            assert "max_hw_sectors_kb 128 · max_sectors_kb 128 · max_segments 33" in line
            assert len(line.splitlines()) == 1  # folded: one line, the requests stay in view
            # l opens it: each value with where it comes from.
            await pilot.press("l")
            await pilot.pause()
            table = _text(screen, "#limits-bios")
            assert "the controller's MDTS 5 (2^5 pages of 4 KiB; nvme_init_identify())" in table
            assert "max_hw_sectors / 8 + 1 = 33" in table
            assert "BLK_DEF_MAX_SECTORS_CAP (1280 KiB in Linux 6.12" in table
            assert "controller: MDTS 5 (128 KiB) · SGLs supported" in table
            # Every panel's copy opens together; l again folds them.
            assert "nvme_init_identify()" in _text(screen, "#limits-sg")
            await pilot.press("l")
            await pilot.pause()
            assert len(_text(screen, "#limits-sg").splitlines()) == 1

    asyncio.run(run())


def test_a_rerun_after_an_edit_lights_what_changed():
    async def run() -> None:
        app = _app("switch-nvme")
        async with app.run_test(size=(120, 40)) as pilot:
            screen = await _open(app, pilot)
            await _run_form(app, pilot, size="1M")
            assert screen.goto("request")
            assert "since the last run" not in _text(screen, "#limits-bios")
            await _run_form(app, pilot, mdts="5")
            # The re-run stays at nothing stale: what changed is said and lit.
            line = _text(screen, "#limits-bios")
            assert "since the last run: MDTS not given → 5 · requests 1 → 8" in line
            view = screen.query_one("#limits-bios", LimitsView)
            content = view.content_for(116)
            lit = [content.plain[s.start : s.end] for s in content.spans if s.style == CHANGED]
            assert "max_hw_sectors_kb 128" in lit
            await pilot.press("l")
            await pilot.pause()
            table = _text(screen, "#limits-bios")
            assert "(was 8192)" in table and "(was 128)" in table  # max_hw_sectors_kb, segments
            # Another I/O is not compared with this one.
            assert screen.run_bundled("readv-mixed")
            await _settle(app, pilot)
            assert "since the last run" not in _text(screen, "#limits-bios")

    asyncio.run(run())


def test_bad_controller_values_name_their_field():
    async def run() -> None:
        app = _app("switch-nvme")
        async with app.run_test(size=(120, 40)) as pilot:
            screen = await _open(app, pilot)
            cases = [
                ({"mdts": "300"}, "MDTS: 300 is out of range (from 0 to 255)"),
                ({"mdts": "five"}, "MDTS: expected a number, got 'five'"),
                ({"sgl_threshold": "-1"}, "sgl_threshold: -1 is out of range"),
                ({"pool": "5000"}, "p2pmem pool: 0x1388 is not a positive multiple of the page"),
                ({"pool": "8G"}, "p2pmem pool: 0x200000000 is out of range"),
                ({"provider": "ram", "pool": "1M"}, "p2pmem pool: the buffer is anonymous RAM"),
            ]
            for fields, message in cases:
                form = await _form(app, pilot, **fields)
                await pilot.press("ctrl+r")
                await pilot.pause()
                assert app.screen is form, fields
                assert _error(form).startswith(message), (fields, _error(form))
                await pilot.press("escape")
                await pilot.pause()
            assert app.screen is screen and screen.trace is None

    asyncio.run(run())


def test_a_pool_smaller_than_the_buffer_fails_the_mmap():
    async def run() -> None:
        app = _app("switch-nvme")
        async with app.run_test(size=(120, 40)) as pilot:
            screen = await _open(app, pilot)
            await _run_form(app, pilot, size="1M", pool="64K")
            trace = screen.trace
            assert trace is not None and trace.result.errno == "ENOMEM"
            assert "mmap() fails: errno ENOMEM" in _text(screen, "#stepper-status")
            await pilot.press("l")
            await pilot.pause()
            assert "p2pmem/size of 1a:00.0 64 KiB" in _text(screen, "#limits-bios")

    asyncio.run(run())


def test_the_dma_mode_against_the_topology_is_a_what_if():
    async def run() -> None:
        app = _app("switch-nvme")  # no translating IOMMU
        async with app.run_test(size=(120, 40)) as pilot:
            screen = await _open(app, pilot)
            form = await _form(app, pilot, size="1M")
            assert form.query_one("#form-dma").value == "topology"
            assert not form.query_one("#form-dma-note").display
            form.query_one("#form-dma").value = "iommu"
            await pilot.pause()
            note = _text(form, "#form-dma-note")
            assert note.startswith("what-if: the topology's IOMMU is off")
            await pilot.press("ctrl+r")
            await _settle(app, pilot)
            header = _text(screen, "#stepper-scenario")
            assert "what-if: the topology's IOMMU is off, but this scenario runs through a" in (
                header.replace("\n", " ")
            )
            assert "(the form's DMA field)" in header
            assert screen.goto("request")
            line = _text(screen, "#limits-bios")
            assert "max_hw_sectors_kb 128" in line
            await pilot.press("l")
            await pilot.pause()
            table = _text(screen, "#limits-bios")
            assert "dma_opt_mapping_size" in table and "131072" in table
            assert "dma_opt_mapping_size() = 128 KiB" in table
            assert "DMA iommu (as the scenario says)" in table
            assert "requests: 8" in _text(screen, "#view-bios")

    asyncio.run(run())


def test_the_topologys_iommu_decides_unless_the_form_says_otherwise():
    async def run() -> None:
        app = _app("switch-acs-iommu")  # a translating IOMMU
        async with app.run_test(size=(120, 40)) as pilot:
            screen = await _open(app, pilot)
            form = await _form(app, pilot, size="1M")
            assert form.query_one("#form-dma").value == "topology"
            await pilot.press("ctrl+r")
            await _settle(app, pilot)
            sc = screen.trace.context.scenario
            assert sc.dma.value == "iommu" and not sc.dma_given
            assert "what-if" not in _text(screen, "#stepper-scenario")
            await _run_form(app, pilot, dma="direct")
            assert screen.trace.context.scenario.dma.value == "direct"
            header = _text(screen, "#stepper-scenario").replace("\n", " ")
            assert "what-if: the topology's IOMMU translates DMA, but this scenario runs as" in (
                header
            )
            assert "since the last run: DMA iommu → direct" in _text(screen, "#limits-sg")

    asyncio.run(run())


def test_sgl_support_off_keeps_the_virt_boundary_on_7_2():
    async def run() -> None:
        app = _app("switch-nvme")
        async with app.run_test(size=(120, 40)) as pilot:
            screen = await _open(app, pilot)
            await _run_form(app, pilot, size="256K", kernel="7.2")
            wide = screen.query_one("#limits-sg", LimitsView)
            assert "virt_boundary_mask 0x0" in wide.content_for(160).plain
            await _run_form(app, pilot, sgl="no")
            assert screen.trace.context.scenario.nvme.sgl is False
            line = wide.content_for(160).plain
            assert "virt_boundary_mask 0xfff" in line
            assert "SGL supported → not supported" in line
            assert all(not c.use_sgl for c in screen.trace.steps[-1].state.commands)

    asyncio.run(run())


def test_c_edits_the_controller_of_a_bundled_io_and_reruns_it_at_its_stage():
    async def run() -> None:
        app = _app("switch-nvme")
        async with app.run_test(size=(120, 40)) as pilot:
            screen = await _open(app, pilot)
            assert screen.run_bundled("cmb-read-bus-addr")  # 128 KiB, [dma] mode = "direct"
            await _settle(app, pilot)
            assert screen.goto("request")
            assert "requests: 1" in _text(screen, "#view-bios")
            await pilot.press("c")
            await pilot.pause()
            prompt = app.screen
            assert isinstance(prompt, ControllerPrompt)
            # The fields start as the scenario gives them.
            assert prompt.query_one("#form-dma").value == "direct"
            assert prompt.query_one("#form-mdts").value == ""
            prompt.query_one("#form-mdts").value = "256"
            await pilot.press("ctrl+r")
            await pilot.pause()
            assert app.screen is prompt
            assert _error(prompt).startswith("MDTS: 256 is out of range (from 0 to 255)")
            prompt.query_one("#form-mdts").value = "3"
            await pilot.press("ctrl+r")
            await _settle(app, pilot)
            assert app.screen is screen
            trace = screen.trace
            assert trace.context.scenario.name == "cmb-read-bus-addr"
            assert trace.context.scenario.nvme.mdts == 3
            assert trace.steps[screen.step_index].stage == "request"
            assert "requests: 4" in _text(screen, "#view-bios")
            line = _text(screen, "#limits-bios")
            assert "max_hw_sectors_kb 32" in line
            assert "since the last run: MDTS not given → 3 · requests 1 → 4" in line
            # escape leaves the I/O as it is.
            await pilot.press("c")
            await pilot.pause()
            await pilot.press("escape")
            await pilot.pause()
            assert screen.trace is trace

    asyncio.run(run())


def test_the_pool_size_a_scenario_gives_each_provider_is_kept_unless_typed():
    from p2pview.iosim import BufferKind, BufferSegment, Iovec, Scenario
    from p2pview.model import BDF
    from p2pview.tui.widgets.stepper_controller import apply_controller, controller_values

    a, b = BDF.parse("0000:1a:00.0"), BDF.parse("0000:1b:00.0")
    scenario = Scenario(
        name="two pools",
        description="",
        source="switch-nvme",
        kernel=None,
        buffer=(
            BufferSegment(BufferKind.P2PMEM, 8192, provider=a, pool_size=1 << 20),
            BufferSegment(BufferKind.P2PMEM, 8192, provider=b, pool_size=2 << 20),
            BufferSegment(BufferKind.RAM, 4096),
        ),
        client=b,
        iovecs=(Iovec(0, 16384),),
    )
    shown = controller_values(scenario)
    assert shown.pool_size == "1M"
    same = apply_controller(scenario, replace(shown, mdts="5"), shown)
    assert [s.pool_size for s in same.buffer] == [1 << 20, 2 << 20, None]
    assert same.nvme.mdts == 5
    typed = apply_controller(scenario, replace(shown, pool_size="4M"), shown)
    assert [s.pool_size for s in typed.buffer] == [4 << 20, 4 << 20, None]


def _header_note(source: str, scenario) -> str:
    """The stepper header's note for ``scenario`` run on ``source`` (IOMMU as loaded)."""
    from p2pview.iosim import simulate
    from p2pview.session import open_session
    from p2pview.tui.presenters.stepper_render import scenario_header

    session = open_session(source)
    trace = simulate(scenario, session.topology, session.state)
    return scenario_header(trace, "6.12", iommu_on=False).plain.replace("\n", " ")


def test_the_stepper_says_where_its_dma_mode_is_set_and_names_no_cli_option(tmp_path):
    from p2pview.iosim import DmaMode, quick_scenario, read_scenario
    from p2pview.model import BDF
    from p2pview.sources.bundled import bundled_path

    # A scenario file's [dma] mode against a translating IOMMU.
    path = tmp_path / "direct.toml"
    path.write_text(
        'topology = "switch-acs-iommu"\nkernel = "6.12"\n'
        '[[buffer]]\nkind = "p2pmem"\nprovider = "0000:1a:00.0"\nsize = "64K"\n'
        '[target]\nclient = "0000:1b:00.0"\n[dma]\nmode = "direct"\n'
    )
    note = _header_note("switch-acs-iommu", read_scenario(path))
    assert "but this scenario runs as direct (the scenario file's [dma] mode; c changes it)" in note
    # The form's DMA field (a scenario with no file) asking for the IOMMU the topology lacks.
    provider, client = BDF.parse("1a:00.0"), BDF.parse("1b:00.0")
    form = quick_scenario("switch-nvme", provider, client, 65536, iommu=True)
    assert form.dma is DmaMode.IOMMU and not form.path
    note = _header_note("switch-nvme", form)
    assert "runs through a translating IOMMU (the form's DMA field); the verdicts keep" in note
    # A topology that does not say: dma-direct by default, and the key that changes it.
    bundled = bundled_path("switch-nvme")
    assert bundled is not None
    unknown = tmp_path / "unknown.toml"
    unknown.write_text(bundled.read_text().replace('iommu = "off"\n', ""))
    plain = quick_scenario(str(unknown), provider, client, 65536)
    note = _header_note(str(unknown), plain)
    assert "dma-direct assumed (c, then DMA, chooses one)" in note
    for text in (note, _header_note("switch-acs-iommu", read_scenario(path))):
        assert "--iommu" not in text
