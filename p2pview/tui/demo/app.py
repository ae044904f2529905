"""The demo app: the TUI driven by a demo script, one step per keypress or timer tick.

:class:`DemoApp` is the normal app with the load worker skipped: every step of
a :class:`~p2pview.tui.demo.script.Demo` already holds the immutable state it
shows (analysis, selection, I/O), so showing step *i* means assigning those to
the app's reactive attributes, switching to the step's screen and, on the
stepper, showing the step's trace at its stage. A caption bar is mounted into
every main screen shown.

Keys are app-level priority bindings so that no screen eats them; they give
way to a text field being typed into and to dialogs (help, forms), except
PageDown/PageUp, which presenter clickers send.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from pathlib import Path
from typing import ClassVar

from textual import events, on
from textual.app import SystemCommand
from textual.binding import Binding, BindingType
from textual.reactive import reactive
from textual.screen import Screen
from textual.timer import Timer
from textual.widgets import Input, TextArea

from p2pview.tui.app import SCREENS, P2PViewApp
from p2pview.tui.demo.caption import CaptionState, DemoCaption
from p2pview.tui.demo.script import Demo, DemoStep
from p2pview.tui.demo.theme import PRESENTER
from p2pview.tui.screens.base import ModelScreen
from p2pview.tui.screens.stepper import StepperScreen

HERE = Path(__file__).parent

#: The demo's own actions (checked together in :meth:`DemoApp.check_action`).
_DEMO_ACTIONS = ("demo_next", "demo_back", "demo_pause", "demo_restart", "quit")


class DemoApp(P2PViewApp):
    """p2pview playing a demo script: captions, next/back, autoplay."""

    CSS_PATH = [*P2PViewApp.CSS_PATH, HERE / "demo.tcss"]
    # The stepper is added in __init__ through a factory, so that the screen
    # holds the step's trace before it first draws (it would simulate again).
    MODES = {mode: screen for mode, screen in P2PViewApp.MODES.items() if mode != "stepper"}
    VERTICAL_BREAKPOINTS = [(0, "-short"), (45, "-tall")]
    # "q" first (the footer cuts from the right), then the demo's keys; the
    # screen keys 1-5 still work but leave the footer to the demo.
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("q", "quit", "Quit", priority=True),
        Binding("space,right", "demo_next", "Next", key_display="space", priority=True),
        Binding("pagedown", "demo_next(True)", "Next", show=False, priority=True),
        Binding("left", "demo_back", "Back", key_display="←", priority=True),
        Binding("pageup", "demo_back(True)", "Back", show=False, priority=True),
        Binding("p", "demo_pause", "Pause", priority=True),
        Binding("r", "demo_restart", "Restart", priority=True),
        *(Binding(key, f"show('{mode}')", label, show=False) for mode, key, label, _ in SCREENS),
    ]

    #: What every caption bar shows.
    caption_state: reactive[CaptionState | None] = reactive(None)

    def __init__(self, demo: Demo, autoplay: float | None = None, loop: bool = False) -> None:
        super().__init__()
        if autoplay is not None and autoplay <= 0:
            raise ValueError("autoplay needs a positive number of seconds")
        self.demo = demo
        self.autoplay = autoplay
        self.loop = loop
        self.title = demo.title
        #: The step shown (0-based).
        self.step_index = 0
        #: Autoplay paused by the user (p).
        self.paused = False
        #: Autoplay reached the last step without --loop and stopped.
        self.ended = False
        self._timer: Timer | None = None
        self._shown = asyncio.Event()
        self.add_mode("stepper", self._new_stepper)
        self._stepper: StepperScreen | None = None
        self.register_theme(PRESENTER)
        self.theme = PRESENTER.name

    @property
    def step(self) -> DemoStep:
        """The step shown."""
        return self.demo.steps[self.step_index]

    # -- starting ---------------------------------------------------------------------

    @on(events.Mount)
    async def _start_demo(self, event: events.Mount) -> None:
        """Show the first step and start the autoplay timer."""
        # Instead of the base class's on_mount, which starts the load worker:
        # the demo has its steps' state. Handlers run subclass first, and
        # prevent_default() stops the walk up the class hierarchy.
        event.prevent_default()
        self.screen_change_signal.subscribe(self, self._screen_changed)
        await self.show_step(0)
        if self.autoplay is not None:
            self._timer = self.set_interval(self.autoplay, self._autoplay_due)
        self._shown.set()

    async def loaded(self) -> None:
        """Wait until the first step is on screen (for headless drivers)."""
        await self._shown.wait()
        await self.workers.wait_for_complete()

    def _new_stepper(self) -> StepperScreen:
        """The stepper screen, holding the current step's trace before its first draw."""
        screen = StepperScreen()
        run = self.stepper_run
        if run is not None:
            screen.show_trace(run.scenario, run.trace, self.step.stage_index)
        self._stepper = screen
        return screen

    # -- showing a step ---------------------------------------------------------------

    async def show_step(self, index: int) -> None:
        """Show step ``index`` (clamped to the demo) exactly as the script describes it."""
        index = max(0, min(index, len(self.demo.steps) - 1))
        self.step_index = index
        step = self.demo.steps[index]
        if self._stepper is not None and step.run is not None:
            # before the new analysis reaches it: it would simulate the step's I/O again
            self._stepper.show_trace(step.run.scenario, step.run.trace, step.stage_index)
        # The step's values are immutable: what-if keys pressed during the demo
        # make new ones and leave the step as the script built it.
        self.stepper_run = step.run
        self.selection = step.selection
        self.whatif = step.whatif
        await self._close_dialogs()
        await self.switch_mode(step.spec.screen)
        await self._close_dialogs()
        screen = self.screen
        if isinstance(screen, StepperScreen):
            assert step.run is not None  # checked at load
            screen.show_trace(step.run.scenario, step.run.trace, step.stage_index)
            screen.refresh_model()
        elif self._stepper is not None:
            # A stepper left behind would re-simulate its scenario on this step's
            # analysis (and could fail on another topology): a fresh one comes next time.
            self._stepper = None
            await self.remove_mode("stepper")
            self.add_mode("stepper", self._new_stepper)
        self._ensure_caption(screen)
        self._update_caption()

    async def _close_dialogs(self) -> None:
        """Close help, forms and pickers above the mode's screen (they belong to no step)."""
        while len(self.screen_stack) > 1:
            await self.pop_screen()

    def _screen_changed(self, screen: Screen[object]) -> None:
        """Give every main screen a caption bar, also those opened with keys 1-5."""
        if isinstance(screen, ModelScreen):
            # Queued on the screen itself: it runs once the screen has composed.
            screen.call_later(self._ensure_caption, screen)

    def _ensure_caption(self, screen: Screen[object]) -> None:
        if isinstance(screen, ModelScreen) and not screen.query(DemoCaption):
            screen.mount(DemoCaption())

    def _update_caption(self) -> None:
        """Tell every caption bar what to say now."""
        status = ""
        if self.autoplay is not None:
            if self.ended:
                status = "the end"
            elif self.paused:
                status = "paused"
            else:
                status = f"autoplay {self.autoplay:g} s"
        self.caption_state = CaptionState(
            title=self.demo.title,
            where=self.sub_title,
            number=self.step_index + 1,
            total=len(self.demo.steps),
            caption=self.step.spec.caption,
            status=status,
        )

    # -- keys -------------------------------------------------------------------------

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        """Demo keys give way to typing and to dialogs (but a clicker's keys never do)."""
        if action in _DEMO_ACTIONS:
            clicker = bool(parameters and parameters[0])
            return clicker or not self._busy_elsewhere()
        return super().check_action(action, parameters)

    def _busy_elsewhere(self) -> bool:
        """A dialog is open or a text field has the focus: plain keys are theirs."""
        screen = self.screen
        return not isinstance(screen, ModelScreen) or isinstance(screen.focused, Input | TextArea)

    async def action_demo_next(self, _clicker: bool = False) -> None:
        """The next step (with --loop, the first after the last)."""
        self._restart_timer()
        await self._advance()

    async def _advance(self) -> None:
        last = len(self.demo.steps) - 1
        if self.step_index < last:
            await self.show_step(self.step_index + 1)
        elif self.loop:
            await self.show_step(0)
        else:
            self.bell()
            self.notify("That was the last step: r restarts, ← goes back.", timeout=4)

    async def action_demo_back(self, _clicker: bool = False) -> None:
        """The step before."""
        self._restart_timer()
        if self.step_index == 0:
            self.bell()
            return
        self.ended = False
        await self.show_step(self.step_index - 1)

    async def action_demo_restart(self) -> None:
        """Back to the first step; autoplay starts over (unless paused)."""
        self.ended = False
        self._restart_timer()
        await self.show_step(0)

    def action_demo_pause(self) -> None:
        """Pause or resume autoplay."""
        if self.autoplay is None:
            self.notify("No autoplay: start the demo with --autoplay SECONDS.", timeout=4)
            return
        if self.ended:
            self.notify("The demo has ended: r restarts it.", timeout=4)
            return
        self.paused = not self.paused
        self._restart_timer()
        self._update_caption()

    def action_reload(self) -> None:
        """A demo has nothing to reload: its steps were built before it started."""
        self.notify("r restarts the demo; its steps do not reload.", timeout=4)

    def action_toggle_theme(self) -> None:
        """Switch between the presenter theme and a light one (for bright rooms)."""
        self.theme = "textual-light" if self.theme == PRESENTER.name else PRESENTER.name

    # -- autoplay ---------------------------------------------------------------------

    def _autoplay_due(self) -> None:
        # The timer runs in its own task: queue the step on the app's message
        # loop, so that it never interleaves with a key's step.
        self.call_later(self.autoplay_tick)

    async def autoplay_tick(self) -> None:
        """What the autoplay timer does: the next step, or stop at the end."""
        if self.autoplay is None or self.paused or self.ended:
            return
        if self.step_index == len(self.demo.steps) - 1 and not self.loop:
            self.ended = True
            self._restart_timer()
            self._update_caption()
            self.notify("End of the demo: r restarts it.", timeout=6)
            return
        await self._advance()

    def _restart_timer(self) -> None:
        """A full interval from now before the next automatic step (or none when stopped)."""
        timer = self._timer
        if timer is None:
            return
        timer.reset()
        if self.paused or self.ended:
            timer.pause()
        else:
            timer.resume()

    # -- the command palette ----------------------------------------------------------

    def get_system_commands(self, screen: Screen[object]) -> Iterable[SystemCommand]:
        """The demo's actions, and the app's (but reloading, which a demo cannot do)."""
        yield SystemCommand("Demo: next step (space)", "The next step", self._palette_next)
        yield SystemCommand("Demo: step back (←)", "The step before", self._palette_back)
        yield SystemCommand("Demo: restart (r)", "Back to the first step", self._palette_restart)
        if self.autoplay is not None:
            yield SystemCommand("Demo: pause or resume (p)", "Autoplay", self.action_demo_pause)
        for command in super().get_system_commands(screen):
            if not command.title.startswith("Reload"):
                yield command

    async def _palette_next(self) -> None:
        await self.action_demo_next()

    async def _palette_back(self) -> None:
        await self.action_demo_back()

    async def _palette_restart(self) -> None:
        await self.action_demo_restart()


def make_demo_app(demo: Demo, autoplay: float | None = None, loop: bool = False) -> DemoApp:
    """The one place the demo app is built (CLI, tests, snapshots)."""
    return DemoApp(demo, autoplay=autoplay, loop=loop)
