"""What the what-if screen offers for the platform: kernels, CPUs, host-bridge IDs.

Plain data built from the analysis (no widgets): the kernel releases (one per
era of :data:`~p2pview.kernel.PROFILES` and the releases where the ACS
parameters or the enum changed), the CPU presets, and one row per host
bridge with the function whose IDs the whitelist compares and the result of
that comparison.
"""

from __future__ import annotations

from dataclasses import dataclass

from textual.content import Content

from p2pview.kernel import PROFILES, KernelTarget, KernelVersion
from p2pview.kernel.decision import whitelist_check
from p2pview.kernel.whitelist import PCI_ANY_ID
from p2pview.model import BDF, Platform, RootBus
from p2pview.session import CpuChoice
from p2pview.tui.analysis import WhatIf
from p2pview.tui.presenters.explain_content import MUTED, Names

#: Releases offered besides each era's first: the ACS parameter forms (6.10
#: legacy, 6.12 config_acs as merged, 6.15 fixed) and recent releases.
EXTRA_RELEASES = ("6.10", "6.12", "6.15", "6.17")

#: CPU presets: (label, ``--cpu`` spec).
CPU_PRESETS: tuple[tuple[str, str], ...] = (
    ("Intel (GenuineIntel, family 6)", "intel:6"),
    ("AMD Zen (AuthenticAMD, family 0x17)", "amd:0x17"),
    ("AMD Zen 3/4 (AuthenticAMD, family 0x19)", "amd:0x19"),
    ("AMD pre-Zen (AuthenticAMD, family 0xf)", "amd:0xf"),
    ("Hygon (HygonGenuine, family 0x18)", "hygon:0x18"),
    ("arm64 (aarch64)", "arm64"),
)


def kernel_choices(current: KernelVersion) -> list[tuple[str, str]]:
    """``(label, release)`` for the kernel select, oldest first, ``current`` included."""
    releases = {p.key for p in PROFILES} | set(EXTRA_RELEASES) | {str(current)}
    targets = sorted((KernelTarget.parse(r) for r in releases), key=lambda t: t.version)
    return [(f"{t.version}  ({t.profile.title})", str(t.version)) for t in targets]


def _cpu_key(platform: Platform) -> tuple[str, str, int]:
    """What ``cpu_supports_p2pdma()`` looks at: the arch, and on x86 the vendor and family."""
    if not platform.is_x86:
        return (platform.arch, "", 0)
    return (platform.arch, platform.cpu_vendor, platform.cpu_family)


def cpu_choice(platform: Platform) -> str | None:
    """The preset spec the platform's CPU matches (``None``: none does)."""
    key = _cpu_key(platform)
    for _label, spec in CPU_PRESETS:
        if _cpu_key(CpuChoice.parse(spec).apply(platform)) == key:
            return spec
    return None


def cpu_text(platform: Platform) -> str:
    """``GenuineIntel family 0x6`` or the architecture."""
    if platform.is_x86:
        return f"{platform.cpu_vendor} family {platform.cpu_family:#x}"
    return platform.arch


def parse_ids(text: str) -> tuple[int, int]:
    """``vvvv:dddd`` (hex) -> (vendor, device).

    Raises:
        ValueError: with a one-line reason.
    """
    vendor, sep, device = text.strip().partition(":")
    try:
        if not sep:
            raise ValueError
        ids = (int(vendor, 16), int(device, 16))
    except ValueError:
        raise ValueError(
            f"{text.strip()!r}: expected vendor:device in hex, e.g. 8086:09a2"
        ) from None
    if not all(0 <= x <= 0xFFFF for x in ids):
        raise ValueError(f"{text.strip()!r}: vendor and device are 16-bit (0000-ffff)")
    return ids


def whitelist_presets(whatif: WhatIf) -> list[tuple[str, str]]:
    """``(label, "vvvv:dddd")`` for each row of the modelled kernel's whitelist."""
    presets = []
    for entry in whatif.session.target.whitelist:
        if entry.device == PCI_ANY_ID:
            continue  # a wildcard row matches any device of the vendor: type one
        ids = f"{entry.vendor:04x}:{entry.device:04x}"
        same = ", same host bridge only" if entry.requires_same_host_bridge else ""
        presets.append((f"{ids}  {entry.comment}{same}", ids))
    return presets


@dataclass(frozen=True)
class HostBridgeRow:
    """One host bridge: the function carrying its IDs and what the whitelist says of them."""

    root: RootBus
    first: BDF | None
    ids: str | None
    looked_at: BDF | None
    lookup_reason: str
    same_passed: bool
    cross_passed: bool
    reason: str
    edited: bool


def host_bridge_rows(whatif: WhatIf) -> list[HostBridgeRow]:
    """Every host bridge of the edited topology."""
    topo = whatif.topology
    state = whatif.session.state
    original = whatif.original_topology
    rows = []
    for hb in topo.host_bridges:
        on_bus = topo.root_bus_devices(hb.root)
        first = on_bus[0] if on_bus else None
        ids = None if first is None else topo[first].ids
        before = None if first is None else original.get(first)
        edited = first is not None and (before is None or before.ids != ids)
        lookup = state.host_bridge_devs[hb.root]
        same = whitelist_check(state, hb.root, True)
        cross = whitelist_check(state, hb.root, False)
        if first is not None and topo[first].fact("ids").is_assumed:
            ids = None  # the source did not give them: the row says so, the field is empty
        rows.append(
            HostBridgeRow(
                root=hb.root,
                first=first,
                ids=ids,
                looked_at=lookup.device,
                lookup_reason=lookup.reason,
                same_passed=same.passed,
                cross_passed=cross.passed,
                reason=same.reason,
                edited=edited,
            )
        )
    return rows


#: Column widths of the host-bridge list: root bus, first function, IDs, each check.
HB_COLUMNS = (12, 16, 11, 13)


def host_bridge_header() -> Content:
    """Column titles aligned with :func:`host_bridge_prompt`."""
    root, first, ids, check = HB_COLUMNS
    return Content.styled(
        f"  {'root bus':<{root}}{'first function':<{first}}{'IDs':<{ids}}"
        f"{'same bridge':<{check}}{'across bridges'}",
        "bold",
    )


def host_bridge_prompt(row: HostBridgeRow, names: Names) -> Content:
    """``pci0000:17  17:00.0  8086:09a2  pass  pass``: whitelist checks of its IDs."""
    root, first, ids, check = HB_COLUMNS
    parts: list[str | tuple[str, str]] = [
        ("* " if row.edited else "  ", "$text-warning bold"),
        (f"{row.root!s:<{root}}", "bold"),
    ]
    if row.first is None:
        parts.append(("(no function on the root bus)", MUTED))
        return Content.assemble(*parts)
    parts.append(f"{names.bdf(row.first):<{first}}")
    parts.append(f"{row.ids:<{ids}}" if row.ids else (f"{'unknown':<{ids}}", "$text-error"))
    for passed in (row.same_passed, row.cross_passed):
        parts.append(
            (
                f"{'pass' if passed else 'fail':<{check}}",
                "$text-success" if passed else "$text-error",
            )
        )
    return Content.assemble(*parts)


def host_bridge_detail(row: HostBridgeRow, whatif: WhatIf, names: Names) -> Content:
    """What the kernel does with one host bridge's IDs, for the highlighted row."""
    state = whatif.session.state
    lines: list[Content] = []
    if row.looked_at is None:
        lines.append(
            Content(f"{row.root}: the whitelist looks at no function: {row.lookup_reason}.")
        )
    else:
        lines.append(
            Content(
                f"{row.root}: the whitelist looks at {row.looked_at}"
                f" ({names.describe(row.looked_at)}): {row.lookup_reason}."
            )
        )
    lines.append(
        Content.assemble(
            ("Both devices below it: ", MUTED),
            Content(row.reason),
        )
    )
    cross = whitelist_check(state, row.root, False)
    if cross.reason != row.reason:
        lines.append(
            Content.assemble(("Below different host bridges: ", MUTED), Content(cross.reason))
        )
    if state.cpu_supports:
        lines.append(
            Content.styled(
                "cpu_supports_p2pdma() is true on this CPU: the kernel does not consult the"
                " whitelist.",
                "$text-warning",
            )
        )
    elif whatif.session.target.profile.int_distance:
        lines.append(
            Content.styled(
                "v4.20-v5.3 have no whitelist (v5.1-v5.3 check for AMD 1022:1450 at 00.0).",
                "$text-warning",
            )
        )
    if row.first is not None and row.looked_at not in (None, row.first):
        lines.append(
            Content.styled(
                f"An edit changes the IDs of {row.first}, the first function on the root bus.",
                MUTED,
            )
        )
    return Content("\n").join(lines)
