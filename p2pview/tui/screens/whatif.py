"""The what-if screen: change ACS, IOMMU, command line, CPU, host-bridge IDs or kernel.

Three tabs hold the edits (ACS bits; the platform: IOMMU, kernel, CPU and
the ACS command-line parameters with the boot lines they print; the host
bridges' IDs against the whitelist). Each edit is a function from one
immutable analysis to the next (:mod:`p2pview.tui.analysis`), run in a
worker; the app's ``whatif`` gets the result, and each screen recomputes
when it is next shown. The changes pane lists the edits, how many pairs changed
against the original, and the most relevant of them (enter explains one).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable
from functools import partial
from pathlib import Path

import numpy as np
from textual import work
from textual.app import ComposeResult, SystemCommand
from textual.binding import Binding
from textual.containers import Container, Horizontal, Vertical, VerticalScroll
from textual.content import Content
from textual.message import Message
from textual.widgets import (
    Button,
    Header,
    Input,
    Label,
    OptionList,
    Select,
    Static,
    TabbedContent,
    TabPane,
)
from textual.widgets.option_list import Option
from textual.worker import get_current_worker

from p2pview.kernel.iommu_group import (
    GroupReport,
    IommuGroups,
    group_report,
    iommu_groups_exist,
    pci_device_groups,
)
from p2pview.model import IommuMode
from p2pview.model.errors import InputError
from p2pview.session import CpuChoice, EngineConfig, Session
from p2pview.tui.analysis import (
    Edit,
    WhatIf,
    set_cmdline,
    set_cpu,
    set_host_bridge_ids,
    set_iommu,
    set_kernel,
    toggle_acs_bit,
)
from p2pview.tui.edits import EditFinished, Step, run_step
from p2pview.tui.failures import failure_text
from p2pview.tui.presenters.explain_content import MUTED, Names
from p2pview.tui.presenters.whatif_changes import (
    ChangedPair,
    change_prompt,
    changes_in,
    relevant_changes,
)
from p2pview.tui.presenters.whatif_groups import group_lines
from p2pview.tui.presenters.whatif_platform import (
    CPU_PRESETS,
    HostBridgeRow,
    cpu_choice,
    cpu_text,
    host_bridge_detail,
    host_bridge_header,
    host_bridge_prompt,
    host_bridge_rows,
    kernel_choices,
    parse_ids,
    whitelist_presets,
)
from p2pview.tui.screens.base import ModelScreen
from p2pview.tui.verdicts import QUICK_CELLS, Comparison
from p2pview.tui.widgets.footer import AppFirstFooter
from p2pview.tui.widgets.whatif_acs import AcsToggleList, acs_rows, header_line
from p2pview.tui.widgets.whatif_save import DEFAULT_SAVE_PATH, SaveDialog

#: How many changed pairs the changes pane lists.
CHANGED_PAIRS_SHOWN = 30
#: How many edits the changes pane lists (latest first).
EDITS_SHOWN = 12

IOMMU_CHOICES = (
    ("on: translated; ACS as an IOMMU driver enables it", "on"),
    ("off: ACS back to the firmware values", "off"),
)


class ChangesFound(Message):
    """The changed pairs of a large topology, counted off the UI thread."""

    def __init__(
        self,
        comparison: Comparison,
        total: int,
        changes: list[ChangedPair],
        groups: GroupReport | None,
    ) -> None:
        super().__init__()
        self.comparison = comparison
        self.total = total
        self.changes = changes
        self.groups = groups


def _field(label: str) -> Label:
    return Label(Content(label), classes="whatif-label")


class WhatIfScreen(ModelScreen):
    """Edits to the loaded topology and platform, and what they changed."""

    HELP = """\
Change what the kernel sees and watch every verdict follow. Each edit builds
a new topology and boots the modelled kernel on it again; screens 1-3 and 5
recompute at once, and changed verdicts are compared with the original.

- **ACS** (`a`): every function with an ACS capability. left/right pick RR, CR
  or EC in the highlighted row, space or enter flips it (a click on a bit
  flips it too). These and `ctrl` are the Control register before the
  kernel's command-line parameters: as firmware left it, or as the IOMMU
  driver set it (`pci_std_enable_acs()`). `cmdline` is the register after
  `pci=disable_acs_redir=` and `pci=config_acs=` (`same`: they left it), and
  `redirect` the bits `pci_bridge_has_acs_redir()` will see. `config_acs=`
  also takes the bits outside its mask from the firmware value (Linux
  6.12.117, drivers/pci/pci.c, `__pci_config_acs()`), so it can undo what the
  IOMMU driver enabled; the row says so. `-` is a bit the capability does not
  implement. `*` marks edited rows.
- **Platform** (`k`): the IOMMU (`i` flips it; on sets ACS on every capable
  port as `pci_std_enable_acs()` does, off puts the firmware values back), the
  kernel release (one per era, and the releases where the ACS parameters
  changed), the CPU (what `cpu_supports_p2pdma()` checks), and the kernel
  command line: edit `pci=disable_acs_redir=` or `pci=config_acs=` and press
  enter; the boot lines the kernel prints for them are shown below.
- **Host bridges** (`h`): for each root bus, the function whose IDs the
  whitelist compares; type new `vendor:device` IDs and press enter, or pick a
  row of this kernel's whitelist.

The changes pane lists the edits (latest first), how many pairs changed
against the original and the most relevant (p2pmem providers and endpoints
first); enter on one explains it. Below the edits: what they did to the IOMMU
groups, formed as `pci_device_group()` (drivers/iommu/iommu.c) forms them
(ACS SV|RR|CR|UF on the path up, DMA aliases of PCIe-to-PCI bridges, functions
of one slot, the ACS quirks of drivers/pci/quirks.c). `grp N` on screen 1
stays the number the source read: the kernel numbers groups in the order it
adds functions. When p2pview's grouping of the source as loaded is not the one
it read (a quirk or IOMMU driver it does not model), the pane says so instead.
`u` undoes the last edit, `R` (or ctrl+r)
twice drops them all, `y` copies the suggested `pci=disable_acs_redir=` line,
`w` (or ctrl+s) saves the edited topology as a TOML file that p2pview loads
like any other. The header says EDITED while edits are in place.
"""

    BINDINGS = [
        Binding("i", "toggle_iommu", "IOMMU"),
        Binding("u", "undo", "Undo"),
        Binding("R,ctrl+r", "reset", "Reset", key_display="R"),
        Binding("w,ctrl+s", "save", "Save", key_display="w"),
        Binding("a", "show_tab('tab-acs')", "ACS tab", show=False),
        Binding("k", "show_tab('tab-platform')", "Platform tab", show=False),
        Binding("h", "show_tab('tab-hosts')", "Host bridges tab", show=False),
    ]

    HORIZONTAL_BREAKPOINTS = [(0, "-narrow"), (110, "-wide")]
    AUTO_FOCUS = "#acs-list"

    def __init__(self) -> None:
        super().__init__()
        self._shown_session: Session | None = None
        self._shown_cmdline: str | None = None
        self._host_rows: list[HostBridgeRow] = []
        self._changes: list[ChangedPair] = []
        #: What the edits did to the IOMMU groups (``None``: no groups either side).
        self._groups: GroupReport | None = None
        #: The groups of the source as loaded, made once per loaded session.
        self._groups_before: tuple[Session, IommuGroups] | None = None
        #: The comparison whose changed pairs a worker counts (or will, once shown).
        self._counting: Comparison | None = None
        self._count_started: Comparison | None = None
        self._suggestion: str | None = None
        self._pending: deque[tuple[Step, str | None]] = deque()
        #: An edit is running in a worker (more wait in ``_pending``).
        self.busy = False
        self.save_path = DEFAULT_SAVE_PATH
        #: The session a first ``R`` warned about (a second ``R`` on it resets).
        self._reset_armed: Session | None = None
        #: Each Select's options as last set (kernel releases, whitelist presets).
        self._select_options: dict[str, object] = {}

    def compose(self) -> ComposeResult:
        """Status line, the edit tabs, the changes pane."""
        yield Header()
        yield Static(id="whatif-status")
        with Container(id="whatif-main"):
            with TabbedContent(id="whatif-tabs", initial="tab-acs"):
                with TabPane("ACS", id="tab-acs"):
                    yield Static(id="acs-header")
                    yield AcsToggleList(id="acs-list")
                    yield Static(
                        Content(
                            "left/right pick a bit, space flips it.  * edited.  ctrl: before the"
                            " kernel command line; cmdline: after it (same: unchanged).  ? says"
                            " more."
                        ),
                        id="acs-hint",
                    )
                with TabPane("Platform", id="tab-platform"), VerticalScroll(id="platform-body"):
                    with Horizontal(classes="whatif-field"):
                        yield _field("IOMMU")
                        yield Select(
                            IOMMU_CHOICES,
                            id="iommu-select",
                            compact=True,
                            prompt="as loaded",
                        )
                    with Horizontal(classes="whatif-field"):
                        yield _field("Kernel")
                        yield Select(
                            self._kernel_options(),
                            value=str(self.whatif.session.target.version),
                            id="kernel-select",
                            compact=True,
                            allow_blank=False,
                        )
                    with Horizontal(classes="whatif-field"):
                        yield _field("CPU")
                        yield Select(
                            [(Content(label), spec) for label, spec in CPU_PRESETS],
                            id="cpu-select",
                            compact=True,
                            prompt="as loaded",
                        )
                    with Horizontal(classes="whatif-field"):
                        yield _field("Command line")
                        yield Input(
                            id="cmdline-input",
                            compact=True,
                            placeholder="pci=disable_acs_redir=... or pci=config_acs=...",
                        )
                    yield Static(
                        Content(
                            "enter applies.  pci=disable_acs_redir=<dev>[;<dev>...]"
                            "  pci=config_acs=<mask>@<dev>[;...]"
                        ),
                        id="cmdline-hint",
                    )
                    yield Button(
                        Content(""), id="suggestion-button", compact=True, variant="primary"
                    )
                    yield Static(id="cpu-status")
                    yield Static(id="boot-messages")
                with TabPane("Host bridges", id="tab-hosts"):
                    yield Static(host_bridge_header(), id="hb-header")
                    yield OptionList(id="hb-list", compact=True)
                    with Horizontal(classes="whatif-field"):
                        yield _field("IDs")
                        yield Input(id="hb-ids", compact=True, placeholder="vendor:device, hex")
                    with Horizontal(classes="whatif-field"):
                        yield _field("Whitelist row")
                        yield Select(
                            [], id="hb-preset", compact=True, prompt="pick a row to use its IDs"
                        )
                    yield Static(id="hb-detail")
            with Vertical(id="whatif-changes"), Horizontal(id="changes-columns"):
                with Vertical(id="changes-pairs"):
                    yield Static(id="changes-count")
                    yield OptionList(id="changes-list", compact=True)
                yield Static(id="changes-edits")
        yield AppFirstFooter()

    def _kernel_options(self) -> list[tuple[Content, str]]:
        version = self.whatif.session.target.version
        return [(Content(label), value) for label, value in kernel_choices(version)]

    def on_mount(self) -> None:
        """Titles that do not change."""
        self.query_one("#whatif-changes", Vertical).border_title = "Changes"

    # -- redraw -----------------------------------------------------------------------

    def refresh_model(self) -> None:
        """Redraw everything, once per new session (edits, undo, reset, reload)."""
        session = self.whatif.session
        if self._shown_session is session:
            return
        self._shown_session = session
        self._show_status()
        self._show_acs()
        self._show_platform()
        self._show_hosts()
        self._show_changes()
        self.refresh_bindings()

    def refresh_selection(self) -> None:
        """The explain screen's pair changed: so may the suggested parameter."""
        self._show_suggestion()

    def _show_status(self) -> None:
        session = self.whatif.session
        plat = session.topology.platform
        target = session.target
        cpu_ok = session.state.cpu_supports
        parts: list[str | tuple[str, str]] = [
            ("IOMMU ", MUTED),
            plat.iommu.value,
            ("  CPU ", MUTED),
            cpu_text(plat),
            ("  cpu_supports_p2pdma() ", MUTED),
            ("true" if cpu_ok else "false", "$text-success" if cpu_ok else "$text-warning"),
            ("  kernel ", MUTED),
            f"{target.version} ({target.profile.title})",
        ]
        if self.busy:
            parts.insert(0, ("recomputing ...  ", "$text-warning bold"))
        self.query_one("#whatif-status", Static).update(Content.assemble(*parts))

    def _show_acs(self) -> None:
        acs_list = self.query_one("#acs-list", AcsToggleList)
        acs_list.show_rows(acs_rows(self.whatif))
        header = self.query_one("#acs-header", Static)
        if acs_list.rows:
            header.update(header_line(acs_list.name_width))
        else:
            header.update(
                Content("No function in this topology has an ACS capability (or it is unknown).")
            )

    def _show_platform(self) -> None:
        session = self.whatif.session
        plat = session.topology.platform
        target = session.target
        iommu = self.query_one("#iommu-select", Select)
        kernel = self.query_one("#kernel-select", Select)
        cpu = self.query_one("#cpu-select", Select)
        with self.prevent(Select.Changed):
            if plat.iommu is IommuMode.TRANSLATED:
                iommu.value = "on"
            elif plat.iommu is IommuMode.OFF:
                iommu.value = "off"
            else:
                iommu.prompt = f"{plat.iommu.value} (as loaded)"
                iommu.clear()
            releases = kernel_choices(target.version)
            if releases != self._select_options.get("kernel"):
                # Select.set_options() rebuilds its overlay: only when the list changed
                self._select_options["kernel"] = releases
                kernel.set_options(self._kernel_options())
            kernel.value = str(target.version)
            choice = cpu_choice(plat)
            if choice is None:
                cpu.prompt = f"{cpu_text(plat)} (as loaded)"
                cpu.clear()
            else:
                cpu.value = choice
        if plat.cmdline != self._shown_cmdline:
            self._shown_cmdline = plat.cmdline
            self.query_one("#cmdline-input", Input).value = plat.cmdline
        self._show_suggestion()
        cpu_ok = session.state.cpu_supports
        self.query_one("#cpu-status", Static).update(
            Content.assemble(
                ("cpu_supports_p2pdma(): ", MUTED),
                ("true" if cpu_ok else "false", "$text-success" if cpu_ok else "$text-warning"),
                (
                    " (x86 AMD family >= 0x17 only, v5.9+; when true, pairs through the host"
                    " bridge skip the whitelist)",
                    MUTED,
                ),
            )
        )
        lines: list[Content] = [
            Content.assemble(
                ("ACS parameters in this release: ", MUTED), Content(target.acs_params.value)
            )
        ]
        boot = session.state.boot_messages
        if boot:
            lines.append(Content.styled("At boot, from the ACS command-line parameters:", "bold"))
            lines.extend(Content("  " + m.dmesg()) for m in boot)
        else:
            lines.append(Content.styled("No boot lines from the ACS parameters.", MUTED))
        self.query_one("#boot-messages", Static).update(Content("\n").join(lines))

    def _show_suggestion(self) -> None:
        """Offer the kernel's ``pci=disable_acs_redir=`` for the explain screen's pair."""
        button = self.query_one("#suggestion-button", Button)
        whatif = self.whatif
        self._suggestion = None
        pair = self.selection.pair
        if pair is not None and pair[0] in whatif.topology and pair[1] in whatif.topology:
            verdict = whatif.verdict(*pair)
            if verdict.acs_list_text:
                self._suggestion = f"pci=disable_acs_redir={verdict.acs_list_text}"
        button.display = self._suggestion is not None
        if self._suggestion is not None:
            button.label = Content(f"Add {self._suggestion}")
            button.tooltip = Content(
                "The parameter the kernel suggests for the explain screen's pair"
            )

    def _show_hosts(self) -> None:
        names = Names(self.whatif.topology)
        self._host_rows = host_bridge_rows(self.whatif)
        hb_list = self.query_one("#hb-list", OptionList)
        keep = hb_list.highlighted or 0
        hb_list.set_options(Option(host_bridge_prompt(row, names)) for row in self._host_rows)
        preset = self.query_one("#hb-preset", Select)
        presets = whitelist_presets(self.whatif)
        if presets != self._select_options.get("presets"):
            self._select_options["presets"] = presets
            with self.prevent(Select.Changed):
                preset.set_options([(Content(label), ids) for label, ids in presets])
        if self._host_rows:
            hb_list.highlighted = min(keep, len(self._host_rows) - 1)
        self._show_host_detail()

    def _highlighted_host(self) -> HostBridgeRow | None:
        index = self.query_one("#hb-list", OptionList).highlighted
        if index is None or not 0 <= index < len(self._host_rows):
            return None
        return self._host_rows[index]

    def _show_host_detail(self) -> None:
        row = self._highlighted_host()
        ids = self.query_one("#hb-ids", Input)
        detail = self.query_one("#hb-detail", Static)
        preset = self.query_one("#hb-preset", Select)
        if row is None:
            ids.value = ""
            detail.update(Content("No host bridges."))
            return
        ids.value = row.ids or ""
        with self.prevent(Select.Changed):
            values = {value for _label, value in whitelist_presets(self.whatif)}
            if row.ids in values:
                preset.value = row.ids
            else:
                preset.clear()
        detail.update(host_bridge_detail(row, self.whatif, Names(self.whatif.topology)))

    def _show_changes(self) -> None:
        model = self.whatif
        comparison = model.comparison
        every = np.arange(comparison.after.functions, dtype=np.intp)
        self.workers.cancel_group(self, "whatif-count")  # a count for an earlier edit
        if not model.edits or comparison.cost(every, every) <= QUICK_CELLS:
            self._counting = None
            edited = model.edits
            self._groups = (
                self._group_report(model.original.session, model.session) if edited else None
            )
            self._show_count(*relevant_changes(model, CHANGED_PAIRS_SHOWN))
        else:
            self._groups = None
            self._show_count(None, [])
            self._counting = comparison
            if self.is_current:
                self._count_started = comparison
                self._count_changes(comparison, model.original.session, model.session)

    def _group_report(self, original: Session, edited: Session) -> GroupReport | None:
        """What the edits did to the IOMMU groups; ``None`` when neither side has any.

        Safe in a worker: the cache holds one tuple, replaced whole.
        """
        if not (iommu_groups_exist(original.topology) or iommu_groups_exist(edited.topology)):
            return None
        cached = self._groups_before
        if cached is None or cached[0] is not original:
            cached = (original, pci_device_groups(original.state))
            self._groups_before = cached
        return group_report(original.state, edited.state, cached[1])

    def on_screen_resume(self) -> None:
        """Count what a background edit changed, now that it is shown."""
        comparison = self._counting
        if (
            comparison is not None
            and comparison is self.whatif.comparison
            and comparison is not self._count_started
        ):
            self._count_started = comparison
            self._count_changes(comparison, self.whatif.original.session, self.whatif.session)

    @work(thread=True, exclusive=True, exit_on_error=False, group="whatif-count")
    def _count_changes(self, comparison: Comparison, original: Session, session: Session) -> None:
        """Count the changed pairs of a large topology a block at a time (stops when cancelled)."""
        worker = get_current_worker()
        total, changes = changes_in(
            comparison, session.topology, CHANGED_PAIRS_SHOWN, lambda: worker.is_cancelled
        )
        if worker.is_cancelled:
            return
        groups = self._group_report(original, session)
        if not worker.is_cancelled:
            self.post_message(ChangesFound(comparison, total, changes, groups))

    def on_changes_found(self, message: ChangesFound) -> None:
        """Show a count unless another edit came since."""
        if message.comparison is self.whatif.comparison and message.comparison is self._counting:
            self._counting = None
            self._groups = message.groups
            self._show_count(message.total, message.changes)

    def _show_count(self, total: int | None, changes: list[ChangedPair]) -> None:
        """The count line, the changed pairs and the edits; ``total`` ``None``: being counted."""
        model = self.whatif
        self._changes = changes
        cells = model.verdicts.pairs
        count = self.query_one("#changes-count", Static)
        if not model.edits:
            count.update(
                Content.styled("No what-if edits yet: after each, every view recomputes.", MUTED)
            )
        elif total is None:
            count.update(
                Content.styled(
                    f"Counting and listing the pairs the edits changed among {cells:,} ...",
                    "$text-warning",
                )
            )
        elif total == 0:
            count.update(
                Content.styled(f"No pair changed against the original ({cells:,} pairs).", MUTED)
            )
        else:
            count.update(
                Content.assemble(
                    (f"{total:,}", "$text-warning bold"),
                    f" of {cells:,} pairs changed against the original",
                    (":" if changes else ".", ""),
                )
            )
        names = Names(model.topology)
        changes_list = self.query_one("#changes-list", OptionList)
        changes_list.set_options(Option(change_prompt(c, names)) for c in changes)
        changes_list.display = bool(changes)
        pane = self.query_one("#whatif-changes", Vertical)
        if model.edits:
            plural = "edit" if len(model.edits) == 1 else "edits"
            pane.border_subtitle = Content(f"{len(model.edits)} {plural}; last: {model.edits[-1]}")
        else:
            pane.border_subtitle = ""
        edits = self.query_one("#changes-edits", Static)
        if model.edits:
            numbered = list(enumerate(model.edits, 1))[::-1][:EDITS_SHOWN]
            lines = [Content.styled("Edits, latest first:", "bold")]
            lines.extend(Content.assemble((f"{n:>2}. ", MUTED), Content(e)) for n, e in numbered)
            if len(model.edits) > EDITS_SHOWN:
                lines.append(
                    Content.styled(f"    ... {len(model.edits) - EDITS_SHOWN} earlier", MUTED)
                )
            edits.update(Content("\n").join([*lines, *group_lines(self._groups)]))
        else:
            edits.update(
                Content.styled(
                    "Toggle ACS bits, the IOMMU, the kernel, the CPU, the command line or"
                    " host-bridge IDs.",
                    MUTED,
                )
            )

    # -- edits ------------------------------------------------------------------------

    def queue_edit(self, change: Edit, done: str | None = None) -> None:
        """Queue one what-if edit; it runs in a worker, then the screens recompute."""
        self._step(lambda whatif: whatif.apply(change), done)

    def _step(self, change: Step, done: str | None = None) -> None:
        """Queue one step (an edit, undo or reset) to run after those before it."""
        self._pending.append((change, done))
        if not self.busy:
            self._start_next_edit()

    def _start_next_edit(self) -> None:
        if not self._pending:
            self.busy = False
            self._show_status()
            return
        change, done = self._pending.popleft()
        self.busy = True
        self._show_status()
        self._run_edit(self.whatif, change, done)

    @work(thread=True, group="whatif-edit", exit_on_error=False)
    def _run_edit(self, live: WhatIf, change: Step, done: str | None) -> None:
        """Compute the next analysis from ``live``, off the UI thread."""
        self.post_message(run_step(live, change, done))

    def on_edit_finished(self, message: EditFinished) -> None:
        """Give the app the new analysis (the screens recompute), or say why it failed."""
        if message.live is not self.p2p_app.whatif:
            self._pending.clear()
            self.notify("The source was reloaded: pending what-if edits were dropped.")
        elif message.error is not None:
            self.notify(message.error, severity="error", markup=False)
            self._shown_session = None  # put the controls back as the analysis is
            self.refresh_model()
        elif message.edited is not None:
            self.p2p_app.whatif = message.edited
            if message.done:
                self.notify(message.done, markup=False, timeout=3)
        self._start_next_edit()

    def on_acs_toggle_list_toggle_bit(self, message: AcsToggleList.ToggleBit) -> None:
        """Flip one ACS Control bit."""
        name = message.bit.name or ""
        if not message.implemented:
            dev = self.whatif.topology[message.bdf]
            self.notify(
                f"{message.bdf} does not implement {name} (ACS Capability"
                f" {dev.acs.cap or 0:#06x}): the bit reads 0",
                severity="warning",
                markup=False,
            )
            return
        bdf, bit = message.bdf, int(message.bit)
        self.queue_edit(toggle_acs_bit(bdf, bit))

    def on_select_changed(self, event: Select.Changed) -> None:
        """IOMMU, kernel, CPU or a whitelist row chosen."""
        select_id = event.select.id
        value = event.value
        if value is Select.BLANK or not isinstance(value, str):
            return
        session = self.whatif.session
        plat = session.topology.platform
        if select_id == "iommu-select":
            on = value == "on"
            current = {IommuMode.TRANSLATED: "on", IommuMode.OFF: "off"}.get(plat.iommu)
            if value != current:
                self.queue_edit(set_iommu(on))
        elif select_id == "kernel-select":
            if value != str(session.target.version):
                self._set_kernel(value)
        elif select_id == "cpu-select":
            if value != cpu_choice(plat):
                self._set_cpu(value)
        elif select_id == "hb-preset":
            row = self._highlighted_host()
            if row is not None and row.ids != value:
                self._set_host_ids(row, value)

    def _set_kernel(self, release: str) -> None:
        # parsed here, where the user gave it: a bad release is said at once
        try:
            target = EngineConfig.parse(kernel=release).kernel
        except InputError as exc:
            self.notify(str(exc), severity="error", markup=False)
            return
        assert target is not None
        self.queue_edit(set_kernel(target))

    def _set_cpu(self, spec: str) -> None:
        try:
            cpu = CpuChoice.parse(spec)
        except InputError as exc:
            self.notify(str(exc), severity="error", markup=False)
            return
        self.queue_edit(set_cpu(cpu))

    def _set_host_ids(self, row: HostBridgeRow, text: str) -> None:
        try:
            vendor, device = parse_ids(text)
        except ValueError as exc:
            self.notify(str(exc), severity="error", markup=False)
            return
        root = row.root
        self.queue_edit(set_host_bridge_ids(root, vendor, device))

    def on_input_submitted(self, event: Input.Submitted) -> None:
        """Enter in the command line or a host bridge's IDs applies it."""
        if event.input.id == "cmdline-input":
            event.stop()
            text = event.value.strip()
            if text != self.whatif.topology.platform.cmdline:
                self.queue_edit(set_cmdline(text))
        elif event.input.id == "hb-ids":
            event.stop()
            row = self._highlighted_host()
            if row is not None and event.value.strip() != (row.ids or ""):
                self._set_host_ids(row, event.value)

    def on_button_pressed(self, event: Button.Pressed) -> None:
        """Add the kernel's suggested parameter to the command line."""
        if event.button.id == "suggestion-button" and self._suggestion is not None:
            event.stop()
            current = self.whatif.topology.platform.cmdline
            text = f"{current} {self._suggestion}".strip()
            self.queue_edit(set_cmdline(text))

    def on_option_list_option_highlighted(self, event: OptionList.OptionHighlighted) -> None:
        """A host bridge highlighted: show its IDs and its whitelist check."""
        if event.option_list.id == "hb-list":
            self._show_host_detail()

    def on_option_list_option_selected(self, event: OptionList.OptionSelected) -> None:
        """Enter on a changed pair explains it; on a host bridge, edit its IDs."""
        if event.option_list.id == "changes-list":
            event.stop()
            change = self._changes[event.option_index]
            self.p2p_app.select(pair=(change.provider, change.client))
            self.p2p_app.show("explain")
        elif event.option_list.id == "hb-list":
            event.stop()
            self.query_one("#hb-ids", Input).focus()

    # -- keys -------------------------------------------------------------------------

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        """Undo and reset only with edits to take back."""
        if self.p2p_app.whatif is None:
            return None
        return True

    def action_toggle_iommu(self) -> None:
        """IOMMU on (ACS enabled on every capable port) or off (firmware ACS)."""
        on = self.whatif.topology.platform.iommu not in (
            IommuMode.TRANSLATED,
            IommuMode.PASSTHROUGH,
        )
        self.queue_edit(set_iommu(on))

    def action_undo(self) -> None:
        """Take the last edit back."""
        if not self.whatif.history:
            self.notify("No what-if edit to undo", timeout=3)
            return
        last = self.whatif.edits[-1] if self.whatif.edits else None
        self._step(WhatIf.undone, f"Undone: {last}" if last else "Undone")

    def action_reset(self) -> None:
        """Drop every edit: back to the topology and kernel as loaded.

        Like ``r`` (reload), the first press only says what would be dropped;
        a second one drops it (and nothing undoes a reset).
        """
        count = len(self.whatif.edits)
        plural = "edit" if count == 1 else "edits"
        if not count and not self.whatif.history:
            self.notify("No what-if edits to reset", timeout=3)
            return
        if self._reset_armed is not self.whatif.session:
            self._reset_armed = self.whatif.session
            self.notify(
                f"Reset drops {count} what-if {plural} and cannot be undone. Press R again to"
                " reset, u to undo only the last, or w to save them first.",
                severity="warning",
                timeout=6,
            )
            return
        self._reset_armed = None
        self._step(WhatIf.reset, f"Reset: {count} {plural} dropped")

    def action_save(self) -> None:
        """Save the edited topology as a TOML topology file."""

        def chosen(path: Path | None) -> None:
            if path is None:
                return
            self.save_path = str(path)
            try:
                path.write_text(self.whatif.current.toml(), encoding="utf-8")
            except Exception as exc:  # OSError, and a bug says it is one
                self.notify(
                    f"Cannot save {path}: {failure_text(exc)}", severity="error", markup=False
                )
                return
            self.notify(f"Saved {path}", markup=False)

        self.app.push_screen(SaveDialog(self.save_path, len(self.whatif.edits)), chosen)

    def action_show_tab(self, tab: str) -> None:
        """Show one of the edit tabs and focus its first control."""
        self.query_one("#whatif-tabs", TabbedContent).active = tab
        first = {
            "tab-acs": "#acs-list",
            "tab-platform": "#iommu-select",
            "tab-hosts": "#hb-list",
        }[tab]
        self.query_one(first).focus()

    def palette_commands(self) -> Iterable[SystemCommand]:
        """What-if edits by name in the command palette."""
        yield SystemCommand("What-if: undo (u)", "Take the last edit back", self.action_undo)
        yield SystemCommand("What-if: reset (R)", "Drop every edit", self.action_reset)
        yield SystemCommand(
            "What-if: save (w)", "Save the edited topology as TOML", self.action_save
        )
        yield SystemCommand(
            "What-if: IOMMU on/off (i)",
            "Flip the IOMMU and the ACS it enables",
            self.action_toggle_iommu,
        )
        for label, release in kernel_choices(self.whatif.session.target.version):
            yield SystemCommand(
                f"What-if: kernel {label}", "Model this release", partial(self._set_kernel, release)
            )
        for label, spec in CPU_PRESETS:
            yield SystemCommand(
                f"What-if: CPU {label}", "Change the CPU", partial(self._set_cpu, spec)
            )
