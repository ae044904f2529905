"""What the I/O stepper shows, as one immutable value, and the moves between values.

:class:`StepperView` holds the trace on screen with its scenario and origin
note, the step shown, the panel open, whether the queue limits are open, what
differs from the run before, and the last run that succeeded. Every key of the
stepper is a pure function from one view to the next (step by n, first, last,
the failing stage, a new trace that keeps the stage, the next panel, the limits
folded or open); the screen holds the view in a reactive attribute and redraws
from the difference between the old value and the new.

Plain Python (no Textual), so the moves are tested without an app.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from p2pview.iosim import Scenario, Trace

#: The stepper's panels, in the order of their tabs (``v`` goes round them).
PANEL_IDS = ("buffer", "bios", "sg", "nvme", "tlp")

#: The panel each stage is about (it opens when the stepper reaches the stage).
STAGE_PANEL = {
    "mmap": "buffer",
    "ptes": "buffer",
    "gup": "buffer",
    "bio": "bios",
    "split": "bios",
    "request": "bios",
    "map_sg": "sg",
    "dma_map": "sg",
    "nvme": "nvme",
    "device_dma": "tlp",
    "completion": "sg",
    "munmap": "buffer",
}


def stage_panel(stage: str) -> str:
    """The panel ``stage`` is about (the buffer for a stage no panel is about)."""
    return STAGE_PANEL.get(stage, "buffer")


@dataclass(frozen=True)
class RunChange:
    """One fact that differs from the run before."""

    what: str
    before: str
    after: str


@dataclass(frozen=True)
class GoodRun:
    """A run that succeeded: its scenario, its origin note and its trace."""

    scenario: Scenario
    origin: str
    trace: Trace


@dataclass(frozen=True, eq=False)
class StepperView:
    """What the stepper shows. Immutable: each method returns the next view.

    Compared by identity (``eq=False``): a move that changes nothing returns
    the view itself, so that assigning it redraws nothing; comparing two traces
    field by field would cost more than drawing them.
    """

    #: The scenario of the trace shown, and its origin note ("written for ...").
    scenario: Scenario | None = None
    origin: str = ""
    #: The trace on screen (``None``: none yet, or the last run failed with nothing before).
    trace: Trace | None = None
    #: The step on screen, counted from 0.
    index: int = 0
    #: The panel open (one of :data:`PANEL_IDS`; ``None`` before the tabs say).
    panel: str | None = None
    #: The queue limits opened into their table (every panel's copy; kept across runs).
    limits_open: bool = False
    #: What differs from the run before, when the same I/O ran again.
    run_changes: tuple[RunChange, ...] = ()
    #: The last run that succeeded: the one shown, or the one a failed re-run
    #: hid (it comes back when the app's run is again its; a re-run is compared with it).
    last_good: GoodRun | None = None

    # -- what the keys read ----------------------------------------------------------

    @property
    def stage(self) -> str | None:
        """The stage shown (``None`` without a trace)."""
        if self.trace is None:
            return None
        return self.trace.steps[self.index].stage

    @property
    def at_first(self) -> bool:
        """The first step is shown (or no trace)."""
        return self.index == 0

    @property
    def at_last(self) -> bool:
        """The last step the trace reached is shown."""
        return self.trace is not None and self.index == len(self.trace.steps) - 1

    @property
    def failed(self) -> bool:
        """The I/O shown stopped at a stage (an errno, or a hang)."""
        return self.trace is not None and self.trace.result.stage is not None

    # -- moving through the steps ----------------------------------------------------

    def at(self, index: int) -> StepperView:
        """Step ``index`` (clamped to the trace).

        The panel follows the stage only when the stage is about another panel
        than the step before: a panel the user opened with ``v`` stays open
        while the stepper walks the stages of one panel.
        """
        trace = self.trace
        if trace is None:
            return self
        index = max(0, min(len(trace.steps) - 1, index))
        if index == self.index:
            return self
        wanted = stage_panel(trace.steps[index].stage)
        before = stage_panel(trace.steps[self.index].stage)
        panel = wanted if wanted != before else self.panel
        return replace(self, index=index, panel=panel)

    def step(self, delta: int) -> StepperView:
        """``delta`` stages forward (back when negative), clamped."""
        return self.at(self.index + delta)

    def first(self) -> StepperView:
        """The first stage (mmap)."""
        return self.at(0)

    def last(self) -> StepperView:
        """The last stage the trace reached."""
        return self.at(len(self.trace.steps) - 1) if self.trace is not None else self

    def at_stage(self, stage: str | None) -> StepperView | None:
        """The step of ``stage`` (``None`` when the trace did not reach it)."""
        if self.trace is None or stage is None:
            return None
        for i, step in enumerate(self.trace.steps):
            if step.stage == stage:
                return self.at(i)
        return None

    def failure(self) -> StepperView | None:
        """The stage where the I/O stopped (``None`` when it completed every stage)."""
        return self.at_stage(self.trace.result.stage) if self.trace is not None else None

    # -- panels and limits -----------------------------------------------------------

    def next_panel(self) -> StepperView:
        """The next panel, round the tabs (the first one after none)."""
        current = PANEL_IDS.index(self.panel) if self.panel in PANEL_IDS else -1
        return replace(self, panel=PANEL_IDS[(current + 1) % len(PANEL_IDS)])

    def showing_panel(self, panel: str) -> StepperView:
        """The panel the user opened some other way (a click on its tab, focus in it)."""
        return self if panel == self.panel else replace(self, panel=panel)

    def toggled_limits(self) -> StepperView:
        """The queue limits opened into their table, or folded to one line."""
        return replace(self, limits_open=not self.limits_open)

    # -- runs ------------------------------------------------------------------------

    def with_trace(
        self,
        scenario: Scenario,
        origin: str,
        trace: Trace,
        index: int = 0,
        run_changes: tuple[RunChange, ...] = (),
    ) -> StepperView:
        """A new trace at step ``index`` (clamped), the panel of its stage open.

        It becomes the last good run; the limits stay open or folded.
        """
        index = max(0, min(index, len(trace.steps) - 1))
        return replace(
            self,
            scenario=scenario,
            origin=origin,
            trace=trace,
            index=index,
            panel=stage_panel(trace.steps[index].stage),
            run_changes=run_changes,
            last_good=GoodRun(scenario, origin, trace),
        )

    def rerun(
        self,
        scenario: Scenario,
        origin: str,
        trace: Trace,
        keep_stage: str | None,
        run_changes: tuple[RunChange, ...] = (),
    ) -> StepperView:
        """A new trace at ``keep_stage`` (the stage shown before a re-run).

        A stage the new trace never reached gives its last step (where it
        stopped); no stage to keep gives the first step.
        """
        return self.with_trace(scenario, origin, trace, kept_index(trace, keep_stage), run_changes)

    def after_failure(self, app_trace: Trace | None) -> StepperView:
        """A run failed: the last good run if it is still the app's run, else no trace.

        ``app_trace`` is the trace of the app's I/O when it ran on the analysis
        shown now (``None`` when an edit made it stale).
        """
        good = self.last_good
        if good is not None and app_trace is not None and good.trace is app_trace:
            if self.trace is good.trace:
                return self
            return replace(self, scenario=good.scenario, origin=good.origin, trace=good.trace)
        if self.trace is None:
            return self
        return replace(self, scenario=None, origin="", trace=None)


def kept_index(trace: Trace, stage: str | None) -> int:
    """The step of ``stage`` in ``trace``: its last step when it never got there, 0 for none."""
    if stage is None:
        return 0
    stages = [s.stage for s in trace.steps]
    return stages.index(stage) if stage in stages else len(stages) - 1
