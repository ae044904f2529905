"""The I/O stepper: one O_DIRECT I/O through GUP, bios, map_sg, DMA mapping and the TLPs.

Pick a bundled scenario (or build one in a form); it is simulated against the
current topology and engine state in a thread worker, and the trace is then
stepped forward and back, stage by stage. The pipeline shows every stage, the
current one lit and the failing one marked with its errno; the panels show the
user buffer, bios and bvecs, the scatterlist with its DMA addresses, the nvme
PRPs or SGL and the TLP path on the tree, with what the step changed lit; the
log shows the step's kernel functions, dmesg lines and confidence tags.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from contextlib import suppress
from typing import ClassVar, NamedTuple

from textual import on, work
from textual.app import ComposeResult, SystemCommand
from textual.binding import Binding, BindingType
from textual.containers import Container, Vertical, VerticalScroll
from textual.content import Content
from textual.message import Message
from textual.reactive import reactive
from textual.widgets import (
    ContentSwitcher,
    Header,
    OptionList,
    Static,
    TabbedContent,
    TabPane,
)
from textual.widgets.option_list import Option, OptionDoesNotExist

from p2pview.iosim import Scenario, Trace
from p2pview.iosim.context import make_context
from p2pview.model import IommuMode
from p2pview.tui.analysis import Analysis, StepperRun, simulate_scenario
from p2pview.tui.failures import failure_text
from p2pview.tui.presenters.stepper_changes import StepChanges, step_changes
from p2pview.tui.presenters.stepper_limits import LIMITS_PANELS, limits_view, run_changes
from p2pview.tui.presenters.stepper_panels import PANELS, strip_line
from p2pview.tui.presenters.stepper_render import (
    ERROR,
    MUTED,
    TITLE,
    WARN,
    events_view,
    failure_mark,
    lines,
    pipeline,
    scenario_header,
    status_line,
    step_title,
)
from p2pview.tui.presenters.stepper_scenarios import ScenarioChoice, scenario_choices
from p2pview.tui.screens.base import ModelScreen
from p2pview.tui.stepper_state import StepperView, stage_panel
from p2pview.tui.widgets.footer import AppFirstFooter
from p2pview.tui.widgets.stepper_controller import ControllerPrompt
from p2pview.tui.widgets.stepper_form import (
    FormValues,
    KernelChoice,
    KernelPrompt,
    ScenarioForm,
    default_values,
)
from p2pview.tui.widgets.stepper_limits import LimitsToggled, LimitsView
from p2pview.tui.widgets.stepper_widgets import WidthView

#: The picker's option that opens the form.
FORM_OPTION = "__form__"


class _Asked(NamedTuple):
    """A scenario asked of the worker: its origin note, and the stage to show when it is done."""

    scenario: Scenario
    origin: str
    keep_stage: str | None = None


class TraceReady(Message):
    """The worker finished simulating (``result`` is None when it failed)."""

    def __init__(
        self, run: int, scenario: Scenario, result: StepperRun | None, error: str | None
    ) -> None:
        super().__init__()
        self.run = run
        self.scenario = scenario
        self.result = result
        self.error = error


def _changed_panels(changes: StepChanges) -> set[str]:
    """The panels whose content the step changed (their tabs are lit)."""
    out = set()
    if changes.regions or changes.pools or changes.pages or changes.error_pages:
        out.add("buffer")
    if changes.bios or changes.requests:
        out.add("bios")
    if changes.sg or changes.mappings or changes.unmapped:
        out.add("sg")
    if changes.commands:
        out.add("nvme")
    if changes.tlps:
        out.add("tlp")
    return out


class StepperScreen(ModelScreen):
    """Step one O_DIRECT I/O through the kernel, stage by stage."""

    HELP = """\
Step one O_DIRECT I/O whose user buffer may be P2P memory through the kernel:
mmap and the pool, page tables, GUP, bios, splitting, requests, `blk_rq_map_sg`,
the DMA mapping, the nvme PRPs or SGL, the device's TLPs, completion and munmap.

**Pick** a bundled scenario (those written for this topology come first; others
run only when the functions they name exist here) or **build** one in a form:
provider (a p2pmem pool, or RAM), client (NVMe, or any function as a queue
without P2PDMA), size, offset, read or write, DMA mode, kernel. The I/O is
simulated on the *current* topology and engine state: what-if edits re-run it.

**Pipeline**: every stage; the current one lit, the stage where the I/O stopped
marked with its errno, stages skipped after a mapping error struck through.

**Panels** (the one the stage is about opens by itself; the tabs of panels
the step changed are lit): the user buffer as a strip of pages coloured by pgmap (the
I/O's pages marked under it), the pools' `p2pmem/available`; bios, bvecs and
requests; the scatterlist (page, offset, length, `dma_address`, `dma_length`,
`SG_END` / `SG_DMA_BUS_ADDRESS` / page_link BUS, entries that span two pgmaps)
with the bus-address or IOVA ranges; PRP1/PRP2 and the PRP list, or SGL
descriptors; the TLP path on the client's and provider's chains, hops lit and
the turn marked. What the step changed is highlighted.

**Queue limits** (top of the Bios, Scatterlist and PRP/SGL panels; `l` opens
them): `max_hw_sectors_kb`, `max_sectors_kb`, `max_segments`,
`max_segment_size`, `virt_boundary_mask` as `/sys/block/nvme*/queue/` shows
them, and `dma_opt_mapping_size` under an IOMMU or swiotlb, each with where it
comes from (MDTS, the IOMMU, `BLK_DEF_MAX_SECTORS_CAP` of the release ...). The
form, or `c` for the I/O shown, edits the controller (MDTS, SGL support,
`sgl_threshold`, the p2pmem pool) and the DMA mode; after a re-run of the same
I/O what changed is lit.

**Events**: the step's kernel functions, dmesg lines, and tags such as
[recalled] or [inferred] where the simulator is less than sure.

Large I/Os show the first requests and entries with a count of the rest.

| key | does |
|---|---|
| `→` `n` / `←` `b` | next / previous stage |
| `home` / `end` | the first stage / the last one the I/O reached |
| `e` | the stage where the I/O failed |
| `v` | the next panel |
| `s` / `escape` | the scenario list / back to the trace |
| `f` | build a scenario in a form (`ctrl+r` runs it) |
| `l` | open or fold the queue limits and where each comes from |
| `k` | another kernel's data path for this I/O |
| `c` | this I/O's controller (MDTS, SGL, `sgl_threshold`, pool size) and DMA mode |
| `up` `down` `pgup` `pgdn` | scroll the focused panel; `tab` moves to the events |
"""

    HORIZONTAL_BREAKPOINTS = [
        (0, "-narrow"),
        (160, "-wide"),
    ]

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("left,b", "step(-1)", "Back", key_display="←", priority=True),
        Binding("right,n", "step(1)", "Next", key_display="→", priority=True),
        Binding("home", "first", "First stage", show=False, priority=True),
        Binding("end", "last", "Last stage", show=False, priority=True),
        Binding("e", "failure", "Where it failed", show=False),
        Binding("v", "next_panel", "Panel"),
        Binding("s", "pick", "Scenario"),
        Binding("f", "form", "Form", show=False),
        Binding("k", "kernel", "Kernel", show=False),
        Binding("l", "limits", "Limits", show=False),
        Binding("c", "controller", "Controller", show=False),
        Binding("escape", "back", "Back to the trace", show=False),
    ]

    #: What the screen shows: the trace, the step, the panel, the limits (see
    #: :class:`~p2pview.tui.stepper_state.StepperView`). Each key assigns the
    #: next value; :meth:`watch_view` redraws what differs and greys the keys.
    view: reactive[StepperView] = reactive(StepperView, init=False)

    def __init__(self) -> None:
        super().__init__()
        # Not what the screen shows, so not in the view: the worker's bookkeeping
        # and caches of what the view and the topology determine.
        #: Runs started here; a TraceReady of an older one is dropped.
        self._run = 0
        #: The run in flight (``None``: none); ``s``, ``k`` and ``c`` build on it.
        self._asked: _Asked | None = None
        #: step_changes() of the trace shown, by step (computed once per step).
        self._changes: dict[int, StepChanges] = {}
        self._changes_of: Trace | None = None
        #: The scenarios offered, for the topology they were listed for.
        self._choices: list[ScenarioChoice] = []
        self._choices_for: object = None
        #: The form's last values (the form opens with them again).
        self._form_values: FormValues | None = None
        #: The keys' availability when the footer was last refreshed (it is costly).
        self._keys_state: tuple[bool, ...] = ()

    # -- layout ------------------------------------------------------------------

    def compose(self) -> ComposeResult:
        """The picker and the stepper, one shown at a time."""
        yield Header()
        with ContentSwitcher(initial="stepper-picker", id="stepper-views"):
            with Vertical(id="stepper-picker"):
                yield Static(id="stepper-picker-title")
                yield OptionList(id="stepper-choices")
                yield Static(id="stepper-choice-detail")
            with Vertical(id="stepper-steps"):
                yield Static(id="stepper-scenario")
                yield Static(id="stepper-pipeline")
                yield WidthView(id="stepper-strip")
                with Container(id="stepper-body"):
                    with TabbedContent(id="stepper-panels"):
                        for panel, title, _build in PANELS:
                            with (
                                TabPane(title, id=f"panel-{panel}"),
                                VerticalScroll(classes="stepper-scroll"),
                            ):
                                if panel in LIMITS_PANELS:
                                    yield LimitsView(id=f"limits-{panel}", classes="stepper-limits")
                                yield WidthView(id=f"view-{panel}")
                    with VerticalScroll(id="stepper-events"):
                        yield Static(id="stepper-events-text")
                yield Static(id="stepper-status")
        yield AppFirstFooter()

    # -- the app's state ---------------------------------------------------------

    #: The stepper redraws for a new analysis; the selection only seeds its form.
    WATCHES = ("whatif",)

    def _current_run(self) -> StepperRun | None:
        """The app's I/O, if it ran on the analysis shown now (an edit makes it stale)."""
        run = self.p2p_app.stepper_run
        if run is None or run.analysis is not self.whatif.current:
            return None
        return run

    def refresh_model(self) -> None:
        """Re-list the scenarios; re-run the I/O when the topology or engine changed."""
        self._refresh_choices()
        asked = self._asked_last()
        run = self.p2p_app.stepper_run
        if asked is None and run is not None and self._run == 0:
            asked = _Asked(run.scenario, "")  # run elsewhere before this screen opened
        if asked is None:
            self._show_picker()
            return
        view = self.view
        current = self._current_run()
        if view.trace is not None and current is not None and current.trace is view.trace:
            self._draw_step(view)  # the same trace: the header may say another kernel
            self._refresh_keys()
            return
        self._start(asked.scenario, asked.origin, keep_stage=view.stage)

    def _asked_last(self) -> _Asked | None:
        """The scenario asked for last: the one running, else the one shown."""
        if self._asked is not None:
            return self._asked
        view = self.view
        return _Asked(view.scenario, view.origin) if view.scenario is not None else None

    @property
    def _session_kernel(self) -> str:
        return str(self.whatif.session.target.version)

    @property
    def _iommu_on(self) -> bool:
        return self.whatif.topology.platform.iommu is IommuMode.TRANSLATED

    # -- running a scenario ------------------------------------------------------

    def _start(self, scenario: Scenario, origin: str, keep_stage: str | None = None) -> None:
        """Simulate ``scenario`` in a worker; the result arrives as :class:`TraceReady`."""
        self._asked = _Asked(scenario, origin, keep_stage)
        self._run += 1
        busy = Content.styled(f"Simulating {scenario.name} ...", MUTED)
        self._status(busy)
        if not self.showing_steps:
            self.query_one("#stepper-choice-detail", Static).update(busy)
        self._simulate(self._run, scenario, self.whatif.current)

    @work(thread=True, exclusive=True, exit_on_error=False, group="stepper")
    def _simulate(self, run: int, scenario: Scenario, analysis: Analysis) -> None:
        """Run the simulator off the UI thread (up to a second for a 1 GiB I/O).

        The worker only computes; :meth:`on_trace_ready` gives the app the result.
        """
        try:
            result = simulate_scenario(analysis, scenario)
        except Exception as exc:  # one line for the user; a bug says it is one
            self.post_message(TraceReady(run, scenario, None, failure_text(exc)))
            return
        self.post_message(TraceReady(run, scenario, result, None))

    def on_trace_ready(self, message: TraceReady) -> None:
        """Show the new trace (at the stage shown before a re-run), or why it failed."""
        asked = self._asked
        if message.run != self._run or asked is None:
            return  # an older run finished after a newer one started
        self._asked = None
        view = self.view
        if message.result is None:
            error = message.error or "failed"
            self.notify(f"{message.scenario.name}: {error}", severity="error", timeout=8)
            # The trace shown before stays while it is still the app's: escape goes back to it.
            current = self._current_run()
            self.view = view.after_failure(current.trace if current is not None else None)
            self._show_picker(error=f"Cannot run {message.scenario.name}: {error}")
            return
        trace = message.result.trace
        before = view.last_good.trace if view.last_good is not None else None
        self.p2p_app.stepper_run = message.result
        view = view.rerun(
            message.scenario, asked.origin, trace, asked.keep_stage, run_changes(before, trace)
        )
        self._show_steps(view)
        self.view = view

    # -- the picker --------------------------------------------------------------

    def _refresh_choices(self) -> None:
        topo = self.whatif.topology
        if self._choices_for is topo:
            return
        self._choices_for = topo
        self._choices = scenario_choices(topo)
        options: list[Option | None] = []
        own = [c for c in self._choices if c.fits]
        others = [c for c in self._choices if not c.fits]
        for choice in own:
            options.append(self._option(choice))
        options.append(
            Option(
                Content.assemble(
                    ("Build one in a form …", "bold"),
                    ("  (f) provider, client, size, read/write, DMA mode, kernel", MUTED),
                ),
                id=FORM_OPTION,
            )
        )
        if others:
            options.append(None)
            options.extend(self._option(c) for c in others)
        option_list = self.query_one("#stepper-choices", OptionList)
        option_list.clear_options()
        option_list.add_options(options)
        option_list.highlighted = 0
        title = (
            f"Pick an O_DIRECT I/O to step through on {topo.name}"
            if own
            else f"No bundled scenario was written for {topo.name}: build one in the form"
        )
        option_list.border_title = "Scenarios"
        self.query_one("#stepper-picker-title", Static).update(
            Content.assemble(
                (title, TITLE),
                ("   enter runs it · f form · escape back to the trace", MUTED),
            )
        )

    @staticmethod
    def _option(choice: ScenarioChoice) -> Option:
        style = "bold" if choice.runnable else MUTED
        prompt = Content.assemble((choice.name, style), "  ", (choice.title, ""))
        if choice.note:
            prompt = lines([prompt, Content.styled("  ↳ " + choice.note, f"italic {MUTED}")])
        return Option(prompt, id=choice.name, disabled=not choice.runnable)

    def _show_picker(self, error: str | None = None) -> None:
        self.query_one("#stepper-views", ContentSwitcher).current = "stepper-picker"
        detail = self.query_one("#stepper-choice-detail", Static)
        if error:
            detail.update(Content.styled(error, ERROR))
        option_list = self.query_one("#stepper-choices", OptionList)
        option_list.focus()
        self._refresh_keys()

    def _show_steps(self, view: StepperView) -> None:
        """The steps instead of the list (``view``: the one about to be shown)."""
        self.query_one("#stepper-views", ContentSwitcher).current = "stepper-steps"
        focused = self.focused
        if focused is None or self.query_one("#stepper-steps") not in focused.ancestors:
            # Focus the panel of the stage about to be shown: focus in another
            # pane would switch the tabs to that pane when its focus event
            # arrives (a re-run that keeps its stage would land on Buffer).
            panel = stage_panel(view.stage or "mmap")
            self.query_one(f"#panel-{panel} .stepper-scroll").focus()
        self._refresh_keys(view)

    @property
    def showing_steps(self) -> bool:
        """The steps are shown (not the list of scenarios)."""
        return self.query_one("#stepper-views", ContentSwitcher).current == "stepper-steps"

    @property
    def trace(self) -> Trace | None:
        """The trace on screen (``None``: none yet, or the last run failed with nothing before)."""
        return self.view.trace

    @property
    def step_index(self) -> int:
        """The step on screen, counted from 0."""
        return self.view.index

    @on(OptionList.OptionHighlighted, "#stepper-choices")
    def _choice_highlighted(self, event: OptionList.OptionHighlighted) -> None:
        detail = self.query_one("#stepper-choice-detail", Static)
        choice = next((c for c in self._choices if c.name == event.option.id), None)
        if choice is None:
            detail.update(
                Content.styled(
                    "p2pview trace SOURCE --provider P --client C --size N as a form:"
                    " the I/O runs on this topology as edited.",
                    MUTED,
                )
            )
            return
        parts = [Content.styled(choice.name, TITLE)]
        if choice.scenario is not None and choice.scenario.description.strip():
            parts.append(Content(choice.scenario.description.strip()))
        if choice.note:
            parts.append(Content.styled(choice.note, WARN if choice.runnable else ERROR))
        detail.update(lines(parts))

    @on(OptionList.OptionSelected, "#stepper-choices")
    def _choice_selected(self, event: OptionList.OptionSelected) -> None:
        if event.option.id == FORM_OPTION:
            self.action_form()
            return
        self.run_bundled(event.option.id or "")

    def run_bundled(self, name: str) -> bool:
        """Simulate the bundled scenario ``name`` (False when it is not offered here)."""
        choice = next((c for c in self._choices if c.name == name), None)
        if choice is None or choice.scenario is None or not choice.runnable:
            return False
        origin = "" if choice.fits else f"written for {choice.topology}, run on this topology"
        self._start(choice.scenario, origin)
        return True

    def run_scenario(self, scenario: Scenario, origin: str = "") -> None:
        """Simulate any scenario on the current topology (the form's, or a test's)."""
        self._start(scenario, origin)

    def show_trace(self, scenario: Scenario, trace: Trace, index: int = 0) -> None:
        """Show a trace simulated elsewhere (a demo step's) at step ``index``.

        A simulation still running is dropped. Called before the screen is
        mounted, it only records the trace, so that the first
        :meth:`refresh_model` redraws it instead of simulating again; call it
        once more after the mount to bring the steps into view.
        """
        self._run += 1  # a TraceReady still to come is stale now
        self._asked = None
        view = self.view.with_trace(scenario, "", trace, index)
        if not self.is_mounted:
            self.set_reactive(StepperScreen.view, view)
            return
        self.query_one("#stepper-views", ContentSwitcher).current = "stepper-steps"
        self.view = view
        # Focus inside the stage's own panel: focus in another pane would
        # switch the tabs to that pane when its focus event arrives.
        self.query_one(f"#panel-{stage_panel(view.stage or 'mmap')} .stepper-scroll").focus()

    # -- drawing -----------------------------------------------------------------

    def _status(self, content: Content) -> None:
        self.query_one("#stepper-status", Static).update(content)

    def _step_changes(self, trace: Trace, index: int) -> StepChanges:
        if self._changes_of is not trace:
            self._changes_of, self._changes = trace, {}
        changes = self._changes.get(index)
        if changes is None:
            changes = self._changes[index] = step_changes(trace, index)
        return changes

    def watch_view(self, old: StepperView, new: StepperView) -> None:
        """Redraw what the new view changed; open its panel; grey the keys that do nothing now."""
        if not self.is_mounted:
            return  # show_trace() before the mount: the first refresh_model() draws
        trace = new.trace
        if trace is not None:
            if trace is not old.trace or new.index != old.index:
                self._draw_step(new)
            elif new.limits_open != old.limits_open or new.run_changes != old.run_changes:
                self._draw_limits(new)
            # A new trace opens its panel even when the view's was open before
            # (the tabs may have been left elsewhere while it ran).
            if new.panel is not None and (new.panel != old.panel or trace is not old.trace):
                self.query_one("#stepper-panels", TabbedContent).active = f"panel-{new.panel}"
        self._refresh_keys()

    @on(TabbedContent.TabActivated, "#stepper-panels")
    def _tab_activated(self) -> None:
        """A click on a tab, or focus in a pane, opened a panel: the view follows."""
        active = self.query_one("#stepper-panels", TabbedContent).active
        self.view = self.view.showing_panel(active.removeprefix("panel-"))

    def _draw_step(self, view: StepperView) -> None:
        """Draw the step ``view`` shows (the tab of each panel it changed lit)."""
        trace = view.trace
        if trace is None:
            return
        index = view.index
        changes = self._step_changes(trace, index)
        self.query_one("#stepper-scenario", Static).update(
            scenario_header(trace, self._session_kernel, self._iommu_on, view.origin)
        )
        self.query_one("#stepper-pipeline", Static).update(pipeline(trace, index))
        self._status(status_line(trace, index))
        self.query_one("#stepper-events-text", Static).update(events_view(trace, index))
        events = self.query_one("#stepper-events", VerticalScroll)
        events.border_title = f"Events of {step_title(trace, index)}"
        events.scroll_home(animate=False)
        self.query_one("#stepper-strip", WidthView).show(
            self._builder(strip_line, trace, index, changes)
        )
        for panel, _title, build in PANELS:
            self.query_one(f"#view-{panel}", WidthView).show(
                self._builder(build, trace, index, changes)
            )
        self._draw_limits(view)
        lit = _changed_panels(changes)
        tabs = self.query_one("#stepper-panels", TabbedContent)
        for panel, _title, _build in PANELS:
            # A class, not a changed label: the tab keeps its width and the underline stays put.
            tabs.get_tab(f"panel-{panel}").set_class(panel in lit, "-changed")

    def _draw_limits(self, view: StepperView) -> None:
        """The queue limits atop their panels: one line, or the table with sources."""
        trace, opened, changed = view.trace, view.limits_open, view.run_changes
        if trace is None:
            return
        for panel in LIMITS_PANELS:
            self.query_one(f"#limits-{panel}", LimitsView).show(
                lambda width: limits_view(trace, opened, changed, width)
            )

    def _refresh_keys(self, view: StepperView | None = None) -> None:
        """Refresh the footer only when a key's availability changed (the footer is costly).

        ``view``: the one about to be assigned, when the steps are shown before it.
        """
        view = view or self.view
        state = (
            self.showing_steps,
            view.trace is not None,
            view.at_first,
            view.at_last,
            view.failed,
        )
        if state != self._keys_state:
            self._keys_state = state
            self.refresh_bindings()

    @staticmethod
    def _builder(
        build: Callable[[Trace, int, StepChanges, int], Content],
        trace: Trace,
        index: int,
        changes: StepChanges,
    ) -> Callable[[int], Content]:
        return lambda width: build(trace, index, changes, width)

    # -- actions -----------------------------------------------------------------

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        """Grey out keys that do nothing now (and let them fall through to the focused widget)."""
        view = self.view
        stepping = view.trace is not None and self.showing_steps
        if action == "step":
            if not stepping:
                return None
            delta = parameters[0] if parameters else 1
            if isinstance(delta, int) and delta > 0 and view.at_last:
                return None
            if isinstance(delta, int) and delta < 0 and view.at_first:
                return None
            return True
        if action in ("first", "last", "next_panel", "kernel", "failure", "limits", "controller"):
            return True if stepping else None
        if action == "pick":
            return True if self.showing_steps else None
        if action == "back":
            return True if view.trace is not None and not self.showing_steps else None
        return True

    def action_step(self, delta: int) -> None:
        """Forward or back through the stages."""
        self.view = self.view.step(delta)

    def action_first(self) -> None:
        """The first stage (mmap)."""
        self.view = self.view.first()

    def action_last(self) -> None:
        """The last stage the trace reached."""
        self.view = self.view.last()

    def action_failure(self) -> None:
        """The stage where the I/O stopped."""
        view = self.view
        if view.trace is not None and not view.failed:
            self.notify("Nothing failed: this I/O completed every stage", timeout=4)
            return
        failure = view.failure()
        if failure is not None:
            self.view = failure

    def goto(self, stage: str | None) -> bool:
        """Show the step of ``stage`` if the trace reached it."""
        moved = self.view.at_stage(stage)
        if moved is None:
            return False
        self.view = moved
        return True

    def action_next_panel(self) -> None:
        """The next panel (buffer, bios, scatterlist, PRP/SGL, TLP path)."""
        self.view = self.view.next_panel()

    def action_limits(self) -> None:
        """Open the queue limits into a table with each value's source, or fold them."""
        self.view = self.view.toggled_limits()

    @on(LimitsToggled)
    def _limits_clicked(self) -> None:
        self.action_limits()

    def action_pick(self) -> None:
        """Back to the list of scenarios."""
        self.query_one("#stepper-choice-detail", Static).update("")
        self._show_picker()
        option_list = self.query_one("#stepper-choices", OptionList)
        asked = self._asked_last()
        if asked is not None:
            with suppress(OptionDoesNotExist):
                option_list.highlighted = option_list.get_option_index(asked.scenario.name)

    def action_back(self) -> None:
        """From the list back to the trace."""
        if self.view.trace is not None:
            self._show_steps(self.view)

    def action_form(self) -> None:
        """Build a scenario in a form."""
        whatif, selection = self.whatif, self.selection
        values = self._form_values or default_values(
            whatif.topology,
            selection.selected,
            selection.peer,
            lambda provider, client: whatif.verdict(provider, client).map_type,
        )

        def done(result: tuple[Scenario, FormValues] | None) -> None:
            if result is None:
                return
            scenario, values = result
            self._form_values = values
            self._start(scenario, "")

        def check(scenario: Scenario) -> None:
            # The fit of the scenario to the topology (p2pmem, a BAR to hold it), at once.
            make_context(scenario, whatif.topology, whatif.session.state)

        form = ScenarioForm(whatif.topology, values, self._session_kernel, check)
        self.app.push_screen(form, done)

    def action_kernel(self) -> None:
        """Re-run the current scenario with another kernel's data path."""
        asked = self._asked_last()
        if asked is None:
            return
        scenario = asked.scenario

        def done(choice: KernelChoice | None) -> None:
            if choice is None:
                return  # cancelled
            # The origin asked for last when the prompt closes (a run may have ended meanwhile).
            origin = (self._asked_last() or asked).origin
            self._start(scenario.replace(kernel=choice.kernel), origin, self.view.stage)

        self.app.push_screen(KernelPrompt(scenario.kernel, self._session_kernel), done)

    def action_controller(self) -> None:
        """Edit this I/O's controller (MDTS, SGL, sgl_threshold, pool) and DMA mode; re-run it."""
        asked = self._asked_last()
        if asked is None:
            return

        def done(scenario: Scenario | None) -> None:
            if scenario is None:
                return
            origin = (self._asked_last() or asked).origin
            self._start(scenario, origin, self.view.stage)

        self.app.push_screen(ControllerPrompt(asked.scenario, self.whatif.topology), done)

    def palette_commands(self) -> Iterable[SystemCommand]:
        """The stepper's actions for the command palette."""
        for choice in self._choices:
            if choice.runnable and choice.scenario is not None:
                yield SystemCommand(
                    f"I/O: run {choice.name}",
                    choice.title or "a bundled O_DIRECT scenario",
                    lambda name=choice.name: self._palette_run(name),
                )
        yield SystemCommand(
            "I/O: build a scenario (f)", "Provider, client, size ...", self.action_form
        )
        trace = self.view.trace
        if trace is not None:
            yield SystemCommand("I/O: first stage (home)", "Back to mmap", self.action_first)
            yield SystemCommand("I/O: last stage (end)", "Where the trace ends", self.action_last)
            if trace.result.stage is not None:
                mark = failure_mark(trace.result)
                yield SystemCommand(
                    f"I/O: where it failed (e) {mark}",
                    "The stage that raised the error",
                    self.action_failure,
                )
            yield SystemCommand(
                "I/O: kernel for this I/O (k)", "Another kernel's data path", self.action_kernel
            )
            yield SystemCommand(
                "I/O: controller and DMA of this I/O (c)",
                "MDTS, SGL support, sgl_threshold, pool size, DMA mode",
                self.action_controller,
            )

    def _palette_run(self, name: str) -> None:
        self.run_bundled(name)
