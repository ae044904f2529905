"""Coarse device kinds from the PCI class code, for filters and badges."""

from __future__ import annotations

from enum import StrEnum

from p2pview.model.device import PciDevice


class Kind(StrEnum):
    """What a user would call the function."""

    NVME = "nvme"
    STORAGE = "storage"
    GPU = "gpu"
    NIC = "nic"
    ACCEL = "accel"
    BRIDGE = "bridge"
    HOST = "host"
    OTHER = "other"


def kind_of(dev: PciDevice) -> Kind:
    """Classify a function by its class code (PCI Code and ID Assignment spec)."""
    base = (dev.class_code >> 16) & 0xFF
    sub = (dev.class_code >> 8) & 0xFF
    if base == 0x01:
        return Kind.NVME if sub == 0x08 else Kind.STORAGE
    if base == 0x03:
        return Kind.GPU
    if base == 0x02:
        return Kind.NIC
    if base == 0x0C and sub == 0x06:  # InfiniBand serial bus controller
        return Kind.NIC
    if base in (0x12, 0x0B, 0x11):  # processing accelerators, processors, signal processing
        return Kind.ACCEL
    if base == 0x06:
        if sub == 0x00:
            return Kind.HOST
        if dev.is_bridge or sub in (0x04, 0x09):
            return Kind.BRIDGE
    if dev.is_bridge:
        return Kind.BRIDGE
    return Kind.OTHER
