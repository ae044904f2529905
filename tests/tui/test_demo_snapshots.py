"""Snapshots of demo mode's caption bar: 100x30 (a laptop) and 200x50 (a projector)."""

from p2pview.tui.demo import load_demo, make_demo_app


def _at_step(steps: int):
    async def run_before(pilot) -> None:
        app = pilot.app
        app.animation_level = "none"
        await app.loaded()
        for _ in range(steps):
            await pilot.press("space")
        # The footer recomposes after a screen change: let it settle before the picture.
        for _ in range(3):
            await pilot.pause()
        await pilot.wait_for_scheduled_animations()

    return run_before


def test_demo_caption_on_explain_at_100x30(snap_compare):
    app = make_demo_app(load_demo("why-p2p-fails"))
    assert snap_compare(app, terminal_size=(100, 30), run_before=_at_step(2))


def test_demo_caption_on_topology_at_100x30(snap_compare):
    app = make_demo_app(load_demo("why-p2p-fails"))
    assert snap_compare(app, terminal_size=(100, 30), run_before=_at_step(0))


def test_demo_caption_on_stepper_at_200x50(snap_compare):
    app = make_demo_app(load_demo("odirect-cmb-read"))
    assert snap_compare(app, terminal_size=(200, 50), run_before=_at_step(6))
