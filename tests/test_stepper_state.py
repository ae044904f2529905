"""The I/O stepper's moves, on real traces, without an app: what each key shows next."""

import ast
from functools import cache
from pathlib import Path

import pytest

from p2pview.iosim import STAGES, Scenario, Trace, read_scenario
from p2pview.iosim.datapath import DataPathKernel
from p2pview.session import EngineConfig
from p2pview.sources import load_source
from p2pview.sources.bundled import bundled_scenario_path
from p2pview.tui import stepper_state
from p2pview.tui.analysis import Analysis, analyse, simulate_scenario
from p2pview.tui.presenters.stepper_panels import PANELS
from p2pview.tui.stepper_state import (
    PANEL_IDS,
    STAGE_PANEL,
    GoodRun,
    RunChange,
    StepperView,
    kept_index,
)


@cache
def _switch_nvme() -> Analysis:
    return analyse(load_source("switch-nvme"), EngineConfig())


@cache
def _run(name: str, kernel: str | None = None) -> tuple[Scenario, Trace]:
    """A bundled scenario simulated on switch-nvme as the stepper runs it (``k``: ``kernel``)."""
    path = bundled_scenario_path(name)
    assert path is not None
    scenario = read_scenario(path)
    if kernel is not None:
        scenario = scenario.replace(kernel=DataPathKernel.parse(kernel))
    return scenario, simulate_scenario(_switch_nvme(), scenario).trace


def _view(name: str = "cmb-read-bus-addr", stage: str | None = None) -> StepperView:
    scenario, trace = _run(name)
    view = StepperView().with_trace(scenario, "", trace)
    if stage is not None:
        moved = view.at_stage(stage)
        assert moved is not None
        view = moved
    return view


def _stages(view: StepperView) -> list[str]:
    assert view.trace is not None
    return [s.stage for s in view.trace.steps]


def test_the_moves_are_plain_python():
    tree = ast.parse(Path(stepper_state.__file__).read_text())
    modules = {n.module for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)}
    modules |= {a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
    assert not any(str(m).split(".")[0] in ("textual", "rich") for m in modules), modules


def test_every_stage_has_a_panel_and_the_tabs_are_the_panels_in_order():
    assert set(STAGE_PANEL) == set(STAGES)
    assert set(STAGE_PANEL.values()) <= set(PANEL_IDS)
    assert tuple(panel for panel, _title, _build in PANELS) == PANEL_IDS


def test_a_new_view_shows_nothing_and_no_key_moves_it():
    view = StepperView()
    assert view.trace is None and view.stage is None and not view.failed
    assert view.step(1) is view and view.first() is view and view.last() is view
    assert view.at_stage("gup") is None and view.failure() is None


def test_stepping_walks_the_stages_and_stops_at_either_end():
    view = _view()
    assert view.stage == "mmap" and view.at_first and not view.at_last
    assert view.step(1).stage == "ptes"
    assert view.step(-1) is view  # at the first stage already: nothing to redraw
    end = view.last()
    assert end.at_last and end.stage == _stages(view)[-1]
    assert end.step(1) is end
    assert end.step(-100).index == 0
    assert end.first().stage == "mmap"
    assert view.step(3).stage == "bio" and view.step(3).step(-1).stage == "gup"


def test_the_panel_follows_the_stage_when_the_stage_is_about_another_panel():
    view = _view()
    assert view.panel == "buffer"
    assert view.step(3).panel == "bios"  # bio
    at_map_sg = view.at_stage("map_sg")
    assert at_map_sg is not None and at_map_sg.panel == "sg"
    # A panel opened with v stays while the stages are about one panel...
    chosen = at_map_sg.next_panel()
    assert chosen.panel == "nvme"
    assert chosen.step(1).stage == "dma_map" and chosen.step(1).panel == "nvme"
    assert chosen.step(-1).panel == "bios"  # ...and gives way to a stage about another
    other = view.showing_panel("tlp")
    assert other.step(1).panel == "tlp"  # ptes: still the buffer's stages


def test_v_goes_round_the_panels():
    view = _view()
    seen = [view.panel]
    for _ in PANEL_IDS:
        view = view.next_panel()
        seen.append(view.panel)
    assert seen == [*PANEL_IDS, PANEL_IDS[0]]
    assert StepperView().next_panel().panel == PANEL_IDS[0]
    assert view.showing_panel(view.panel or "") is view


def test_where_it_failed_and_stages_never_reached():
    hang = _view("swiotlb-hang")
    assert hang.failed and hang.trace is not None
    assert hang.trace.result.stage == "dma_map"
    failure = hang.failure()
    assert failure is not None and failure.stage == "dma_map" and failure.at_last
    assert failure.panel == "sg"
    assert hang.at_stage("nvme") is None  # requeued forever: nvme is never reached
    clean = _view()
    assert not clean.failed and clean.failure() is None


def test_a_rerun_keeps_the_stage_or_ends_where_the_new_trace_stopped():
    at_gup = _view("swiotlb-hang", "gup").toggled_limits()
    scenario, trace = _run("swiotlb-hang", "6.2")
    change = (RunChange("kernel", "6.12", "6.2"),)
    again = at_gup.rerun(scenario, "a note", trace, at_gup.stage, change)
    assert again.stage == "gup" and again.panel == "buffer"
    assert again.limits_open  # the limits stay open across runs
    assert again.run_changes == change and again.origin == "a note"
    assert again.last_good == GoodRun(scenario, "a note", trace)
    # Under 6.1 the mmap fails (ENOENT): the trace stops there, and the rerun shows it.
    scenario, short = _run("swiotlb-hang", "6.1")
    assert [s.stage for s in short.steps] == ["mmap"]
    stopped = at_gup.rerun(scenario, "", short, "gup")
    assert stopped.stage == "mmap" and stopped.failed
    assert kept_index(trace, None) == 0
    assert kept_index(trace, "dma_map") == len(trace.steps) - 1
    assert kept_index(short, "dma_map") == 0


def test_a_demo_step_shows_its_trace_at_its_stage_clamped():
    scenario, trace = _run("cmb-read-bus-addr")
    view = StepperView().with_trace(scenario, "", trace, index=8)
    assert view.stage == "nvme" and view.panel == "nvme" and view.run_changes == ()
    assert StepperView().with_trace(scenario, "", trace, index=99).at_last


def test_a_failed_run_keeps_the_trace_only_while_it_is_the_apps():
    view = _view()
    shown = view.trace
    assert view.after_failure(shown) is view  # the app's run is still the one shown
    cleared = view.step(2).after_failure(None)  # an edit made it stale
    assert cleared.trace is None and cleared.scenario is None and cleared.stage is None
    assert cleared.after_failure(None) is cleared
    assert cleared.last_good is not None and cleared.last_good.trace is shown
    # An undo made it the app's run again: a later failure brings it back, at its step.
    back = cleared.after_failure(shown)
    assert back.trace is shown and back.stage == "gup"
    assert back.scenario is view.scenario


@pytest.mark.parametrize("name", ["cmb-read-bus-addr", "swiotlb-hang"])
def test_every_step_is_reached_by_its_stage(name):
    view = _view(name)
    for index, stage in enumerate(_stages(view)):
        moved = view.at_stage(stage)
        assert moved is not None and moved.index == index
        assert moved.panel == STAGE_PANEL[stage]
