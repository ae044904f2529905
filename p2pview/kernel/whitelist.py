"""``pci_p2pdma_whitelist[]`` across kernel releases (spec section 3.4).

Each row records the release that added it (and removed it), stable
backports where known, and how sure the project is of it. The rows of five
released trees were read in Debian's ``linux-source`` packages
(``drivers/pci/p2pdma.c``): 5.10.223 (the nine Intel rows), 6.1.176 and
6.12.117 (+ 0x09a2), 7.2.13 (+ the Intel accelerators and Google's wildcard row)
and 7.3~rc7 (+ four NVIDIA rows) [read]. The table order is the kernel's, as
read in the PCI maintainer tree (kernelorg-mirror/linux_kernel_git_pci_pci
``drivers/pci/p2pdma.c`` @ cd2698d7, spec source S-new), where
``__host_bridge_whitelist()`` returns on the first row whose vendor and device
(or ``PCI_ANY_ID``) match; 7.2.13 and 7.3~rc7 keep that order.
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
    #: Where a user can see the row, and what about its dating is only inferred.
    citation: str = ""

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
#: Released trees read for the base rows (Debian linux-source packages).
_BASE_READ = (
    "Linux 5.10.223, 6.1.176, 6.12.117, 7.2.13 and 7.3-rc7, drivers/pci/p2pdma.c"
    " (since v5.4, commit dating)"
)
_ACCEL_READ = (
    "Linux 7.2.13 drivers/pci/p2pdma.c; Debian's changelog for 7.1.3 lists the"
    " stable backport 'PCI/P2PDMA: Add Intel QAT, DSA, IAA devices to whitelist'"
)

#: Every row any modelled kernel had, in the kernel's table order.
ALL_ENTRIES: tuple[WhitelistEntry, ...] = (
    # AMD Zen root complexes, v5.4-v5.8, removed when cpu_supports_p2pdma()
    # arrived (dea286bb71ba, v5.9) [read in the removal commit]. When 0x15d0
    # and 0x1630 were added was not established: all three are modelled for
    # the whole of v5.4-v5.8. No Debian tree of v5.4-v5.8 was read (5.10.223
    # has none of them).
    WhitelistEntry(
        0x1022,
        0x1450,
        0,
        "AMD ZEN",
        (5, 4),
        (5, 8),
        citation="commit dea286bb71ba removes it; recalled, not read in a released tree",
    ),
    *(
        WhitelistEntry(
            0x1022,
            dev,
            0,
            "AMD ZEN",
            (5, 4),
            (5, 8),
            confidence="inferred",
            citation="commit dea286bb71ba removes it; the release that added it is not known",
        )
        for dev in (0x15D0, 0x1630)
    ),
    # v5.4+ [read S-5.15, S-5.17, S-new, and Debian's 5.10.223, 6.1.176, 6.12.117,
    # 7.2.13, 7.3~rc7 trees]
    *(
        WhitelistEntry(_INTEL, dev, flags, name, (5, 4), citation=_BASE_READ)
        for dev, flags, name in (
            (0x3C00, REQ_SAME_HOST_BRIDGE, "Intel Xeon E5/Core i7"),
            (0x3C01, REQ_SAME_HOST_BRIDGE, "Intel Xeon E5/Core i7"),
            (0x2F00, REQ_SAME_HOST_BRIDGE, "Intel Xeon E7 v3/E5 v3/Core i7"),
            (0x2F01, REQ_SAME_HOST_BRIDGE, "Intel Xeon E7 v3/E5 v3/Core i7"),
            (0x2030, 0, _SKX + " Root Port"),
            (0x2031, 0, _SKX + " Root Port"),
            (0x2032, 0, _SKX + " Root Port"),
            (0x2033, 0, _SKX + " Root Port"),
            (0x2020, 0, _SKX + " host bridge (00:00.0)"),
        )
    ),
    # Ice Lake-SP and later Xeons, feaea1fe8b36 [read S-6.2; in Debian's 6.1.176
    # and later, not in 5.10.223]; v5.18 is inferred
    WhitelistEntry(
        _INTEL,
        0x09A2,
        0,
        "Intel Ice Lake-SP and later Xeon",
        (5, 18),
        confidence="inferred",
        citation="commit feaea1fe8b36; in Linux 6.1.176 and later, not in 5.10.223;"
        " v5.18 as its first release is inferred",
    ),
    # Intel accelerators that are the first device of their own root bus
    # (0ba76b19fd4c, Lukas Wunner) [read in Debian's 7.2.13 and 7.3~rc7 trees].
    # Debian's 7.2.13 changelog lists the patch under the 7.1.3 stable update
    # ("PCI/P2PDMA: Add Intel QAT, DSA, IAA devices to whitelist") and under no
    # 7.2.y update, so mainline 7.2.0 has it [read; 7.2.0 itself not read].
    *(
        WhitelistEntry(
            _INTEL, dev, 0, f"Intel {name}", (7, 2), stable=((7, 1, 3),), citation=_ACCEL_READ
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
    # in the 7.1.y copy read and in Debian's 7.2.13 and 7.3~rc7 [read]; v7.1 as
    # the first release is inferred
    WhitelistEntry(
        0x1AE0,
        PCI_ANY_ID,
        0,
        "Google SoCs",
        (7, 1),
        confidence="inferred",
        citation="Linux 7.2.13 drivers/pci/p2pdma.c (commits 70cf146a674c, 1a1f96e3e2a8);"
        " v7.1 as its first release is inferred",
    ),
    # NVIDIA: in Debian's 7.3~rc7 tree, not in 7.2.13 [read]; that the final 7.3
    # keeps them is inferred from the release candidate
    *(
        WhitelistEntry(
            0x10DE,
            dev,
            0,
            "Nvidia CPUs",
            (7, 3),
            citation="Linux 7.3-rc7 drivers/pci/p2pdma.c (not in 7.2.13)",
        )
        for dev in (0x2F95, 0x2F96, 0x2F97, 0x2F98)
    ),
    # Zhaoxin: seen only in the PCI maintainer tree (S-new), not in 7.3~rc7:
    # no release known [UNVERIFIED]
    *(
        WhitelistEntry(
            0x1D17,
            dev,
            flags,
            "Zhaoxin KX-6000/KH-40000/KX-7000",
            None,
            confidence="UNVERIFIED",
            citation="seen only in the PCI maintainer tree (pci.git @ cd2698d7), not in"
            " Linux 7.3-rc7: no release is known to carry it",
        )
        for dev, flags in (
            (0x1003, REQ_SAME_HOST_BRIDGE),
            (0x1005, REQ_SAME_HOST_BRIDGE),
            (0x1006, REQ_SAME_HOST_BRIDGE),
            (0x1007, REQ_SAME_HOST_BRIDGE),
            (0x1008, 0),
        )
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
