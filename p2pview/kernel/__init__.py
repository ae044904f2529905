"""Layer 3: the kernel's P2PDMA decision, per kernel era, and the all-pairs matrix."""

from p2pview.kernel.acs import AcsEffect, effective_acs, with_iommu_acs
from p2pview.kernel.decision import (
    KernelState,
    calc_map_type_and_dist,
    cpu_supports_p2pdma,
    host_bridge_whitelist,
    pci_host_bridge_dev,
    prepare,
)
from p2pview.kernel.many import (
    DistanceMany,
    FindMany,
    NonPciClient,
    pci_p2pdma_distance_many,
    pci_p2pmem_find_many,
)
from p2pview.kernel.matrix import PairMatrix, chain_arrays, pair_matrix
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
