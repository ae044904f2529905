"""The Textual app: one factory, a loading worker, one screen per mode.

``make_app()`` is what the CLI, the tests, the snapshot apps and the
screenshot script all call. The source is loaded in a thread worker that posts
messages; once it is in, the app switches to the topology screen. Every
what-if edit goes through :class:`~p2pview.tui.model.TuiModel` and then
:meth:`P2PViewApp.model_changed`, which bumps ``model_version``; each screen
watches it and redraws.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from textual import work
from textual.app import App, ComposeResult, SystemCommand
from textual.binding import Binding
from textual.containers import Center, Middle
from textual.reactive import reactive
from textual.screen import Screen
from textual.widgets import Footer, Header, LoadingIndicator, Static

from p2pview.model import Topology
from p2pview.tui.messages import LoadFailed, LoadProgress, ModelLoaded
from p2pview.tui.model import TuiModel
from p2pview.tui.screens.explain import ExplainScreen
from p2pview.tui.screens.help import HelpScreen
from p2pview.tui.screens.matrix import MatrixScreen
from p2pview.tui.screens.stepper import StepperScreen
from p2pview.tui.screens.topology import TopologyScreen
from p2pview.tui.screens.whatif import WhatIfScreen

HERE = Path(__file__).parent

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
    """What the command line passes to the TUI."""

    source: str | None = None
    kernel: str | None = None
    cpu: str | None = None
    cmdline: str | None = None
    iommu: str | None = None
    input_format: str | None = None


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
    ]

    model_version: reactive[int] = reactive(0)

    def __init__(self, args: TuiArgs | None = None) -> None:
        super().__init__()
        self.args = args or TuiArgs()
        self.model: TuiModel | None = None
        self.load_error: str | None = None
        #: Set by a first ``r`` that would drop what-if edits.
        self._reload_armed = False

    # -- loading ------------------------------------------------------------------

    def compose(self) -> ComposeResult:
        """The loading view (the default screen) until the model is in."""
        yield Header()
        with Middle(), Center():
            yield LoadingIndicator(id="loading")
            yield Static("Loading ...", id="progress")
        yield Footer(compact=True)

    def on_mount(self) -> None:
        """Start loading."""
        self.load()

    @work(thread=True, exclusive=True, exit_on_error=False, group="load")
    def load(self) -> None:
        """Read the source and boot the engine, off the UI thread."""
        args = self.args
        self.post_message(LoadProgress(f"Reading {args.source or 'this host'} ..."))
        try:
            model = TuiModel.load(
                args.source,
                kernel=args.kernel,
                cpu=args.cpu,
                cmdline=args.cmdline,
                iommu=args.iommu,
                fmt=args.input_format,
            )
        except Exception as exc:
            self.post_message(LoadFailed(str(exc) or type(exc).__name__))
            return
        self.post_message(ModelLoaded(model))

    async def loaded(self) -> None:
        """Wait until the load worker has delivered a model or failed.

        For headless drivers (tests, screenshots, benchmarks, the demo): just
        after ``run_test`` starts, the worker may not have started yet, so
        ``workers.wait_for_complete()`` alone can return before anything loaded.
        """
        while self.model is None and self.load_error is None:
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
        """The model is in: show the topology screen (or refresh after a reload)."""
        first = self.model is None
        self.model = message.model
        self.load_error = None
        if first:
            self.switch_mode("topology")
        self.model_changed()
        for note in message.model.notes[:2]:
            self.notify(note, timeout=8)

    def on_load_failed(self, message: LoadFailed) -> None:
        """Say what went wrong; q quits."""
        self.load_error = message.text
        for widget in self.query("#loading"):
            widget.display = False
        self._progress(f"Cannot load: {message.text}\nPress q to quit.")

    # -- changes ------------------------------------------------------------------

    def model_changed(self) -> None:
        """Call after every change to the model: every screen redraws."""
        self._reload_armed = False
        self.model_version += 1
        if self.model is not None:
            target = self.model.session.target
            self.sub_title = (
                f"{self.model.topology.name} - kernel {target.version}"
                + assumed_suffix(self.model.topology)
            )

    # -- actions ------------------------------------------------------------------

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        """Screen keys do nothing until something is loaded."""
        if action in ("show", "reload") and self.model is None:
            return None
        return True

    def action_show(self, mode: str) -> None:
        """Switch to a main screen."""
        if self.current_mode != mode:
            self.switch_mode(mode)

    def action_help(self) -> None:
        """Keys and what each screen shows."""
        screen = self.screen
        self.push_screen(HelpScreen(screen))

    def action_reload(self) -> None:
        """Read the source again (this host's /sys when it is live).

        A reload starts from the source as read, so it drops what-if edits;
        with edits in place the first ``r`` only warns and a second one reloads.
        """
        edits = len(self.model.edits) if self.model is not None else 0
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

    def action_toggle_theme(self) -> None:
        """Switch between the dark and the light theme."""
        self.theme = "textual-light" if self.theme == "textual-dark" else "textual-dark"

    def get_system_commands(self, screen: Screen[object]) -> Iterable[SystemCommand]:
        """Every action in the command palette."""
        yield from super().get_system_commands(screen)
        if self.model is None:
            return
        for mode, key, label, text in SCREENS:
            yield SystemCommand(f"{label} screen ({key})", text, lambda m=mode: self.action_show(m))
        yield SystemCommand("Help (?)", "Keys and what each screen shows", self.action_help)
        yield SystemCommand("Reload (r)", "Read the source again", self.action_reload)
        yield SystemCommand("Light or dark theme (d)", "Switch the theme", self.action_toggle_theme)
        extra = getattr(screen, "palette_commands", None)
        if callable(extra):
            yield from extra()


def make_app(args: TuiArgs | None = None) -> P2PViewApp:
    """The one place the app is built (CLI, tests, snapshots, screenshots)."""
    return P2PViewApp(args)


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
