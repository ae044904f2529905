"""One snapshot of the simulated I/O between two stages."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

from p2pview.iosim.context import ProviderInfo
from p2pview.iosim.objects import (
    Bio,
    DmaMapping,
    NvmeCommand,
    PageList,
    Region,
    Request,
    Result,
    SgTable,
    TlpRoute,
)
from p2pview.model import BDF

#: The stages, in order (README and the TUI's pipeline use these names).
STAGES = (
    "mmap",
    "ptes",
    "gup",
    "bio",
    "split",
    "request",
    "map_sg",
    "dma_map",
    "nvme",
    "device_dma",
    "completion",
    "munmap",
)

STAGE_TITLES = {
    "mmap": "mmap and pool allocation",
    "ptes": "page-table entries",
    "gup": "GUP (get/pin user pages)",
    "bio": "bio building and page merging",
    "split": "bio split to queue limits",
    "request": "request formation and merging",
    "map_sg": "blk_rq_map_sg (or the v6.17+ DMA iterator)",
    "dma_map": "DMA mapping",
    "nvme": "nvme PRP list / SGL",
    "device_dma": "device DMA (TLPs)",
    "completion": "completion, unmap, unpin",
    "munmap": "munmap: the chunk back to the pool",
}


# eq=False: it holds arrays; equal only to itself (p2pview.iosim.objects says why).
@dataclass(frozen=True, eq=False)
class SimState:
    """Everything the I/O has built so far. ``result`` is set once it ended."""

    stage: str
    available: dict[BDF, int]
    regions: tuple[Region, ...] = ()
    pages: PageList | None = None
    bios: tuple[Bio, ...] = ()
    requests: tuple[Request, ...] = ()
    sgls: tuple[SgTable, ...] = ()
    mappings: tuple[DmaMapping, ...] = ()
    commands: tuple[NvmeCommand, ...] = ()
    tlps: tuple[TlpRoute, ...] = ()
    #: (request, entry) pairs dma_unmap_sgtable() released (unmapped or unmarked).
    unmapped: tuple[tuple[int, int], ...] = ()
    result: Result | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def next(self, stage: str, **changes: Any) -> SimState:
        """The state after ``stage``, with fields changed."""
        return replace(self, stage=stage, **changes)

    @property
    def ended(self) -> bool:
        """The I/O stopped (error, hang or short count) before this stage."""
        return self.result is not None and self.result.outcome != "ok"


def initial_state(providers: dict[BDF, ProviderInfo]) -> SimState:
    """Before anything: the pools as sysfs shows them."""
    return SimState(stage="start", available={b: p.available for b, p in providers.items()})
