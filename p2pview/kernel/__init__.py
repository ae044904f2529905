"""Layer 3: the kernel's P2PDMA decision, per kernel era, and the all-pairs matrix.

The matrix (:mod:`p2pview.kernel.matrix`) needs numpy, which one pair's
decision does not: its names are imported on first use, so that ``p2pview
explain`` starts without numpy. So are those of ``pci_p2pmem_find_many()``
(:mod:`p2pview.kernel.many`), which only ``p2pview find`` uses.
"""

from typing import TYPE_CHECKING

from p2pview import lend_lazily
from p2pview.kernel.acs import AcsEffect, effective_acs, with_iommu_acs
from p2pview.kernel.decision import (
    KernelState,
    calc_map_type_and_dist,
    cpu_supports_p2pdma,
    host_bridge_whitelist,
    pci_host_bridge_dev,
    prepare,
)
from p2pview.kernel.messages import KernelMessage
from p2pview.kernel.profiles import (
    DEFAULT_KERNEL,
    PROFILES,
    KernelTarget,
    Profile,
    profile_for,
)
from p2pview.kernel.verdict import AcsCheck, MapType, PathKind, Verdict, WhitelistCheck
from p2pview.kernel.version import KernelVersion, VersionError

if TYPE_CHECKING:
    from p2pview.kernel.many import (
        DistanceMany,
        FindMany,
        NonPciClient,
        pci_p2pdma_distance_many,
        pci_p2pmem_find_many,
    )
    from p2pview.kernel.matrix import PairMatrix, chain_arrays, pair_matrix

#: The names imported on first use, by the module that defines them.
_LAZY = {
    "p2pview.kernel.matrix": frozenset({"PairMatrix", "chain_arrays", "pair_matrix"}),
    "p2pview.kernel.many": frozenset(
        {
            "DistanceMany",
            "FindMany",
            "NonPciClient",
            "pci_p2pdma_distance_many",
            "pci_p2pmem_find_many",
        }
    ),
}


#: The matrix's names (with numpy) and find_many's, imported when first asked for.
__getattr__ = lend_lazily(globals(), _LAZY)


__all__ = [
    "DEFAULT_KERNEL",
    "PROFILES",
    "AcsCheck",
    "AcsEffect",
    "DistanceMany",
    "FindMany",
    "KernelMessage",
    "KernelState",
    "KernelTarget",
    "KernelVersion",
    "MapType",
    "NonPciClient",
    "PairMatrix",
    "PathKind",
    "Profile",
    "Verdict",
    "VersionError",
    "WhitelistCheck",
    "calc_map_type_and_dist",
    "chain_arrays",
    "cpu_supports_p2pdma",
    "effective_acs",
    "host_bridge_whitelist",
    "pair_matrix",
    "pci_host_bridge_dev",
    "pci_p2pdma_distance_many",
    "pci_p2pmem_find_many",
    "prepare",
    "profile_for",
    "with_iommu_acs",
]
