"""The Textual app: one factory, a loading worker, one screen per mode.

``make_app()`` is what the CLI, the tests, the snapshot apps and the
screenshot script all call. The source is loaded in a thread worker that posts
messages; once it is in, the app switches to the topology screen.

The app's state is three reactive attributes of immutable values: ``whatif``
(the analysis as loaded and as edited, :class:`~p2pview.tui.analysis.WhatIf`),
``selection`` (:class:`~p2pview.tui.analysis.Selection`) and ``stepper_run``
(the I/O shown, :class:`~p2pview.tui.analysis.StepperRun`). Workers compute
new values; the UI thread assigns them, and each screen watches only the
attributes it draws from (:class:`~p2pview.tui.screens.base.ModelScreen`).
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import re
import weakref
from collections.abc import Iterable
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

from textual import events, work
from textual.app import App, ComposeResult, SystemCommand
from textual.binding import Binding
from textual.containers import Center, Middle
from textual.dom import DOMNode
from textual.reactive import reactive
from textual.screen import Screen
from textual.widgets import Header, Input, LoadingIndicator, Static, TextArea

from p2pview.model import BDF, Topology
from p2pview.session import EngineConfig
from p2pview.tui.analysis import Selection, StepperRun, WhatIf
from p2pview.tui.failures import failure_text
from p2pview.tui.messages import LoadFailed, LoadProgress, ModelLoaded
from p2pview.tui.model import TuiStart, load_start
from p2pview.tui.screens.explain import ExplainScreen
from p2pview.tui.screens.help import HelpScreen
from p2pview.tui.screens.matrix import MatrixScreen
from p2pview.tui.screens.stepper import StepperScreen
from p2pview.tui.screens.topology import TopologyScreen
from p2pview.tui.screens.whatif import WhatIfScreen
from p2pview.tui.widgets.footer import AppFirstFooter

HERE = Path(__file__).parent


class Unset:
    """The type of :data:`UNSET`: "leave this part of the selection as it is"."""


UNSET = Unset()
#: Seconds at most that keys typed during a screen switch wait for its first frame.
KEY_HOLD_LIMIT = 2.0
#: The action of the screen keys 1-5.
SHOW_ACTION = re.compile(r"show\('(?P<mode>\w+)'\)")
#: Seconds at most that a switch waits for the new screen to take its place before painting.
RESUME_WAIT = 1.0
#: Pseudo-classes of a screen that say where it is among the app's screens (which change as
#: screens are built, and which no style sheet addresses).
POSITIONAL_PSEUDO_CLASSES = frozenset(
    ("first-child", "last-child", "odd", "even", "first-of-type", "last-of-type", "empty")
)
#: Seconds between building the screens ahead, laying them out, and drawing them (for the
#: handlers each step sets off to run).
DRAW_AHEAD_DELAY = 0.2

#: (mode, key, footer label, palette help) for the main screens.
SCREENS = (
    ("topology", "1", "Tree", "The PCIe tree, badges and the selected function's details"),
    ("matrix", "2", "Matrix", "Map type and distance for every pair in view"),
    ("explain", "3", "Explain", "Why the kernel decides the selected pair as it does"),
    ("whatif", "4", "What-if", "Toggle ACS, IOMMU, command line, CPU, kernel, host bridge IDs"),
    ("stepper", "5", "I/O", "Step one O_DIRECT I/O through GUP, bios, map_sg and DMA"),
)


@dataclass(frozen=True)
class TuiArgs:
    """What the command line passes to the TUI, as typed (parsed once, by :meth:`load`)."""

    source: str | None = None
    kernel: str | None = None
    cpu: str | None = None
    cmdline: str | None = None
    iommu: str | None = None
    input_format: str | None = None

    @property
    def config(self) -> EngineConfig:
        """The engine settings (raises on a value the engine cannot take)."""
        return EngineConfig.parse(
            kernel=self.kernel, cpu=self.cpu, cmdline=self.cmdline, iommu=self.iommu
        )

    def load(self) -> TuiStart:
        """Read the source and boot the engine with these options (slow: not on the UI thread)."""
        return load_start(self.source, self.config, self.input_format)


class P2PViewApp(App[None]):
    """p2pview's interactive explorer."""

    TITLE = "p2pview"
    SUB_TITLE = "PCIe peer-to-peer DMA as the kernel decides it"
    CSS_PATH = [
        HERE / "app.tcss",
        HERE / "screens" / "topology.tcss",
        HERE / "screens" / "matrix.tcss",
        HERE / "screens" / "explain.tcss",
        HERE / "screens" / "whatif.tcss",
        HERE / "screens" / "stepper.tcss",
    ]
    MODES = {
        "topology": TopologyScreen,
        "matrix": MatrixScreen,
        "explain": ExplainScreen,
        "whatif": WhatIfScreen,
        "stepper": StepperScreen,
    }
    # "?" and "q" come first so that an 80-column footer, which cuts from the
    # right, still shows them; the screen keys 1-5 follow.
    BINDINGS = [
        Binding("question_mark", "help", "Help"),
        Binding("q", "quit", "Quit"),
        *(Binding(key, f"show('{mode}')", label) for mode, key, label, _ in SCREENS),
        Binding("r", "reload", "Reload", show=False),
        Binding("d", "toggle_theme", "Light/dark", show=False),
        Binding("y", "copy_redir", "Copy pci=disable_acs_redir=", show=False),
    ]

    #: The analysis as loaded and as edited (``None`` until loaded).
    whatif: reactive[WhatIf | None] = reactive(None, init=False)
    #: The function selected, its peer and the pair explained.
    selection: reactive[Selection] = reactive(Selection, init=False)
    #: The I/O the stepper shows (``None``: none run since the last edit).
    stepper_run: reactive[StepperRun | None] = reactive(None, init=False)

    def __init__(
        self,
        args: TuiArgs | None = None,
        start: TuiStart | None = None,
        build_ahead: bool | None = None,
    ) -> None:
        super().__init__()
        for mode, base in list(self._modes.items()):
            if isinstance(base, type) and issubclass(base, Screen):
                self._modes[mode] = partial(self._new_screen, base)
        self.args = args or TuiArgs()
        #: Build the main screens in idle time once the first is drawn (``None``: in a terminal).
        self.build_ahead = build_ahead
        #: Loaded before the app started (the CLI loads first, so that errors go to stderr).
        self._preloaded = start
        #: Why a bundled topology is shown instead of this host (``None``: it is not).
        self.stand_in: str | None = None
        self.load_error: str | None = None
        #: Set by a first ``r`` that would drop what-if edits.
        self._reload_armed = False
        #: Keys typed while a screen is being switched to (``None``: no switch under way).
        self._held_keys: list[events.Key] | None = None
        self._switches = 0
        #: Set while :meth:`switch_mode` runs for :meth:`action_show` (see :meth:`delay_update`).
        self._switching = False
        #: The screen being shown by :meth:`action_show`, until it has resumed.
        self._resuming: Screen[object] | None = None
        #: What each main screen was last styled for (:meth:`_style_inputs`).
        self._styled_as: weakref.WeakKeyDictionary[Screen[Any], tuple[object, ...]] = (
            weakref.WeakKeyDictionary()
        )
        #: Set once :meth:`_build_ahead` finds every main screen built.
        self.screens_built = asyncio.Event()

    # -- loading ------------------------------------------------------------------

    def compose(self) -> ComposeResult:
        """The loading view (the default screen) until the source is in."""
        yield Header()
        with Middle(), Center():
            yield LoadingIndicator(id="loading")
            yield Static("Loading ...", id="progress")
        yield AppFirstFooter()

    def on_mount(self) -> None:
        """Start loading (or show what the CLI loaded)."""
        if self._preloaded is not None:
            self.post_message(ModelLoaded(self._preloaded))
            self._preloaded = None
            return
        self.load()

    @work(thread=True, exclusive=True, exit_on_error=False, group="load")
    def load(self) -> None:
        """Read the source and boot the engine, off the UI thread."""
        args = self.args
        self.post_message(LoadProgress(f"Reading {args.source or 'this host'} ..."))
        try:
            start = args.load()
        except Exception as exc:
            self.post_message(LoadFailed(failure_text(exc)))
            return
        self.post_message(ModelLoaded(start))

    async def loaded(self) -> None:
        """Wait until the load worker has delivered the analysis or failed.

        For headless drivers (tests, screenshots, benchmarks, the demo): just
        after ``run_test`` starts, the worker may not have started yet, so
        ``workers.wait_for_complete()`` alone can return before anything loaded.
        """
        while self.whatif is None and self.load_error is None:
            await asyncio.sleep(0.005)
        await self.workers.wait_for_complete()

    def on_load_progress(self, message: LoadProgress) -> None:
        """Show what the worker is doing."""
        self._progress(message.text)

    def _progress(self, text: str) -> None:
        for widget in self.query("#progress"):
            if isinstance(widget, Static):
                widget.update(text)

    def on_model_loaded(self, message: ModelLoaded) -> None:
        """The source is in: show the topology screen (or refresh after a reload).

        A reload keeps the selection where its functions still exist, and drops
        the I/O shown (it ran on the topology as it was).
        """
        start = message.start
        first = self.whatif is None
        self.load_error = None
        self.stand_in = start.stand_in
        self.stepper_run = None
        kept = self.selection.within(start.whatif.topology)
        self.selection = start.selection if first or kept.pair is None else kept
        self.whatif = start.whatif
        if first:
            self.show("topology")
            self.call_later(self._start_building_ahead)
        for note in start.notes[:2]:
            self.notify(note, timeout=8)

    def on_load_failed(self, message: LoadFailed) -> None:
        """Say what went wrong; q quits."""
        self.load_error = message.text
        for widget in self.query("#loading"):
            widget.display = False
        self._progress(f"Cannot load: {message.text}\nPress q to quit.")

    # -- changes ------------------------------------------------------------------

    def watch_whatif(self, whatif: WhatIf | None) -> None:
        """A new analysis (edit, undo, reset, reload): the header, and no armed reload."""
        self._reload_armed = False
        if whatif is not None:
            self.sub_title = header_text(whatif, self.stand_in)

    def select(
        self,
        *,
        selected: BDF | Unset | None = UNSET,
        peer: BDF | Unset | None = UNSET,
        pair: tuple[BDF, BDF] | Unset | None = UNSET,
    ) -> None:
        """Change the selection (the screens that show it redraw)."""
        current = self.selection
        self.selection = Selection(
            current.selected if isinstance(selected, Unset) else selected,
            current.peer if isinstance(peer, Unset) else peer,
            current.pair if isinstance(pair, Unset) else pair,
        )

    # -- actions ------------------------------------------------------------------

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        """Screen keys do nothing until something is loaded."""
        if action in ("show", "reload") and self.whatif is None:
            return None
        return True

    async def action_show(self, mode: str) -> None:
        """Switch to a main screen; keys typed until it is drawn do not reach it.

        A first visit builds the screen, which takes a moment on a big topology
        (unless it was built ahead: :meth:`_build_ahead`). Keys typed in that
        moment were meant for what the user saw, not for a screen not drawn yet
        (digits typed to change screens ended up in the I/O form): the app's
        own keys (1-5, ?, q ...) are held and run, in order, once the new
        screen is drawn; any other key is dropped, and a notification says so.

        Nothing is painted until the new screen has taken its place (restyled,
        laid out, its own resume handlers run); Textual's switch instead holds
        every paint for a fixed 50 ms (:meth:`delay_update`).
        """
        if self.current_mode == mode:
            await self._release_keys(self._switches)
            return
        if self._held_keys is None:
            self._hold_keys()
        release = partial(self._release_keys, self._switches)
        self._styled_as[self.screen] = self._style_inputs(self.screen)
        with self.batch_update():
            self._switching = True
            try:
                mounted = self.switch_mode(mode)
            finally:
                self._switching = False
            self._resuming = self.screen
            try:
                await mounted
                await self._resumed(self.screen)
            finally:
                self._resuming = None
        self.screen.call_after_refresh(release)

    async def _resumed(self, screen: Screen[object]) -> None:
        """Wait until ``screen`` has handled the messages posted to it so far (its resume)."""
        done = asyncio.Event()
        screen.call_later(done.set)
        with contextlib.suppress(TimeoutError):  # paint what there is rather than nothing
            await asyncio.wait_for(done.wait(), RESUME_WAIT)

    def delay_update(self, delay: float = 0.05) -> None:
        """Hold paints for ``delay`` seconds, except in :meth:`action_show`'s switch.

        Textual's ``switch_mode`` calls this to hide the new screen's first
        moments: every switch then waited 50 ms before its first paint.
        :meth:`action_show` holds paints itself, for exactly as long as needed.
        """
        if not self._switching:
            super().delay_update(delay)

    def update_styles(self, node: DOMNode, animate: bool = True) -> None:
        """Restyle ``node`` and what it holds, except a main screen shown again as it was left.

        Textual restyles the whole screen each time it is shown, in case the
        app's own look changed meanwhile (a theme, the terminal's focus: those
        restyle only the screen shown). Each restyle also throws away every
        widget's drawn lines, so that the switch redrew the whole screen from
        scratch: about half of a switch. When nothing the style sheets see of
        the app and of the screen itself changed since the screen was last
        styled, the switch skips that restyle. (Changes to the screen's widgets
        restyle them as they happen, shown or not.)
        """
        if isinstance(node, Screen) and node in self._styled_as:
            inputs = self._style_inputs(node)
            if node is self._resuming and self._styled_as[node] == inputs:
                return
            self._styled_as[node] = inputs
        super().update_styles(node, animate)

    def _style_inputs(self, screen: Screen[Any]) -> tuple[object, ...]:
        """What the style sheets see of the app and of ``screen`` itself (not its widgets)."""
        return (
            self._css_update_count,
            self.theme,
            frozenset(self.get_pseudo_classes()),
            frozenset(self.classes),
            self.size,
            frozenset(screen.classes),
            frozenset(screen.get_pseudo_classes()) - POSITIONAL_PSEUDO_CLASSES,
        )

    def _new_screen(self, screen_class: type[Screen[None]]) -> Screen[None]:
        """A main screen, new (the factory of each mode).

        A new screen is styled from the app's style sheets as it mounts, but
        Textual, seeing a screen that never had the sheets refreshed, re-reads
        and re-applies every sheet of the app before showing it (twice: once
        when the mode is made, once when it is shown), about 50-150 ms each at
        2,000 functions. Marking the screen as up to date skips that; a later
        change of theme still refreshes it as it does every screen.
        """
        screen = screen_class()
        screen._css_update_count = self._css_update_count
        self._styled_as[screen] = self._style_inputs(screen)  # as it mounts
        return screen

    def _start_building_ahead(self) -> None:
        """Once the first screen is drawn, build the others in idle time (:meth:`_build_ahead`)."""
        if self.build_ahead is None:
            self.build_ahead = not self.is_headless
        if self.build_ahead:
            self.screen.call_after_refresh(self._build_ahead)

    def _build_ahead(self) -> None:
        """Build the next main screen not built yet; once it is idle, the one after.

        A first visit would otherwise build the screen while the user waits:
        0.3-0.9 s at 2,000 functions, against 100 ms for a switch. Each screen
        is built (composed, mounted, drawn from the analysis, laid out: Textual
        tells a new mode's screen that it is shown, and it lays itself out) on
        its own, and the next only once it is idle, so that a key typed
        meanwhile waits for one screen at most. Once all are built, a moment
        later, :meth:`_lay_out_ahead`.
        """
        if self.whatif is None:
            return
        if self._held_keys is not None:  # a switch is under way: it goes first
            self.set_timer(DRAW_AHEAD_DELAY, self._build_ahead)
            return
        mode = next((mode for mode, *_ in SCREENS if mode not in self._screen_stacks), None)
        if mode is None:
            self.set_timer(DRAW_AHEAD_DELAY, self._lay_out_ahead)
            return
        self._init_mode(mode)
        self.get_screen_stack(mode)[0].call_after_refresh(self._build_ahead)

    def _screens_ahead(self) -> list[Screen[object]]:
        """The main screens built and not shown."""
        return [
            screen
            for mode, *_ in SCREENS
            for screen in self._screen_stacks.get(mode, ())
            if screen.is_attached and not screen.is_current
        ]

    def _lay_out_ahead(self) -> None:
        """Lay out the screens built ahead at the terminal's size, then (a moment later) draw them.

        Textual lays out only the screen shown: a screen built ahead was laid out
        once, as it was told it is shown, before its widgets were all mounted;
        its first visit would lay it out again, resize every widget, and so draw
        every line anew.
        """
        for screen in self._screens_ahead():
            screen._refresh_layout(self.size)
        self.set_timer(DRAW_AHEAD_DELAY, self._draw_ahead)

    def _draw_ahead(self) -> None:
        """Draw the screens built ahead into their widgets' line caches, without showing them.

        Their first visit then paints from the caches, as a revisit does, instead
        of drawing every line of every widget (40-60 ms at 2,000 functions).
        """
        for screen in self._screens_ahead():
            screen._compositor.render_update(full=True)
        # The analysis and the screens now live as long as the app (an edit
        # keeps the analysis as read beside the edited one). Python's full garbage
        # collection walks every object, 0.1-0.3 s at 2,000 functions, and came
        # at random in switches and keys; frozen, these objects are no longer
        # walked. Frozen objects are still freed when no longer referenced
        # (four reloads of 2,000 functions grow the process no more than
        # without freezing); only reference cycles among them would stay.
        gc.freeze()
        self.screens_built.set()

    def show(self, mode: str) -> None:
        """Switch to a main screen from code that cannot await (see :meth:`action_show`)."""
        self.call_later(self.action_show, mode)

    def _hold_keys(self) -> None:
        """Hold keys from now until the next screen is drawn (or, at most, a moment)."""
        self._held_keys = []
        self._switches += 1
        # a switch that draws nothing (or never happens) must not hold keys for ever
        self.set_timer(KEY_HOLD_LIMIT, partial(self._release_keys, self._switches))

    def _switch_target(self, key: str) -> str | None:
        """The screen that ``key`` switches to now, if it does (it is not typed into a field)."""
        if self.whatif is None or len(self.screen_stack) > 1:
            return None
        if isinstance(self.focused, (Input, TextArea)):
            return None  # typed into the field, as Textual delivers it
        for binding in self._bindings.key_to_bindings.get(key, ()):
            match = SHOW_ACTION.fullmatch(binding.action)
            if match and match["mode"] != self.current_mode:
                return match["mode"]
        return None

    async def on_event(self, event: events.Event) -> None:
        """Hold keys while a screen switch is under way (see :meth:`action_show`).

        The hold starts here, as the switching key comes in: Textual hands keys
        to the focused widget's queue, so a key typed right after it would
        otherwise be on its way to the old screen's widgets already.
        """
        if isinstance(event, events.Key) and not event.is_forwarded:
            if self._held_keys is not None:
                self._held_keys.append(event)
                return
            if self._switch_target(event.key) is not None:
                self._hold_keys()
        await super().on_event(event)

    async def _release_keys(self, switch: int) -> None:
        """Switch number ``switch`` is drawn: run the app keys typed meanwhile, drop the rest."""
        if switch != self._switches or self._held_keys is None:
            return  # a later switch holds them until its own screen is drawn
        held, self._held_keys = self._held_keys, None
        dropped = []
        for key in held:
            bindings = self._bindings.key_to_bindings.get(key.key)
            if bindings:
                await self.run_action(bindings[0].action, self)
            else:
                dropped.append(key.character or key.key)
        if dropped:
            self.notify(
                f"Ignored {len(dropped)} key(s) typed before this screen was drawn:"
                f" {' '.join(dropped)}",
                severity="warning",
                timeout=4,
                markup=False,
            )

    def action_help(self) -> None:
        """Keys and what each screen shows."""
        screen = self.screen
        self.push_screen(HelpScreen(screen))

    def action_reload(self) -> None:
        """Read the source again (this host's /sys when it is live).

        A reload starts from the source as read, so it drops what-if edits;
        with edits in place the first ``r`` only warns and a second one reloads.
        """
        edits = len(self.whatif.edits) if self.whatif is not None else 0
        if edits and not self._reload_armed:
            self._reload_armed = True
            self.notify(
                f"Reloading drops {edits} what-if edit(s). Press r again to reload, "
                "or w on the What-if screen to save them first.",
                severity="warning",
                timeout=6,
            )
            return
        self._reload_armed = False
        self.notify("Reloading ...")
        self.load()

    def redir_parameter(self) -> str | None:
        """``pci=disable_acs_redir=...`` for the explained pair, as the kernel suggests it."""
        whatif, pair = self.whatif, self.selection.pair
        if whatif is None or pair is None:
            return None
        provider, client = pair
        if provider not in whatif.topology or client not in whatif.topology:
            return None
        text = whatif.verdict(provider, client).acs_list_text
        return f"pci=disable_acs_redir={text}" if text else None

    def action_copy_redir(self) -> None:
        """Copy the explained pair's ``pci=disable_acs_redir=`` line to the clipboard."""
        if self.whatif is None:
            return
        parameter = self.redir_parameter()
        if parameter is None:
            shown = self.selection.pair
            pair = "no pair" if shown is None else f"{shown[0]} -> {shown[1]}"
            self.notify(
                f"Nothing to copy: the explained pair ({pair}) has no ACS redirect on its path",
                timeout=4,
                markup=False,
            )
            return
        self.copy_to_clipboard(parameter)
        self.notify(
            f"Copied {parameter} (through the terminal's clipboard: OSC 52)",
            timeout=6,
            markup=False,
        )

    def action_toggle_theme(self) -> None:
        """Switch between the dark and the light theme."""
        self.theme = "textual-light" if self.theme == "textual-dark" else "textual-dark"

    def get_system_commands(self, screen: Screen[object]) -> Iterable[SystemCommand]:
        """Every action in the command palette."""
        yield from super().get_system_commands(screen)
        if self.whatif is None:
            return
        for mode, key, label, text in SCREENS:
            yield SystemCommand(f"{label} screen ({key})", text, partial(self.show, mode))
        yield SystemCommand("Help (?)", "Keys and what each screen shows", self.action_help)
        yield SystemCommand("Reload (r)", "Read the source again", self.action_reload)
        yield SystemCommand("Light or dark theme (d)", "Switch the theme", self.action_toggle_theme)
        yield SystemCommand(
            "Copy pci=disable_acs_redir= (y)",
            "The kernel's suggested parameter for the explained pair, to the clipboard",
            self.action_copy_redir,
        )
        extra = getattr(screen, "palette_commands", None)
        if callable(extra):
            yield from extra()


def make_app(
    args: TuiArgs | None = None, start: TuiStart | None = None, build_ahead: bool | None = None
) -> P2PViewApp:
    """The one place the app is built (CLI, tests, snapshots, screenshots).

    ``start``: the source as already loaded (the CLI's case); without it the app
    loads ``args.source`` in a worker behind a loading screen. ``build_ahead``:
    build every main screen in idle time once the first is drawn, so that a
    first visit is as quick as a revisit; by default in a terminal, not
    headless (tests and snapshots build a screen when they visit it).
    """
    return P2PViewApp(args, start, build_ahead)


def header_text(whatif: WhatIf, stand_in: str | None = None) -> str:
    """The header's line: what is shown, under which kernel, and what is not as read.

    A bundled topology standing in for this host, and what-if edits in place,
    are said here for as long as they last (a notification fades).
    """
    target = whatif.session.target
    text = f"{whatif.topology.name} - kernel {target.version}" + assumed_suffix(whatif.topology)
    if whatif.edits:
        plural = "edit" if len(whatif.edits) == 1 else "edits"
        text = f"EDITED ({len(whatif.edits)} {plural}) {text}"
    if stand_in is not None:
        text = f"BUNDLED, not this host ({stand_in}): {text}"
    return text


def assumed_suffix(topo: Topology) -> str:
    """`` - CPU, kernel assumed`` when platform facts (or host-bridge functions) are assumed."""
    plat = topo.platform
    names = {"cpu": "CPU", "kernel": "kernel"}
    assumed = [label for name, label in names.items() if plat.facts.get(name).is_assumed]
    if any(hb.root_functions.is_assumed for hb in topo.host_bridges):
        assumed.append("host-bridge function")
    if not assumed:
        return ""
    return f" - {', '.join(assumed)} assumed"
