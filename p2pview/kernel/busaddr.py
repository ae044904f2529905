"""Bus offsets and P2P bus addresses (spec sections 4.4 and 4.5, TV13).

``pci_p2pdma_add_resource()`` stores ``bus_offset = pci_bus_address(bar) -
pci_resource_start(bar)`` in unsigned 64-bit arithmetic. A BUS_ADDR segment
gets ``dma_address = phys + bus_offset`` from v5.16 (3a19407913e8, release
[inferred]); before that the kernel subtracted, which is wrong whenever the
offset is not zero (TV13).
"""

from __future__ import annotations

from p2pview.kernel.version import KernelVersion
from p2pview.model import Bar, HostBridge

U64 = (1 << 64) - 1


def bar_bus_address(bar: Bar, host_bridge: HostBridge) -> int:
    """``pci_bus_address()``: the BAR's bus address, else CPU address minus window offset."""
    if bar.bus_address is not None:
        return bar.bus_address
    return (bar.start - host_bridge.mem_offset) & U64


def bus_offset(bar: Bar, host_bridge: HostBridge) -> int:
    """``pci_bus_address(bar) - pci_resource_start(bar)`` as a u64."""
    return (bar_bus_address(bar, host_bridge) - bar.start) & U64


def p2p_dma_address(phys: int, offset: int, version: KernelVersion) -> int:
    """The dma_address of a BUS_ADDR segment: ``phys + bus_offset`` (v5.16+), ``-`` before."""
    if version.is_next or version.series >= (5, 16):
        return (phys + offset) & U64
    return (phys - offset) & U64
