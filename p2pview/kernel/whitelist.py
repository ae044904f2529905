"""``pci_p2pdma_whitelist[]`` across kernel releases (spec section 3.4).

Each row records the release that added it (and removed it), stable
backports where known, and how sure the project's kernel reference is of it.
The table order is the kernel's, as read in the PCI maintainer tree
(kernelorg-mirror/linux_kernel_git_pci_pci ``drivers/pci/p2pdma.c`` @
cd2698d7), where ``__host_bridge_whitelist()`` returns on the first row whose
vendor and device (or ``PCI_ANY_ID``) match.
"""

from __future__ import annotations

from dataclasses import dataclass

from p2pview.kernel.version import KernelVersion

#: ``REQ_SAME_HOST_BRIDGE = 1 << 0``: the entry allows P2P only when both
#: devices sit below this same host bridge.
REQ_SAME_HOST_BRIDGE = 1 << 0

#: ``PCI_ANY_ID`` as a whitelist device (7.1+, when ``device`` became an int).
PCI_ANY_ID = 0xFFFF_FFFF


@dataclass(frozen=True, slots=True)
class WhitelistEntry:
    """One ``{vendor, device, flags}`` row of the table."""

    vendor: int
    device: int
    flags: int
    comment: str
    #: First mainline release holding the row; ``None``: only the newest tree.
    since: tuple[int, int] | None
    #: Last mainline series holding it (``None``: still there).
    until: tuple[int, int] | None = None
    #: Stable backports: ``(major, minor, first patch level)``.
    stable: tuple[tuple[int, int, int], ...] = ()
    #: The confidence tag for this row: read, recalled, inferred, UNVERIFIED.
    confidence: str = "read"

    @property
    def ids(self) -> str:
        """``vvvv:dddd`` (``vvvv:*`` for the wildcard)."""
        dev = "*" if self.device == PCI_ANY_ID else f"{self.device:04x}"
        return f"{self.vendor:04x}:{dev}"

    @property
    def requires_same_host_bridge(self) -> bool:
        """The entry carries ``REQ_SAME_HOST_BRIDGE``."""
        return bool(self.flags & REQ_SAME_HOST_BRIDGE)

    def present_in(self, version: KernelVersion) -> bool:
        """Whether the table of release ``version`` holds this row."""
        if version.is_next:
            return self.until is None
        if self.until is not None and version.series > self.until:
            return False
        if self.since is not None and version.series >= self.since:
            return True
        return any(
            version.series == (major, minor) and version.patch >= patch
            for major, minor, patch in self.stable
        )


_INTEL = 0x8086
_SKX = "Intel Skylake-E"

#: Every row any modelled kernel had, in the kernel's table order.
ALL_ENTRIES: tuple[WhitelistEntry, ...] = (
    # AMD Zen root complexes, v5.4-v5.8, removed when cpu_supports_p2pdma()
    # arrived (dea286bb71ba, v5.9) [read in the removal commit]. When 0x15d0
    # and 0x1630 were added was not established: all three are modelled for
    # the whole of v5.4-v5.8.
    WhitelistEntry(0x1022, 0x1450, 0, "AMD ZEN", (5, 4), (5, 8)),
    WhitelistEntry(0x1022, 0x15D0, 0, "AMD ZEN", (5, 4), (5, 8), confidence="inferred"),
    WhitelistEntry(0x1022, 0x1630, 0, "AMD ZEN", (5, 4), (5, 8), confidence="inferred"),
    # v5.4+ [read S-5.15, S-5.17, S-new]
    WhitelistEntry(_INTEL, 0x3C00, REQ_SAME_HOST_BRIDGE, "Intel Xeon E5/Core i7", (5, 4)),
    WhitelistEntry(_INTEL, 0x3C01, REQ_SAME_HOST_BRIDGE, "Intel Xeon E5/Core i7", (5, 4)),
    WhitelistEntry(_INTEL, 0x2F00, REQ_SAME_HOST_BRIDGE, "Intel Xeon E7 v3/E5 v3/Core i7", (5, 4)),
    WhitelistEntry(_INTEL, 0x2F01, REQ_SAME_HOST_BRIDGE, "Intel Xeon E7 v3/E5 v3/Core i7", (5, 4)),
    WhitelistEntry(_INTEL, 0x2030, 0, _SKX + " Root Port", (5, 4)),
    WhitelistEntry(_INTEL, 0x2031, 0, _SKX + " Root Port", (5, 4)),
    WhitelistEntry(_INTEL, 0x2032, 0, _SKX + " Root Port", (5, 4)),
    WhitelistEntry(_INTEL, 0x2033, 0, _SKX + " Root Port", (5, 4)),
    WhitelistEntry(_INTEL, 0x2020, 0, _SKX + " host bridge (00:00.0)", (5, 4)),
    # Ice Lake-SP and later Xeons, feaea1fe8b36 [read S-6.2]; v5.18 is inferred
    WhitelistEntry(
        _INTEL, 0x09A2, 0, "Intel Ice Lake-SP and later Xeon", (5, 18), confidence="inferred"
    ),
    # Intel accelerators that are the first device of their own root bus
    # (0ba76b19fd4c, Lukas Wunner). Read as a 7.1-stable backport, so mainline
    # v7.2 and 7.1.y [inferred]; the 7.1.y patch level was not established.
    *(
        WhitelistEntry(
            _INTEL, dev, 0, f"Intel {name}", (7, 2), stable=((7, 1, 1),), confidence="inferred"
        )
        for dev, name in (
            (0x0B25, "DSA_SPR0"),
            (0x0CFE, "IAX_SPR0"),
            (0x11FB, "DSA_GNRD"),
            (0x1212, "DSA_DMR"),
            (0x1216, "IAA_DMR"),
            (0x4940, "QAT_4XXX"),
            (0x4942, "QAT_401XX"),
            (0x4944, "QAT_402XX"),
            (0x4946, "QAT_420XX"),
            (0x4948, "QAT_6XXX"),
        )
    ),
    # Google SoCs (70cf146a674c) with the PCI_ANY_ID wildcard (1a1f96e3e2a8):
    # in the 7.1.y copy read [read]; v7.1 as the release is inferred
    WhitelistEntry(0x1AE0, PCI_ANY_ID, 0, "Google SoCs", (7, 1), confidence="inferred"),
    # Seen only in the PCI maintainer tree (S-new): no release known [UNVERIFIED]
    *(
        WhitelistEntry(0x10DE, dev, 0, "Nvidia CPUs", None, confidence="UNVERIFIED")
        for dev in (0x2F95, 0x2F96, 0x2F97, 0x2F98)
    ),
    *(
        WhitelistEntry(
            0x1D17,
            dev,
            REQ_SAME_HOST_BRIDGE,
            "Zhaoxin KX-6000/KH-40000/KX-7000",
            None,
            confidence="UNVERIFIED",
        )
        for dev in (0x1003, 0x1005, 0x1006, 0x1007)
    ),
    WhitelistEntry(
        0x1D17, 0x1008, 0, "Zhaoxin KX-6000/KH-40000/KX-7000", None, confidence="UNVERIFIED"
    ),
)


def whitelist_for(version: KernelVersion) -> tuple[WhitelistEntry, ...]:
    """The table of one release, in kernel order (empty before v5.4)."""
    return tuple(e for e in ALL_ENTRIES if e.present_in(version))


def match_entry(
    table: tuple[WhitelistEntry, ...], vendor: int, device: int, *, wildcard: bool
) -> WhitelistEntry | None:
    """The first row matching ``vendor:device``, as the kernel's loop finds it.

    With ``wildcard`` (7.1+), a row whose device is ``PCI_ANY_ID`` matches any
    device of its vendor.
    """
    for entry in table:
        if entry.vendor != vendor:
            continue
        if entry.device == device or (wildcard and entry.device == PCI_ANY_ID):
            return entry
    return None
