"""Layer 1: devices, the topology graph and the platform. Pure data."""

from p2pview.model.bdf import BDF, AddressError, RootBus
from p2pview.model.classes import Kind, kind_of
from p2pview.model.device import (
    ACS_REDIRECT_MASK,
    Acs,
    AcsBits,
    AcsPresence,
    Bar,
    BarKind,
    Link,
    P2pMem,
    PciDevice,
    PcieType,
    acs_bit_names,
)
from p2pview.model.platform import IommuMode, Platform
from p2pview.model.provenance import (
    DEVICE_FACTS,
    PLATFORM_FACTS,
    READ,
    Basis,
    DeviceFacts,
    Fact,
    PlatformFacts,
)
from p2pview.model.topology import HostBridge, Topology, TopologyError

__all__ = [
    "ACS_REDIRECT_MASK",
    "BDF",
    "DEVICE_FACTS",
    "PLATFORM_FACTS",
    "READ",
    "Acs",
    "AcsBits",
    "AcsPresence",
    "AddressError",
    "Bar",
    "BarKind",
    "Basis",
    "DeviceFacts",
    "Fact",
    "HostBridge",
    "IommuMode",
    "Kind",
    "Link",
    "P2pMem",
    "PciDevice",
    "PcieType",
    "Platform",
    "PlatformFacts",
    "RootBus",
    "Topology",
    "TopologyError",
    "acs_bit_names",
    "kind_of",
]
