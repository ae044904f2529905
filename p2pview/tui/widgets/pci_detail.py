"""The detail pane of the topology screen: one function (or host bridge) in full.

:func:`device_detail` and :func:`host_bridge_detail` build a
:class:`~textual.content.Content` (styles are theme variables; device names
are appended as plain text, never parsed as markup). :class:`PciDetail` is the
scrolling pane that shows it.
"""

from __future__ import annotations

from typing import ClassVar

from textual.binding import Binding, BindingType
from textual.content import Content
from textual.events import Resize
from textual.geometry import Size
from textual.scroll_view import ScrollView
from textual.strip import Strip
from textual.visual import Visual

from p2pview.kernel import PathKind, Verdict, calc_map_type_and_dist
from p2pview.kernel.acs import AcsEffect
from p2pview.kernel.decision import KernelState, whitelist_check
from p2pview.model import (
    ACS_REDIRECT_MASK,
    BDF,
    AcsBits,
    AcsPresence,
    Bar,
    BarKind,
    PciDevice,
    RootBus,
    acs_bit_names,
)
from p2pview.model.units import size_approx
from p2pview.sources.pciids import PciNames, ids_text, known_ids
from p2pview.tui.presenters.pci_labels import (
    PORT_NAMES,
    RowContext,
    bdf_text,
    link_text,
    role_text,
)
from p2pview.tui.presenters.verdict_style import result_style, result_text
from p2pview.views.explain import FACT_NAMES

#: Each ACS bit and what the spec calls it (PCIe r6.0 section 7.7.8).
ACS_BIT_NAMES = {
    AcsBits.SV: "Source Validation",
    AcsBits.TB: "Translation Blocking",
    AcsBits.RR: "P2P Request Redirect",
    AcsBits.CR: "P2P Completion Redirect",
    AcsBits.UF: "Upstream Forwarding",
    AcsBits.EC: "P2P Egress Control",
    AcsBits.DT: "Direct Translated P2P",
}

TITLE = "bold $text-accent"
MUTED = "$foreground-muted"
KEY_WIDTH = 12
YES, NO = "✓", "·"


class _Lines:
    """Content lines built piece by piece."""

    def __init__(self) -> None:
        self.lines: list[Content] = []

    def add(self, *parts: str | Content | tuple[str, str]) -> None:
        self.lines.append(Content.assemble(*parts))

    def field(self, key: str, *parts: str | Content | tuple[str, str]) -> None:
        self.add(("  " + key.ljust(KEY_WIDTH), MUTED), *parts)

    def title(self, text: str, *rest: str | Content | tuple[str, str]) -> None:
        if self.lines:
            self.lines.append(Content(""))
        self.add((text, TITLE), *rest)

    def content(self) -> Content:
        return Content("\n").join(self.lines)


def pair_for(state: KernelState, selected: BDF, peer: BDF) -> tuple[BDF, BDF]:
    """(provider, client) for the selected function and its peer.

    The selected function is the provider unless only the peer has p2pmem:
    the kernel's provider is the function whose memory is used.
    """
    topo = state.topology
    sel, other = topo.get(selected), topo.get(peer)
    if sel is not None and other is not None and sel.p2pmem is None and other.p2pmem is not None:
        return peer, selected
    return selected, peer


def verdict_text(verdict: Verdict) -> Content:
    """``BUS_ADDR, distance 4`` (or the int of v4.20-v5.3), styled by outcome."""
    return Content.styled(result_text(verdict), result_style(verdict))


def _why(ctx: RowContext, verdict: Verdict) -> list[Content]:
    """One or two lines on why the walk ended where it did."""

    def t(bdf: BDF) -> str:
        return bdf_text(bdf, ctx.short_bdfs)

    out: list[Content] = []
    if verdict.path is PathKind.COMMON_UPSTREAM:
        if verdict.provider == verdict.client:
            out.append(Content("a function and itself: the walk stops at once"))
        else:
            common = "?" if verdict.common is None else t(verdict.common)
            out.append(Content(f"common upstream {common}, no ACS redirect"))
    elif verdict.path is PathKind.ACS_REDIRECT:
        redirecting = [c for c in verdict.acs_checks if c.counted and c.redirect]
        where = ", ".join(f"{t(c.device)} ({' '.join(c.bits)})" for c in redirecting)
        common = "?" if verdict.common is None else t(verdict.common)
        out.append(Content.assemble(("ACS redirect", "bold $text-warning"), f" on {where}"))
        out.append(Content(f"below common upstream {common}: via the host bridge"))
    else:
        out.append(Content("no common upstream: via the host bridge"))
    if verdict.path is not PathKind.COMMON_UPSTREAM and verdict.map_type is not None:
        checks = []
        if verdict.cpu_supports is not None:
            checks.append(
                Content.assemble(
                    "CPU check ",
                    ("true", "$text-success") if verdict.cpu_supports else ("false", MUTED),
                )
            )
        for w in verdict.whitelist_checks:
            checks.append(
                Content.assemble(
                    f"whitelist {w.host_bridge} ",
                    ("pass", "$text-success") if w.passed else ("fail", "$text-error"),
                )
            )
        if checks:
            out.append(Content("; ").join(checks))
    if verdict.undetermined:
        out.append(Content.styled(f"undetermined: {verdict.undetermined}", "$text-error"))
    for a in verdict.assumptions:
        out.append(
            Content.styled(
                f"* assumed {FACT_NAMES.get(a.fact, a.fact)} of {a.subject}: {a.value}",
                "$text-error",
            )
        )
    for alt in verdict.alternatives:
        out.append(Content.styled(f"  otherwise {alt.text}", "$text-warning"))
    return out


def _peer_section(lines: _Lines, ctx: RowContext, selected: BDF, peer: BDF | None) -> None:
    if peer is None:
        lines.title("Peer", ("  none: p makes the highlighted function the peer", MUTED))
        return
    topo = ctx.topology
    peer_dev = topo.get(peer)
    if peer_dev is None:
        lines.title("Peer", (f"  {peer} is not in this topology", "$text-error"))
        return
    lines.title(
        "Peer ",
        (bdf_text(peer, ctx.short_bdfs), "bold"),
        " ",
        (role_text(peer_dev, ctx.names), "$text-accent"),
        " ",
        peer_dev.label or ctx.names.short(peer_dev) or peer_dev.ids,
    )
    provider, client = pair_for(ctx.state, selected, peer)
    verdict = calc_map_type_and_dist(ctx.state, provider, client)
    lines.add(
        ("  provider ", MUTED),
        (bdf_text(provider, ctx.short_bdfs), "bold"),
        (" → client ", MUTED),
        (bdf_text(client, ctx.short_bdfs), "bold"),
    )
    lines.add("  ", verdict_text(verdict))
    for why in _why(ctx, verdict):
        lines.add("  ", why)
    lines.add(("  enter: explain this pair · p: another peer", MUTED))


def _bit_row(bit: AcsBits, cap: int | None, ctrl: int | None, eff: int | None) -> Content:
    def mark(value: int | None) -> tuple[str, str]:
        if value is None:
            return ("?", MUTED)
        return (YES, "bold") if value & bit else (NO, MUTED)

    redirect = bool(bit & ACS_REDIRECT_MASK)
    on = eff is not None and bool(eff & bit)
    name_style = "bold $text-warning" if redirect and on else ("" if redirect else MUTED)
    return Content.assemble(
        "  ",
        ((bit.name or "").ljust(3), "bold" if redirect else ""),
        (ACS_BIT_NAMES[bit].ljust(24), name_style),
        ("*" if redirect else " ", "$text-warning"),
        "  ",
        mark(cap),
        "   ",
        mark(ctrl),
        "   ",
        mark(eff),
    )


def _acs_section(lines: _Lines, dev: PciDevice, effect: AcsEffect | None) -> None:
    acs = dev.acs
    if acs.presence is AcsPresence.ABSENT and (effect is None or effect.known):
        lines.title("ACS ", ("no ACS capability: nothing to redirect here", MUTED))
        return
    if acs.presence is AcsPresence.UNKNOWN:
        lines.title("ACS ", ("unknown", "bold $text-error"))
        lines.add(
            "  the extended config space could not be read (read sysfs as root, or load a"
            " capture made as root); the kernel walk is shown assuming no redirect"
        )
        if effect is not None and effect.known:
            lines.add("  the command line settles the redirect bits: ", _redirect(effect.redirect))
        if effect is not None and effect.params:
            lines.field("parameters", ", ".join(effect.params))
        return
    eff_ctrl = None if effect is None else effect.ctrl
    redirect = 0 if effect is None else effect.redirect
    lines.title("ACS ", ("redirect ", ""), _redirect(redirect))
    # the marks of _bit_row sit under the middle letter of each heading
    lines.add(("  " + "bit".ljust(29) + "cap ctl eff", MUTED))
    for bit in AcsBits:
        lines.lines.append(_bit_row(bit, acs.cap, acs.ctrl, eff_ctrl))
    regs = [f"cap {_hex16(acs.cap)}", f"ctl {_hex16(acs.ctrl)}"]
    if acs.fw_ctrl is not None:
        regs.append(f"firmware {_hex16(acs.fw_ctrl)}")
    lines.field("registers", "  ".join(regs))
    lines.field("effective", _hex16(eff_ctrl), ("  (eff: after the command line)", MUTED))
    lines.add(("  * the bits pci_bridge_has_acs_redir() tests", MUTED))
    if effect is not None and effect.params:
        lines.field("parameters", ", ".join(effect.params))


def _redirect(bits: int) -> Content:
    if not bits:
        return Content.styled("none", "$text-success")
    return Content.styled(" ".join(acs_bit_names(bits)), "bold $text-warning")


def _hex16(value: int | None) -> str:
    return "?" if value is None else f"{value:#06x}"


def _bar_name(index: int) -> str:
    if index <= 5:
        return f"BAR{index}"
    if index == 6:
        return "ROM"
    if index <= 12:
        return f"VF BAR{index - 7}"
    return f"window {index - 13}"


def _bar_row(bar: Bar, p2pmem_bar: int | None) -> Content:
    flags = []
    if bar.kind is BarKind.IO:
        flags.append("I/O")
    if bar.is_64bit:
        flags.append("64-bit")
    if bar.prefetchable:
        flags.append("pref")
    parts: list[str | tuple[str, str]] = [
        "  ",
        (_bar_name(bar.index).ljust(6), "bold"),
        f"{bar.start:#x}".ljust(15),
        size_approx(bar.size).rjust(8),
        "  ",
        (" ".join(flags), MUTED),
    ]
    if p2pmem_bar is not None and bar.index == p2pmem_bar:
        parts.append(("  p2pmem", "bold $text-success"))
    if bar.bus_address is not None:
        parts.append((f"  bus {bar.bus_address:#x}", MUTED))
    return Content.assemble(*parts)


def _identity(lines: _Lines, dev: PciDevice, names: PciNames) -> None:
    """IDs, vendor and device names; IDs the source did not give are never looked up."""
    fact = dev.fact("ids")
    vendor, device = known_ids(dev)
    if fact.is_assumed:
        lines.field("IDs", (ids_text(dev), "bold $text-error"), f"  rev {dev.revision:02x}")
        lines.field("", ("  " + fact.describe(), MUTED))
    else:
        lines.field("IDs", (dev.ids, "bold"), f"  rev {dev.revision:02x}")
        if fact.is_inferred:
            lines.field("", ("  " + fact.describe(), "$text-warning"))
    unknown = " (not in pci.ids)"
    if vendor is None:
        lines.field("vendor", ("unknown", MUTED))
    else:
        lines.field("vendor", names.vendor(vendor) or (f"{vendor:04x}{unknown}", MUTED))
    if vendor is None or device is None:
        lines.field("device", ("unknown", MUTED))
    else:
        lines.field("device", names.device(vendor, device) or (f"{device:04x}{unknown}", MUTED))


def _header_type(dev: PciDevice) -> str:
    kinds = {0: "0 (endpoint)", 1: "1 (PCI-to-PCI bridge)", 2: "2 (CardBus bridge)"}
    text = "?" if dev.header_type is None else kinds.get(dev.header_type, str(dev.header_type))
    return text + (", multi-function" if dev.multifunction else "")


def device_detail(ctx: RowContext, bdf: BDF, peer: BDF | None) -> Content:
    """Everything known about one function, and its verdict against ``peer``."""
    dev = ctx.topology[bdf]
    names = ctx.names
    effect = ctx.state.acs.get(bdf)
    lines = _Lines()
    head: list[str | tuple[str, str]] = [
        (bdf_text(bdf, ctx.short_bdfs), "bold"),
        "  ",
        (role_text(dev, names), "bold $text-accent"),
    ]
    if dev.label:
        head += ["  ", (dev.label, "bold $text-secondary")]
    lines.add(*head)
    lines.add(names.describe(dev))

    _peer_section(lines, ctx, bdf, peer)
    _acs_section(lines, dev, effect)

    lines.title("p2pmem")
    if dev.p2pmem is None:
        lines.lines[-1] = Content.assemble(
            ("p2pmem ", TITLE), ("none: not a P2PDMA provider", MUTED)
        )
    else:
        mem = dev.p2pmem
        where = "?" if mem.bar is None else f"BAR{mem.bar}"
        if mem.bar is not None and mem.bar_inferred:
            where += " (inferred)"
        lines.field(
            "size", size_approx(mem.size), ("  available ", MUTED), size_approx(mem.available)
        )
        lines.field(
            "published",
            ("yes", "$text-success") if mem.published else ("no", "$text-warning"),
            ("  (found by pci_p2pmem_find())" if mem.published else "  (used only by name)", MUTED),
        )
        lines.field("in", where)

    lines.title("Identity")
    _identity(lines, dev, names)
    if dev.subsystem_vendor is not None and dev.subsystem_device is not None:
        sub_ids = f"{dev.subsystem_vendor:04x}:{dev.subsystem_device:04x}"
        sub_name = names.subsystem_text(dev)
        lines.field("subsystem", sub_ids, *(("  ", sub_name) if sub_name else ()))
    base, sub, prog_if = names.class_names(dev.class_code)
    class_fact = dev.fact("class_code")
    if class_fact.is_assumed:
        lines.field("class", ("unknown", "$text-error"), ("  " + class_fact.describe(), MUTED))
    else:
        lines.field("class", f"{dev.class_code:06x}", *(("  ", sub or base) if sub or base else ()))
    if class_fact.is_inferred:
        lines.field("", ("  " + class_fact.describe(), "$text-warning"))
    if prog_if and not class_fact.is_assumed:
        lines.field("prog-if", f"{dev.class_code & 0xFF:02x}  ", prog_if)
    lines.field("header type", _header_type(dev))
    if dev.pcie_type is not None:
        port = PORT_NAMES.get(dev.pcie_type, dev.pcie_type.token)
        inferred = ("  (inferred)", "$text-warning") if dev.pcie_type_inferred else ("", "")
        lines.field("port type", port, inferred)
    elif link_text(dev.link):
        # a link speed and width come from the PCI Express capability: it is PCIe,
        # only its Device/Port type is missing from the source
        lines.field("port type", ("PCIe (it has a link), type not given", MUTED))
    else:
        lines.field("port type", ("not in the source (conventional PCI, or not read)", MUTED))
    if dev.physfn is not None:
        lines.field("VF of", bdf_text(dev.physfn, ctx.short_bdfs))

    if dev.bars:
        lines.title("BARs")
        p2pmem_bar = None if dev.p2pmem is None else dev.p2pmem.bar
        for bar in dev.bars:
            lines.lines.append(_bar_row(bar, p2pmem_bar))

    lines.title("Platform")
    lines.field("driver", dev.driver or ("none", MUTED))
    lines.field("NUMA node", "?" if dev.numa_node is None else str(dev.numa_node))
    lines.field("IOMMU group", "none" if dev.iommu_group is None else str(dev.iommu_group))
    link = link_text(dev.link)
    lines.field("link", link or ("not reported", MUTED))
    chain = [bdf_text(b, ctx.short_bdfs) for b in ctx.topology.upstream_chain(bdf)[1:]]
    chain.append(str(ctx.topology.root_bus_of(bdf)))
    lines.field("upstream", " → ".join(chain))

    if dev.notes:
        lines.title("Notes")
        for note in dev.notes:
            lines.add("  ", (note, "$text-warning"))
    return lines.content()


def host_bridge_detail(ctx: RowContext, root: RootBus) -> Content:
    """A host bridge: its numbers, the function standing for it, the whitelist check."""
    hb = ctx.topology.host_bridge_obj(root)
    lines = _Lines()
    head: list[str | tuple[str, str]] = [
        (hb.name, "bold"),
        "  ",
        ("host bridge", "bold $text-accent"),
    ]
    if hb.label:
        head += ["  ", (hb.label, "bold $text-secondary")]
    lines.add(*head)
    lines.field("root bus", f"{root.domain:04x}:{root.bus:02x}")
    lines.field("NUMA node", "?" if hb.numa_node is None else str(hb.numa_node))
    lines.field("mem offset", f"{hb.mem_offset:#x}", ("  CPU address minus bus address", MUTED))
    below = ctx.topology.subtree(root)
    providers = sum(1 for b in below if ctx.topology[b].p2pmem is not None)
    lines.field("below", f"{len(below)} functions, {providers} p2pmem providers")

    lines.title("Whitelist")
    lookup = ctx.state.host_bridge_devs.get(root)
    if lookup is None or lookup.device is None:
        reason = "no lookup" if lookup is None else lookup.reason
        lines.add("  no function stands for this host bridge: ", (reason, "$text-error"))
    else:
        dev = ctx.topology[lookup.device]
        lines.field(
            "device",
            (bdf_text(dev.bdf, ctx.short_bdfs), "bold"),
            f" {ids_text(dev)} ",
            ctx.names.short(dev) or "",
        )
        lines.field("chosen as", (lookup.reason, MUTED))
    basis = ctx.state.host_bridge_basis(root)
    for inference in basis.inferred:
        lines.field("inferred", (inference.text, "$text-warning"))
    for assumption in basis.assumed:
        lines.field("assumed", (f"{assumption.value}: {assumption.why}", "$text-warning"))
    if lookup is not None and lookup.device is not None:
        check = whitelist_check(ctx.state, root, True)
        lines.field(
            "same bridge",
            ("pass", "bold $text-success") if check.passed else ("fail", "bold $text-error"),
            ("  " + check.reason, MUTED),
        )
    cpu = ctx.state.cpu_supports
    lines.field(
        "CPU check",
        "cpu_supports_p2pdma() ",
        ("true", "$text-success") if cpu else ("false", MUTED),
        ("  (true lets THRU_HOST_BRIDGE skip the whitelist)", MUTED),
    )
    return lines.content()


class PciDetail(ScrollView, can_focus=True):
    """A scrolling pane holding one :class:`Content` (focus it to scroll with keys).

    A line-API widget: the content is wrapped once per update (or resize)
    and only the visible lines are drawn, so a cursor move in the tree costs
    little (a Static in a VerticalScroll re-rendered the whole pane twice).
    """

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("up", "scroll_up", "Scroll up", show=False),
        Binding("down", "scroll_down", "Scroll down", show=False),
        Binding("home", "scroll_home", "Top", show=False),
        Binding("end", "scroll_end", "End", show=False),
        Binding("pageup", "page_up", "Page up", show=False),
        Binding("pagedown", "page_down", "Page down", show=False),
    ]

    DEFAULT_CSS = """
    PciDetail {
        /* a constant width: wrapping must not depend on whether a scrollbar shows */
        overflow-y: scroll;
        overflow-x: hidden;
    }
    """

    def __init__(self, *, id: str | None = None, classes: str | None = None) -> None:
        super().__init__(id=id, classes=classes)
        self._content = Content("")
        self._strips: list[Strip] = []

    def show(self, content: Content) -> None:
        """Replace what the pane shows; keep the scroll position if the pane is focused."""
        self._content = content
        self._wrap()
        if not self.has_focus:
            self.scroll_to(y=0, animate=False, immediate=True)
        self.refresh()

    def _wrap(self) -> None:
        width = self.scrollable_content_region.width
        if width <= 0:
            self._strips = []
            return
        self._strips = Visual.to_strips(self, self._content, width, None, self.visual_style)
        size = Size(width, len(self._strips))
        if size != self.virtual_size:
            # Setting virtual_size would lay out the whole screen again (it is a
            # layout reactive); with the scrollbar always shown (overflow-y:
            # scroll) nothing else moves, so update it and the scrollbar alone.
            self.set_reactive(PciDetail.virtual_size, size)
            self._scroll_update(size)

    def on_resize(self, event: Resize) -> None:
        """Wrap again at the new width."""
        self._wrap()
        self.refresh()

    def notify_style_update(self) -> None:
        """The theme changed: the colours of the wrapped lines too."""
        super().notify_style_update()
        self._wrap()

    def render_line(self, y: int) -> Strip:
        """One visible line."""
        index = y + self.scroll_offset.y
        width = self.scrollable_content_region.width
        style = self.visual_style.rich_style
        if index >= len(self._strips):
            return Strip.blank(width, style)
        return self._strips[index].crop_extend(0, width, style)

    @property
    def content(self) -> Content:
        """What the pane shows."""
        return self._content

    @property
    def text(self) -> str:
        """What the pane shows, as plain text (for tests and copy)."""
        return self._content.plain
