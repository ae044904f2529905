"""The what-if ACS list: every function with an ACS capability, its RR/CR/EC as toggles.

One row per function: the three redirect bits of its ACS Control register
as the source gives it (before the kernel's command-line parameters), the
register value, the value after the kernel's ACS command-line parameters
when they changed it (``cmdline``; ``same`` when they did not), and
the redirect bits ``pci_bridge_has_acs_redir()`` will see. left/right pick a
bit in the highlighted row, space or enter flips it; a click on a bit flips
that bit. Bits the capability does not implement cannot be set (the
hardware ties them to 0).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import ClassVar

from textual import events
from textual.binding import Binding, BindingType
from textual.content import Content
from textual.message import Message
from textual.reactive import reactive
from textual.widgets import OptionList
from textual.widgets.option_list import Option

from p2pview.kernel.profiles import AcsParamForm
from p2pview.model import BDF, AcsBits, AcsPresence, acs_bit_names
from p2pview.tui.analysis import WhatIf
from p2pview.tui.presenters.explain_content import MUTED, REDIRECT, Names

#: The bits a row shows as toggles, left to right.
TOGGLE_BITS: tuple[AcsBits, ...] = (AcsBits.RR, AcsBits.CR, AcsBits.EC)

#: Cells of one bit toggle (``[x]RR``) and the gap after it.
BIT_CELL = 5
BIT_GAP = 1
EDITED_MARK = "$text-warning bold"


@dataclass(frozen=True)
class AcsRow:
    """One ACS-capable function as the list shows it.

    ``ctrl`` is the Control register the what-if edits act on; ``boot_ctrl``
    what the kernel leaves after the command-line parameters (``None`` when
    not known); ``redirect`` the RR|CR|EC bits the walk will see; ``edited``
    whether ``ctrl`` differs from the source's.
    """

    bdf: BDF
    name: str
    what: str
    cap: int
    ctrl: int
    boot_ctrl: int | None
    redirect: int
    params: tuple[str, ...]
    edited: bool
    #: What the parameters did beyond the bits they name (``config_acs=`` restores
    #: firmware bits), or "".
    side_effect: str = ""

    def implements(self, bit: int) -> bool:
        """Whether the capability has this bit (unimplemented Control bits read 0)."""
        return bool(self.cap & bit)


def acs_rows(whatif: WhatIf) -> list[AcsRow]:
    """Every function of the edited topology with an ACS capability, in address order."""
    topo = whatif.topology
    original = whatif.original_topology
    names = Names(topo)
    state = whatif.session.state
    form = whatif.session.target.acs_params
    rows = []
    for dev in topo.devices:
        acs = dev.acs
        if acs.presence is not AcsPresence.PRESENT or acs.cap is None:
            continue
        ctrl = acs.ctrl or 0
        before = original.get(dev.bdf)
        edited = before is None or (before.acs.ctrl or 0) != ctrl
        eff = state.acs[dev.bdf]
        side_effect = ""
        if "config_acs" in eff.params:
            side_effect = config_acs_effect(form, acs.firmware_ctrl or 0)
        rows.append(
            AcsRow(
                bdf=dev.bdf,
                name=names.bdf(dev.bdf),
                what=names.describe(dev.bdf),
                cap=acs.cap,
                ctrl=ctrl,
                boot_ctrl=eff.ctrl,
                redirect=eff.redirect,
                params=eff.params,
                edited=edited,
                side_effect=side_effect,
            )
        )
    return rows


def config_acs_effect(form: AcsParamForm, firmware: int) -> str:
    """What ``pci=config_acs=`` does to the bits it does not set (``__pci_config_acs()``)."""
    if form is AcsParamForm.CONFIG_ACS_FIXED:
        # Linux 6.12.117, drivers/pci/pci.c: caps->ctrl = (caps->fw_ctrl & ~mask) | (flags & mask)
        return (
            f"config_acs: bits outside its mask back to firmware's {firmware:#06x},"
            " undoing what the IOMMU driver and disable_acs_redir= set there"
        )
    # v6.11 as merged: ctrl = (ctrl & ~mask) | (fw_ctrl & mask); ctrl |= flags
    return f"config_acs: masked bits from firmware's {firmware:#06x}, then its 1 flags set"


def bit_offset(name_width: int, index: int) -> int:
    """The first cell of toggle ``index`` in a row."""
    return 2 + name_width + 2 + index * (BIT_CELL + BIT_GAP)


def header_line(name_width: int) -> Content:
    """Column titles aligned with :func:`row_prompt`."""
    bits = "".join(f"{'':3}{b.name:<{BIT_CELL - 3}}{'':{BIT_GAP}}" for b in TOGGLE_BITS)
    text = f"  {'function':<{name_width}}  {bits} ctrl    cmdline  redirect  device"
    return Content.styled(text, "bold")


def row_prompt(row: AcsRow, name_width: int, cursor_bit: int | None) -> Content:
    """One row: edited mark, address, the three toggles, registers, redirect, device."""
    parts: list[str | tuple[str, str]] = [
        ("* " if row.edited else "  ", EDITED_MARK),
        (f"{row.name:<{name_width}}", "bold"),
        "  ",
    ]
    for index, bit in enumerate(TOGGLE_BITS):
        name = bit.name or ""
        if not row.implements(bit):
            cell, style = f"{'-':^{BIT_CELL}}", MUTED
        elif row.ctrl & bit:
            cell, style = f"[x]{name}", REDIRECT
        else:
            cell, style = f"[ ]{name}", ""
        if index == cursor_bit:
            style = f"{style} reverse".strip()
        parts.append((cell, style))
        parts.append(" " * BIT_GAP)
    parts.append(f" {row.ctrl:#06x}  ")
    if row.boot_ctrl is not None and row.boot_ctrl != row.ctrl:
        parts.append((f"{row.boot_ctrl:#06x}", "$text-warning"))
    else:
        parts.append(("  same", MUTED))
    parts.append("   ")
    if row.redirect:
        parts.append((f"{' '.join(acs_bit_names(row.redirect)):<8}", REDIRECT))
    else:
        parts.append((f"{'none':<8}", "$text-success"))
    parts.append(("  " + row.what, MUTED))
    if row.params:
        parts.append((f"  ({', '.join(row.params)})", "$text-warning"))
    if row.side_effect:
        parts.append((f"  {row.side_effect}", "$text-warning"))
    return Content.assemble(*parts)


class AcsToggleList(OptionList):
    """ACS-capable functions with RR/CR/EC toggles; posts :class:`ToggleBit`."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("left", "bit(-1)", "Bit left", show=False),
        Binding("right", "bit(1)", "Bit right", show=False),
        Binding("space", "toggle_bit", "Toggle bit"),
    ]

    DEFAULT_CSS = """
    AcsToggleList {
        text-wrap: nowrap;
        text-overflow: ellipsis;
    }
    """

    bit_index: reactive[int] = reactive(0)

    class ToggleBit(Message):
        """The user asked to flip one ACS Control bit of one function."""

        def __init__(self, bdf: BDF, bit: AcsBits, implemented: bool) -> None:
            super().__init__()
            self.bdf = bdf
            self.bit = bit
            self.implemented = implemented

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id, compact=True)
        self.rows: list[AcsRow] = []
        self.name_width = len("function")
        self._cursor_row: int | None = None

    def show_rows(self, rows: Sequence[AcsRow]) -> None:
        """Show ``rows``, redrawing only those that changed when the functions are the same."""
        rows = list(rows)
        width = max([len("function"), *(len(r.name) for r in rows)])
        same_functions = width == self.name_width and [r.bdf for r in rows] == [
            r.bdf for r in self.rows
        ]
        old = self.rows
        self.rows = rows
        self.name_width = width
        if same_functions:
            for index, (before, after) in enumerate(zip(old, rows, strict=True)):
                if before != after:
                    self.replace_option_prompt_at_index(index, self._prompt(index))
            return
        keep = self.highlighted
        self.set_options(Option(self._prompt(i)) for i in range(len(rows)))
        if rows:
            self.highlighted = min(keep or 0, len(rows) - 1)

    def _prompt(self, index: int) -> Content:
        cursor = self.bit_index if index == self.highlighted else None
        return row_prompt(self.rows[index], self.name_width, cursor)

    def _redraw(self, index: int | None) -> None:
        if index is not None and 0 <= index < len(self.rows):
            self.replace_option_prompt_at_index(index, self._prompt(index))

    def watch_highlighted(self, highlighted: int | None) -> None:
        """Move the bit cursor to the newly highlighted row."""
        super().watch_highlighted(highlighted)
        previous, self._cursor_row = self._cursor_row, highlighted
        if previous != highlighted:
            self._redraw(previous)
        self._redraw(highlighted)

    def watch_bit_index(self) -> None:
        """Redraw the row holding the bit cursor."""
        self._redraw(self.highlighted)

    def highlighted_row(self) -> AcsRow | None:
        """The row under the cursor."""
        index = self.highlighted
        if index is None or not 0 <= index < len(self.rows):
            return None
        return self.rows[index]

    def action_bit(self, step: int) -> None:
        """Move the bit cursor left or right."""
        self.bit_index = (self.bit_index + step) % len(TOGGLE_BITS)

    def action_toggle_bit(self) -> None:
        """Ask for the bit under the cursor to be flipped."""
        row = self.highlighted_row()
        if row is not None:
            bit = TOGGLE_BITS[self.bit_index]
            self.post_message(self.ToggleBit(row.bdf, bit, row.implements(bit)))

    def action_select(self) -> None:
        """Enter flips the bit under the cursor."""
        self.action_toggle_bit()

    async def _on_click(self, event: events.Click) -> None:
        """A click on a toggle flips it; elsewhere it only moves the cursor."""
        event.prevent_default()  # not OptionList's click, which would select the row
        clicked: int | None = event.style.meta.get("option")
        if clicked is None:
            return
        self.highlighted = clicked
        x = event.x + self.scroll_offset.x - self.gutter.left
        for index in range(len(TOGGLE_BITS)):
            start = bit_offset(self.name_width, index)
            if start <= x < start + BIT_CELL:
                self.bit_index = index
                self.action_toggle_bit()
                return
