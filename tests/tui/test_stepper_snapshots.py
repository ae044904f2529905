"""Snapshots of the I/O stepper at 120x40 (and the picker, and 80x24)."""

from p2pview.tui.app import TuiArgs, make_app


async def _open_stepper(pilot):
    """The stepper screen, once the source is loaded (no animations)."""
    app = pilot.app
    app.animation_level = "none"
    await app.loaded()
    await pilot.pause()
    await pilot.press("5")
    await pilot.pause()
    return app.screen


def _at_stage(scenario: str, stage: str):
    async def run_before(pilot) -> None:
        app = pilot.app
        screen = await _open_stepper(pilot)
        assert screen.run_bundled(scenario)
        await app.loaded()
        await pilot.pause()
        assert screen.goto(stage)
        # The footer recomposes after a refresh: let it settle before the picture.
        for _ in range(3):
            await pilot.pause()
        await pilot.wait_for_scheduled_animations()

    return run_before


def test_stepper_cmb_read_bus_addr_at_dma_map(snap_compare):
    app = make_app(TuiArgs("switch-nvme"))
    assert snap_compare(
        app, terminal_size=(120, 40), run_before=_at_stage("cmb-read-bus-addr", "dma_map")
    )


def test_stepper_readv_mixed_at_map_sg(snap_compare):
    app = make_app(TuiArgs("switch-nvme"))
    assert snap_compare(app, terminal_size=(120, 40), run_before=_at_stage("readv-mixed", "map_sg"))


def test_stepper_eremoteio_dma_map_at_80x24(snap_compare):
    app = make_app(TuiArgs("multifunction-acs"))
    assert snap_compare(
        app, terminal_size=(80, 24), run_before=_at_stage("eremoteio-dma-map", "dma_map")
    )


def test_stepper_picker(snap_compare):
    async def run_before(pilot) -> None:
        await pilot.app.loaded()
        await pilot.pause()
        await pilot.press("5")
        for _ in range(3):
            await pilot.pause()

    app = make_app(TuiArgs("switch-nvme"))
    assert snap_compare(app, terminal_size=(120, 40), run_before=run_before)


def test_stepper_queue_limits_after_an_mdts_edit_at_80x24(snap_compare):
    """A 1 MiB read re-run with MDTS 5: the limits opened, what the edit changed lit."""
    from p2pview.iosim import quick_scenario
    from p2pview.iosim.scenario import NvmeSetup
    from p2pview.model import BDF

    async def run_before(pilot) -> None:
        app = pilot.app
        screen = await _open_stepper(pilot)
        read = quick_scenario(
            "switch-nvme", BDF.parse("0000:1a:00.0"), BDF.parse("0000:1b:00.0"), 1 << 20
        )
        for scenario in (read, read.replace(nvme=NvmeSetup(mdts=5))):
            screen.run_scenario(scenario)
            await app.workers.wait_for_complete()
            await pilot.pause()
        assert screen.goto("request")
        await pilot.press("l")
        for _ in range(3):
            await pilot.pause()
        await pilot.wait_for_scheduled_animations()

    app = make_app(TuiArgs("switch-nvme"))
    assert snap_compare(app, terminal_size=(80, 24), run_before=run_before)
