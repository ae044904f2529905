"""Decode PCI configuration space: header, PCIe port type, ACS (spec section 6).

The capability walks follow the kernel's: ``pci_find_capability()`` with its
48-step TTL over the standard list, and ``pci_find_ext_capability()`` from
0x100 with a ``(4096 - 256) / 8`` step TTL, stopping at a header of 0 or
all-ones and at a next pointer below 0x100.
"""

from __future__ import annotations

from dataclasses import dataclass

from p2pview.model import Acs, Link, PcieType
from p2pview.model.errors import InputError

PCI_CAP_ID_EXP = 0x10
PCI_EXT_CAP_ID_ACS = 0x000D
PCI_EXT_CAP_ID_SRIOV = 0x0010
PCI_STATUS_CAP_LIST = 0x10
_STD_TTL = 48
_EXT_TTL = (4096 - 256) // 8

#: What a non-root reader gets from sysfs ``config`` (spec section 6.1).
UNPRIVILEGED_CONFIG_BYTES = 64


@dataclass(frozen=True, slots=True)
class ConfigInfo:
    """What config space says about one function.

    ``pcie_type`` is ``None`` for conventional PCI functions; ``pcie_known``
    is False when the capability list lies beyond what could be read. ``acs``
    is unknown when the extended space could not be read although the
    function is PCIe.
    """

    vendor: int
    device: int
    revision: int
    class_code: int
    header_type: int
    multifunction: bool
    subsystem_vendor: int | None
    subsystem_device: int | None
    pcie_type: PcieType | None
    pcie_known: bool
    acs: Acs
    secondary_bus: int | None
    subordinate_bus: int | None
    has_sriov: bool
    notes: tuple[str, ...] = ()


def _u8(cfg: bytes, off: int) -> int:
    return cfg[off]


def _u16(cfg: bytes, off: int) -> int:
    return int.from_bytes(cfg[off : off + 2], "little")


def _u32(cfg: bytes, off: int) -> int:
    return int.from_bytes(cfg[off : off + 4], "little")


def find_capability(cfg: bytes, cap_id: int) -> int | None:
    """Offset of standard capability ``cap_id``, walking as the kernel does."""
    if len(cfg) < 0x40 or not _u16(cfg, 0x06) & PCI_STATUS_CAP_LIST:
        return None
    header = _u8(cfg, 0x0E) & 0x7F
    pos = _u8(cfg, 0x14 if header == 2 else 0x34)
    ttl = _STD_TTL
    while ttl > 0:
        pos &= ~3
        if pos < 0x40 or pos + 2 > len(cfg):
            return None
        ident = _u8(cfg, pos)
        if ident == 0xFF:
            return None
        if ident == cap_id:
            return pos
        pos = _u8(cfg, pos + 1)
        ttl -= 1
    return None


def find_ext_capability(cfg: bytes, cap_id: int) -> int | None:
    """Offset of extended capability ``cap_id`` (needs more than 256 bytes)."""
    if len(cfg) <= 0x100 + 4:
        return None
    pos = 0x100
    ttl = _EXT_TTL
    header = _u32(cfg, pos)
    if header in (0, 0xFFFFFFFF):
        return None
    while ttl > 0:
        if header & 0xFFFF == cap_id and pos != 0:
            return pos
        pos = (header >> 20) & 0xFFC
        if pos < 0x100 or pos + 4 > len(cfg):
            return None
        header = _u32(cfg, pos)
        ttl -= 1
    return None


class ConfigError(InputError):
    """Config space too short to hold a header."""


def decode(cfg: bytes) -> ConfigInfo:
    """Decode what ``cfg`` holds; shorter reads leave PCIe type and ACS unknown."""
    if len(cfg) < 0x10:
        raise ConfigError(f"config space is {len(cfg)} bytes; the header needs 16")
    vendor, device = _u16(cfg, 0), _u16(cfg, 2)
    revision = _u8(cfg, 8)
    class_code = _u8(cfg, 9) | _u8(cfg, 10) << 8 | _u8(cfg, 11) << 16
    raw_header = _u8(cfg, 0x0E)
    header = raw_header & 0x7F
    notes: list[str] = []
    sub_v = sub_d = sec = subord = None
    if header == 0 and len(cfg) >= 0x30:
        sub_v, sub_d = _u16(cfg, 0x2C), _u16(cfg, 0x2E)
    elif header == 1 and len(cfg) >= 0x1B:
        sec, subord = _u8(cfg, 0x19), _u8(cfg, 0x1A)
    elif header == 2 and len(cfg) >= 0x44:
        sub_v, sub_d = _u16(cfg, 0x40), _u16(cfg, 0x42)

    has_caps = len(cfg) >= 0x08 and bool(_u16(cfg, 0x06) & PCI_STATUS_CAP_LIST)
    pcie_known = True
    pcie_type: PcieType | None = None
    exp = find_capability(cfg, PCI_CAP_ID_EXP)
    if exp is not None and exp + 4 <= len(cfg):
        flags = _u16(cfg, exp + 2)
        try:
            pcie_type = PcieType((flags & 0x00F0) >> 4)
        except ValueError:
            notes.append(
                f"PCIe capability at {exp:#x} has a reserved port type {(flags >> 4) & 0xF:#x}"
            )
    elif has_caps and len(cfg) <= 0x40:
        pcie_known = False

    acs: Acs
    has_sriov = False
    if not pcie_known:
        acs = Acs.unknown()
        notes.append(
            f"config space: only {len(cfg)} bytes readable; PCIe port type and ACS unknown"
        )
    elif pcie_type is None or len(cfg) <= 0x100:
        # Conventional PCI, or no extended config space: the kernel cannot find
        # an ACS capability either (pci_find_ext_capability() needs cfg_size > 256).
        if pcie_type is not None and len(cfg) < 0x100:
            acs = Acs.unknown()
            notes.append(f"config space: only {len(cfg)} bytes readable; ACS unknown")
        else:
            acs = Acs.absent()
    else:
        pos = find_ext_capability(cfg, PCI_EXT_CAP_ID_ACS)
        if pos is None or pos + 8 > len(cfg):
            acs = Acs.absent()
        else:
            # The kernel reads the u16 at cap+6 even where a quirk says the
            # control register lives elsewhere (Intel SPT PCH); so does p2pview.
            acs = Acs.present(_u16(cfg, pos + 4), _u16(cfg, pos + 6))
        has_sriov = find_ext_capability(cfg, PCI_EXT_CAP_ID_SRIOV) is not None

    return ConfigInfo(
        vendor=vendor,
        device=device,
        revision=revision,
        class_code=class_code,
        header_type=header,
        multifunction=bool(raw_header & 0x80),
        subsystem_vendor=sub_v,
        subsystem_device=sub_d,
        pcie_type=pcie_type,
        pcie_known=pcie_known,
        acs=acs,
        secondary_bus=sec,
        subordinate_bus=subord,
        has_sriov=has_sriov,
        notes=tuple(notes),
    )


# -- helpers for dump readers (lspci -x) ----------------------------------------

#: ``PCI_EXP_LNKSTA_CLS`` / ``PCI_EXP_LNKCAP_SLS`` values as sysfs prints them
#: (``pci_speed_string()``), so that link speeds read the same from every source.
LINK_SPEEDS = {
    1: "2.5 GT/s PCIe",
    2: "5.0 GT/s PCIe",
    3: "8.0 GT/s PCIe",
    4: "16.0 GT/s PCIe",
    5: "32.0 GT/s PCIe",
    6: "64.0 GT/s PCIe",
}

_NO_LINK = (PcieType.RC_END, PcieType.RC_EC)


def bridge_bus_numbers(cfg: bytes) -> tuple[int, int, int] | None:
    """``(primary, secondary, subordinate)`` of a PCI-PCI (type 1) or CardBus (type 2) header.

    Both header layouts keep the three bus numbers at 0x18-0x1A (the CardBus
    header calls the secondary one the CardBus bus number). ``None`` for other
    header types or when the dump stops before 0x1B.
    """
    if len(cfg) < 0x1B or _u8(cfg, 0x0E) & 0x7F not in (1, 2):
        return None
    return _u8(cfg, 0x18), _u8(cfg, 0x19), _u8(cfg, 0x1A)


def ext_capability_walk_truncated(cfg: bytes) -> bool:
    """Whether the extended capability list runs past the end of ``cfg``.

    True when a next pointer points beyond the data, or the ACS capability's
    registers are cut off: a dump cut short inside the extended space
    (neither 256 nor 4096 bytes) can hide a capability that the device has.
    256-byte dumps hold no extended space at all and are not "truncated" in
    this sense.
    """
    if len(cfg) <= 0x100 or len(cfg) >= 0x1000:
        return False
    if len(cfg) < 0x104:
        return True
    pos = 0x100
    header = _u32(cfg, pos)
    ttl = _EXT_TTL
    while ttl > 0 and header not in (0, 0xFFFFFFFF):
        if header & 0xFFFF == PCI_EXT_CAP_ID_ACS and pos + 8 > len(cfg):
            return True  # the ACS registers are cut off
        pos = (header >> 20) & 0xFFC
        if pos < 0x100:
            return False
        if pos + 4 > len(cfg):
            return True
        header = _u32(cfg, pos)
        ttl -= 1
    return False


@dataclass(frozen=True, slots=True)
class SriovInfo:
    """The SR-IOV capability fields that place the virtual functions.

    VF ``n`` (0-based) has routing ID ``pf_rid + first_offset + n * stride``
    (SR-IOV spec 3.3.9/3.3.10); ``vf_device`` is the VF Device ID that VFs
    report instead of reading their own (all-ones) ID registers.
    """

    enabled: bool
    total_vfs: int
    num_vfs: int
    first_offset: int
    stride: int
    vf_device: int

    def vf_routing_ids(self, pf_rid: int) -> tuple[int, ...]:
        """Routing IDs (``bus << 8 | devfn``) of the enabled VFs; empty when disabled."""
        if not self.enabled or self.num_vfs == 0 or self.first_offset == 0:
            return ()
        stride = self.stride if self.num_vfs > 1 else 0
        rids = (pf_rid + self.first_offset + n * stride for n in range(self.num_vfs))
        return tuple(rid for rid in rids if rid <= 0xFFFF)


def sriov_info(cfg: bytes) -> SriovInfo | None:
    """Decode the SR-IOV extended capability, or ``None`` when there is none."""
    pos = find_ext_capability(cfg, PCI_EXT_CAP_ID_SRIOV)
    if pos is None or pos + 0x1C > len(cfg):
        return None
    return SriovInfo(
        enabled=bool(_u16(cfg, pos + 0x08) & 0x0001),
        total_vfs=_u16(cfg, pos + 0x0E),
        num_vfs=_u16(cfg, pos + 0x10),
        first_offset=_u16(cfg, pos + 0x14),
        stride=_u16(cfg, pos + 0x16),
        vf_device=_u16(cfg, pos + 0x1A),
    )


def pcie_link(cfg: bytes) -> Link | None:
    """Current and maximum link speed and width from the PCIe capability.

    ``LnkCap`` (cap + 0x0C) gives the maximum, ``LnkSta`` (cap + 0x12) the
    current state; speeds use sysfs's strings. ``None`` for conventional PCI,
    root-complex integrated functions (no link) and short dumps.
    """
    exp = find_capability(cfg, PCI_CAP_ID_EXP)
    if exp is None or exp + 0x14 > len(cfg):
        return None
    kind = (_u16(cfg, exp + 2) & 0x00F0) >> 4
    if kind in _NO_LINK:
        return None
    lnkcap = _u32(cfg, exp + 0x0C)
    lnksta = _u16(cfg, exp + 0x12)
    return Link(
        speed=LINK_SPEEDS.get(lnksta & 0xF, "Unknown"),
        width=(lnksta >> 4) & 0x3F,
        max_speed=LINK_SPEEDS.get(lnkcap & 0xF, "Unknown"),
        max_width=(lnkcap >> 4) & 0x3F,
    )
