"""Device-specific ACS answers and DMA aliases, as ``drivers/pci/quirks.c`` gives them.

``pci_acs_enabled()`` asks ``pci_dev_specific_acs_enabled()`` first: the
``pci_dev_acs_enabled[]`` table names devices whose isolation is not (or not
only) in a standard ACS capability. The IOMMU grouping
(:mod:`p2pview.kernel.iommu_group`) needs the same answers. The P2PDMA
decision does not: ``pci_bridge_has_acs_redir()`` reads the standard ACS
Control register only.

Read in Linux 6.12.117, drivers/pci/quirks.c (``pci_dev_acs_enabled[]``,
``pci_dev_specific_acs_enabled()`` and each ``pci_quirk_*_acs()``; the DMA alias
fixups ``quirk_dma_func0_alias()``, ``quirk_dma_func1_alias()``,
``quirk_fixed_dma_alias()``, ``quirk_use_pcie_bridge_dma_alias()``,
``quirk_mic_x200_dma_alias()``, ``quirk_pex_vca_alias()``,
``quirk_plx_ntb_dma_alias()``, ``quirk_switchtec_ntb_dma_alias()``,
``quirk_bridge_cavm_thrx2_pcie_root()``) [read]. Other releases' tables differ in
entries added over time; this one is used for every era [inferred: the
quirks' answers for the devices listed did not change, only entries were
added].
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from p2pview.model import AcsBits, PciDevice, PcieType

#: The flags ``pci_device_group()`` requires (``REQ_ACS_FLAGS``,
#: drivers/iommu/iommu.c).
REQ_ACS_FLAGS = int(AcsBits.SV | AcsBits.RR | AcsBits.CR | AcsBits.UF)
_TB = 0x0020
_DT = 0x0040
_EC = int(AcsBits.EC)
_RR_CR = int(AcsBits.RR | AcsBits.CR)


@dataclass(frozen=True, slots=True)
class QuirkAnswer:
    """What a device-specific quirk answers for a set of ACS flags.

    Attributes:
        enabled: the answer; ``None`` when it depends on something p2pview
            cannot see (then ``why`` says what).
        why: the quirk, in the kernel's name, and how its answer comes about.
    """

    enabled: bool | None
    why: str


def _ctrl_enabled(flags: int, ctrl: int) -> bool:
    """``pci_acs_ctrl_enabled()``: every asked flag is in ``ctrl``."""
    return (ctrl & flags) == flags


def _is(dev: PciDevice, *types: PcieType) -> bool:
    return dev.pcie_type is not None and dev.pcie_type in types


_HARDWIRED = REQ_ACS_FLAGS  # SV | RR | CR | UF


def _fixed(flags: int, name: str) -> QuirkAnswer:
    """A quirk that answers ``pci_acs_ctrl_enabled(flags, SV | RR | CR | UF)``."""
    return QuirkAnswer(_ctrl_enabled(flags, _HARDWIRED), f"{name}(): isolation is built in")


def _mf_endpoint(dev: PciDevice, flags: int) -> QuirkAnswer | None:
    ctrl = _HARDWIRED | _TB | _DT
    why = "pci_quirk_mf_endpoint_acs(): functions isolated"
    return QuirkAnswer(_ctrl_enabled(flags, ctrl), why)


def _amd_sb(dev: PciDevice, flags: int) -> QuirkAnswer | None:
    if not dev.multifunction or dev.parent is not None:
        return None
    flags &= _RR_CR | _EC | _DT
    return QuirkAnswer(
        _ctrl_enabled(flags, _RR_CR),
        "pci_quirk_amd_sb_acs(): RR and CR built in when the ACPI IVRS table (the AMD IOMMU)"
        " is present [assumed present: the IOMMU groups exist]",
    )


def _rciep(dev: PciDevice, flags: int) -> QuirkAnswer | None:
    if not _is(dev, PcieType.RC_END):
        return None
    return _fixed(flags, "pci_quirk_rciep_acs")


#: ``pci_quirk_intel_pch_acs_ids[]``: Root Ports of PCHs whose ACS is in the
#: chipset's RCBA registers, not an ACS capability.
_INTEL_PCH_IDS = frozenset(
    [
        *range(0x3B42, 0x3B52),  # Ibexpeak
        *range(0x1C10, 0x1C20),  # Cougarpoint
        *range(0x1E10, 0x1E20),  # Pantherpoint
        *range(0x8C10, 0x8C20),  # Lynxpoint-H
        *range(0x9C10, 0x9C1C),  # Lynxpoint-LP
        *range(0x9C90, 0x9C9C),  # Wildcat
        *range(0x1D10, 0x1D1F, 2),  # Patsburg (X79)
        *range(0x8D10, 0x8D1F),  # Wellsburg (X99)
        *range(0x8C90, 0x8C9F, 2),  # Lynx Point (9 series)
    ]
)


def _intel_pch(dev: PciDevice, flags: int) -> QuirkAnswer | None:
    if not _is(dev, PcieType.ROOT_PORT) or dev.device not in _INTEL_PCH_IDS:
        return None
    return QuirkAnswer(
        _ctrl_enabled(flags, _HARDWIRED),
        "pci_quirk_intel_pch_acs(): enabled in the PCH's RCBA registers when the IOMMU driver"
        " asked for ACS (pci_quirk_enable_intel_pch_acs()) [assumed to have succeeded]",
    )


def _intel_spt_match(dev: PciDevice) -> bool:
    d = dev.device
    return _is(dev, PcieType.ROOT_PORT) and (
        0xA110 <= d <= 0xA11F
        or 0xA167 <= d <= 0xA16A
        or 0xA290 <= d <= 0xA29F
        or 0xA2E7 <= d <= 0xA2EE
        or 0x9D10 <= d <= 0x9D1B
    )


def _intel_spt(dev: PciDevice, flags: int) -> QuirkAnswer | None:
    if not _intel_spt_match(dev) or dev.acs.cap is None:
        return None
    # The quirk reads Control from a dword at the capability + 4, not the standard
    # word at + 6: what p2pview holds as "ctrl" is not what the quirk reads.
    return QuirkAnswer(
        None,
        "pci_quirk_intel_spt_pch_acs(): this Root Port keeps ACS Control at a non-standard"
        " offset, which the source does not give",
    )


def _cavium(dev: PciDevice, flags: int) -> QuirkAnswer | None:
    d = dev.device
    if not _is(dev, PcieType.ROOT_PORT) or not (0xA000 <= d <= 0xA7FF or d in (0xAF84, 0xB884)):
        return None
    return _fixed(flags, "pci_quirk_cavium_acs")


def _al(dev: PciDevice, flags: int) -> QuirkAnswer | None:
    if not _is(dev, PcieType.ROOT_PORT):
        return None
    return QuirkAnswer(not (flags & ~_HARDWIRED), "pci_quirk_al_acs(): isolation is built in")


def _zhaoxin_ports(dev: PciDevice, flags: int) -> QuirkAnswer | None:
    if not _is(dev, PcieType.ROOT_PORT, PcieType.DOWNSTREAM):
        return None
    d = dev.device
    if 0x0710 <= d <= 0x071E or d == 0x0721 or 0x0723 <= d <= 0x0752:
        return _fixed(flags, "pci_quirk_zhaoxin_pcie_ports_acs")
    # The quirk returns false (0) for every other Zhaoxin port: not isolated.
    why = "pci_quirk_zhaoxin_pcie_ports_acs(): not in its list of isolated ports"
    return QuirkAnswer(False, why)


def _unmodelled(name: str) -> Callable[[PciDevice, int], QuirkAnswer | None]:
    def answer(dev: PciDevice, flags: int) -> QuirkAnswer | None:
        return QuirkAnswer(None, f"{name}() decides, which p2pview does not model")

    return answer


def _hardwired(name: str) -> Callable[[PciDevice, int], QuirkAnswer | None]:
    def answer(dev: PciDevice, flags: int) -> QuirkAnswer | None:
        return _fixed(flags, name)

    return answer


_Quirk = Callable[[PciDevice, int], QuirkAnswer | None]
_ANY = None


def _ids(vendor: int, *devices: int) -> list[tuple[int, int | None]]:
    return [(vendor, d) for d in devices]


#: ``pci_dev_acs_enabled[]`` in its order: the first entry that matches and
#: answers (returns >= 0) decides.
ACS_QUIRKS: tuple[tuple[int, int | None, _Quirk], ...] = tuple(
    [(v, d, _amd_sb) for v, d in _ids(0x1002, 0x4385, 0x439C, 0x4383, 0x439D, 0x4384, 0x4399)]
    + [(v, d, _amd_sb) for v, d in _ids(0x1022, 0x780F, 0x7809)]
    + [(v, d, _mf_endpoint) for v, d in _ids(0x1924, 0x0903, 0x0923, 0x0A03)]
    + [
        (v, d, _mf_endpoint)
        for v, d in _ids(
            0x8086,
            *(0x10C6, 0x10DB, 0x10DD, 0x10E1, 0x10F1, 0x10F7, 0x10F8, 0x10F9, 0x10FA, 0x10FB),
            *(0x10FC, 0x1507, 0x1514, 0x151C, 0x1529, 0x152A, 0x154D, 0x154F, 0x1551, 0x1558),
            *(0x1509, 0x150E, 0x150F, 0x1510, 0x1511, 0x1516, 0x1527, 0x10C9, 0x10E6, 0x10E7),
            *(0x10E8, 0x150A, 0x150D, 0x1518, 0x1526, 0x10A7, 0x10A9, 0x10D6, 0x1521, 0x1522),
            *(0x1523, 0x1524, 0x105E, 0x105F, 0x1060, 0x10D9, 0x15B7, 0x15B8),
        )
    ]
    + [(0x8086, _ANY, _rciep)]
    + [
        (v, d, _hardwired("pci_quirk_qcom_rp_acs"))
        for v, d in _ids(0x17CB, 0x0400, 0x0401, 0x0115, 0x0111, 0x0120) + _ids(0x1DBF, 0x0401)
    ]
    + [(0x8086, _ANY, _intel_pch), (0x8086, _ANY, _intel_spt)]
    + [(0x19A2, 0x0710, _mf_endpoint), (0x10DF, 0x0720, _mf_endpoint)]
    + [(0x177D, _ANY, _cavium)]
    + [(v, d, _mf_endpoint) for v, d in _ids(0x177D, 0xA026, 0xA059, 0xA060)]
    + [(0x10E8, 0xE004, _hardwired("pci_quirk_xgene_acs"))]
    + [(v, d, _hardwired("pci_quirk_xgene_acs")) for v, d in _ids(0x1DEF, *range(0xE005, 0xE00D))]
    + [
        (v, d, _mf_endpoint)
        for v, d in _ids(0x14E4, 0x16D7, 0x1750, 0x1751, 0x1752, 0x1760, 0x1761, 0x1762, 0x1763)
    ]
    + [(0x14E4, 0xD714, _hardwired("pci_quirk_brcm_acs"))]
    + [
        (v, d, _hardwired("pci_quirk_loongson_acs"))
        for v, d in _ids(0x0014, 0x3C09, 0x3C19, 0x3C29, *range(0x7A09, 0x7A6A, 0x10))
    ]
    + [(0x1C36, 0x0031, _al)]
    + [(v, d, _mf_endpoint) for v, d in _ids(0x1D17, 0x3038, 0x3104, 0x9083)]
    + [
        (v, d, _hardwired("pci_quirk_nxp_rp_acs"))
        for v, d in _ids(
            0x1957,
            *(0x8D81, 0x8DA1, 0x8D83, 0x8D80, 0x8DA0, 0x8D82, 0x8D90, 0x8DB0, 0x8D92, 0x8D91),
            *(0x8DB1, 0x8D93, 0x8D89, 0x8DA9, 0x8D8B, 0x8D88, 0x8DA8, 0x8D8A, 0x8D98, 0x8DB8),
            *(0x8D9A, 0x8D99, 0x8DB9, 0x8D9B),
        )
    ]
    + [(0x1D17, _ANY, _zhaoxin_ports), (0x8088, _ANY, _unmodelled("pci_quirk_wangxun_nic_acs"))]
)


_BY_VENDOR: dict[int, list[tuple[int | None, _Quirk]]] = {}
for _vendor, _device, _quirk in ACS_QUIRKS:
    _BY_VENDOR.setdefault(_vendor, []).append((_device, _quirk))


def dev_specific_acs_enabled(dev: PciDevice, flags: int) -> QuirkAnswer | None:
    """``pci_dev_specific_acs_enabled()``: a quirk's answer, or ``None`` (-ENOTTY)."""
    for device, quirk in _BY_VENDOR.get(dev.vendor, ()):
        if device is None or device == dev.device:
            answer = quirk(dev, flags)
            if answer is not None:
                return answer
    return None


#: Devices a DMA alias fixup gives requester IDs of other functions (or a
#: bridge's alias rule), by the fixup's name. p2pview does not model aliases
#: beyond the topology's own (PCIe-to-PCI bridges); a grouping that meets one
#: of these says so.
_ALIAS_QUIRKS: dict[tuple[int, int], str] = {
    **{(0x1180, d): "quirk_dma_func0_alias" for d in (0xE832, 0xE476)},
    **{(0x6766, d): "quirk_dma_func0_alias" for d in (0x3D40, 0x3D41)},
    **{
        (0x1B4B, d): "quirk_dma_func1_alias"
        for d in (
            *(0x9120, 0x9123, 0x9125, 0x9128, 0x9130, 0x9170, 0x9172, 0x917A, 0x9182),
            *(0x9183, 0x91A0, 0x9215, 0x9220, 0x9230, 0x9235),
        )
    },
    **{(0x1103, d): "quirk_dma_func1_alias" for d in (0x0642, 0x0645)},
    (0x197B, 0x2392): "quirk_dma_func1_alias",
    (0x1C28, 0x0122): "quirk_dma_func1_alias",
    (0x9005, 0x0285): "quirk_fixed_dma_alias",
    (0x1B21, 0x1080): "quirk_use_pcie_bridge_dma_alias",
    (0x10E3, 0x8113): "quirk_use_pcie_bridge_dma_alias",
    (0x1283, 0x8892): "quirk_use_pcie_bridge_dma_alias",
    (0x1283, 0x8893): "quirk_use_pcie_bridge_dma_alias",
    (0x8086, 0x244E): "quirk_use_pcie_bridge_dma_alias",
    (0x8086, 0x2260): "quirk_mic_x200_dma_alias",
    (0x8086, 0x2264): "quirk_mic_x200_dma_alias",
    **{
        (0x8086, d): "quirk_pex_vca_alias" for d in (0x2954, 0x2955, 0x2956, 0x2958, 0x2959, 0x295A)
    },
    (0x10B5, 0x87B0): "quirk_plx_ntb_dma_alias",
    (0x10B5, 0x87B1): "quirk_plx_ntb_dma_alias",
    **{(0x14E4, d): "quirk_bridge_cavm_thrx2_pcie_root" for d in (0x9000, 0x9084)},
}
#: quirk_switchtec_ntb_dma_alias: Microsemi and EFAR functions of class PCI_CLASS_BRIDGE_OTHER.
_SWITCHTEC_VENDORS = (0x11F8, 0x1055)
_CLASS_BRIDGE_OTHER = 0x0680


def dma_alias_quirk(dev: PciDevice) -> str | None:
    """The DMA alias fixup that applies to ``dev``, by its kernel name, if any."""
    name = _ALIAS_QUIRKS.get((dev.vendor, dev.device))
    if name is not None:
        return name
    if dev.vendor in _SWITCHTEC_VENDORS and dev.class_code >> 8 == _CLASS_BRIDGE_OTHER:
        return "quirk_switchtec_ntb_dma_alias"
    return None
