"""The block queue's limits as the kernel computes them for one nvme namespace.

What ``/sys/block/nvme*/queue/*`` shows, derived the way the kernel derives it
(spec section 7.0 items 2-3; read in the Debian trees of 6.1.176, 6.12.117 and
7.2.13):

* ``nvme_pci_alloc_dev()`` (drivers/nvme/host/pci.c) sets the controller's
  ``max_hw_sectors`` to ``min(NVME_MAX_KB_SZ << 1, dma_max_mapping_size() >> 9)``
  up to v6.3 and ``min(..., dma_opt_mapping_size() >> 9)`` from v6.4
  (3710e2b056cb). With a translating IOMMU ``dma_opt_mapping_size()`` is
  ``iommu_dma_opt_mapping_size()`` = ``iova_rcache_range()`` =
  ``PAGE_SIZE << (IOVA_RANGE_CACHE_MAX_SIZE - 1)`` = 128 KiB
  (drivers/iommu/iova.c); under ``swiotlb=force`` ``dma_max_mapping_size()`` is
  ``swiotlb_max_mapping_size()`` = 128 slots of 2 KiB less the 4 KiB that
  nvme's min_align_mask costs (kernel/dma/swiotlb.c) = 252 KiB.
* ``nvme_init_identify()`` (drivers/nvme/host/core.c) lowers it to the
  controller's MDTS: ``1 << (MDTS + 12 + MPSMIN - 9)`` sectors (MPSMIN taken as
  0, 4 KiB pages, as QEMU's controller reports) [read].
* ``nvme_set_ctrl_limits()``: ``max_segments = min(USHRT_MAX,
  min_not_zero(max_hw_sectors / 8 + 1, NVME_MAX_SEGS))``, ``max_segment_size =
  UINT_MAX``, ``virt_boundary_mask = NVME_CTRL_PAGE_SIZE - 1`` (in 7.2.13 only
  for a controller without SGL support: ``nvme_pci_get_virt_boundary()``).
* ``blk_validate_limits()`` (block/blk-settings.c): ``max_sectors =
  min(max_hw_sectors, BLK_DEF_MAX_SECTORS_CAP)`` unless the user wrote
  ``max_sectors_kb`` (then ``min(max_hw_sectors, max_user_sectors)``); io_opt and
  io_min above the cap would raise it: they are assumed below it.
"""

from __future__ import annotations

from dataclasses import dataclass

from p2pview.iosim.datapath import DataPath
from p2pview.iosim.scenario import DmaMode, QueueLimits, Scenario, TargetKind

UINT_MAX = 0xFFFFFFFF
USHRT_MAX = 0xFFFF
SECTOR_SHIFT = 9
NVME_CTRL_PAGE_SIZE = 4096
#: iova_rcache_range(): PAGE_SIZE << (IOVA_RANGE_CACHE_MAX_SIZE - 1), 6 in every
#: tree read (drivers/iommu/iova.c) [read 6.1.176, 6.12.117, 7.2.13].
IOVA_RCACHE_RANGE = 4096 << 5
#: swiotlb_max_mapping_size(): IO_TLB_SIZE * IO_TLB_SEGSIZE - roundup(min_align_mask,
#: IO_TLB_SIZE), with nvme's min_align_mask NVME_CTRL_PAGE_SIZE - 1 [read 6.12.117].
SWIOTLB_MAX_MAPPING = 2048 * 128 - 4096
#: BLK_SEG_BOUNDARY_MASK, the default segment boundary.
SEG_BOUNDARY_MASK = 0xFFFFFFFF


@dataclass(frozen=True, slots=True)
class KernelLimits:
    """The queue_limits the I/O runs with, and where each value came from.

    Sizes are in bytes or KiB as sysfs shows them; ``dma_opt_mapping_size`` and
    ``dma_max_mapping_size`` are None when they do not limit anything
    (SIZE_MAX).
    """

    logical_block_size: int
    max_hw_sectors_kb: int
    max_sectors_kb: int
    max_segments: int
    max_segment_size: int
    seg_boundary_mask: int
    virt_boundary_mask: int
    dma_opt_mapping_size: int | None
    dma_max_mapping_size: int | None
    #: One line per value that was derived or given, for the faces.
    notes: tuple[str, ...] = ()

    def sysfs(self) -> dict[str, int]:
        """The values as ``/sys/block/nvme*/queue/*`` names them.

        ``virt_boundary_mask`` is a sysfs file from v6.9 [recalled]; it is listed
        for every release because the simulation uses it.
        """
        return {
            "logical_block_size": self.logical_block_size,
            "max_hw_sectors_kb": self.max_hw_sectors_kb,
            "max_sectors_kb": self.max_sectors_kb,
            "max_segments": self.max_segments,
            "max_segment_size": self.max_segment_size,
            "virt_boundary_mask": self.virt_boundary_mask,
        }

    def summary(self) -> str:
        """One line, as ``grep . /sys/block/nvme0n1/queue/*`` would list them."""
        parts = [
            f"max_hw_sectors_kb {self.max_hw_sectors_kb}",
            f"max_sectors_kb {self.max_sectors_kb}",
            f"max_segments {self.max_segments}",
            f"max_segment_size {self.max_segment_size}",
            f"virt_boundary_mask {self.virt_boundary_mask:#x}",
        ]
        if self.dma_opt_mapping_size is not None:
            parts.append(f"dma_opt_mapping_size {self.dma_opt_mapping_size}")
        return "queue limits: " + ", ".join(parts)


def _mapping_sizes(dp: DataPath, dma: DmaMode) -> tuple[int | None, int | None]:
    """``dma_max_mapping_size()`` and ``dma_opt_mapping_size()`` for the client (None: SIZE_MAX)."""
    if dma is DmaMode.SWIOTLB:
        # dma_direct_max_mapping_size(): swiotlb force-bounce is active.
        return SWIOTLB_MAX_MAPPING, SWIOTLB_MAX_MAPPING
    if dma is DmaMode.IOMMU:
        # iommu_dma_max_mapping_size() is SIZE_MAX for a trusted device; the
        # opt size exists from v5.19 (its use by nvme from v6.4).
        return None, IOVA_RCACHE_RANGE
    return None, None


def mdts_sectors(mdts: int) -> int:
    """``nvme_mps_to_sectors(ctrl, mdts)`` with MPSMIN 0: UINT_MAX when the shift overflows."""
    shift = mdts + 12 - SECTOR_SHIFT
    return UINT_MAX if shift >= 32 else 1 << shift


def kernel_limits(dp: DataPath, scenario: Scenario, dma: DmaMode) -> KernelLimits:
    """The limits nvme-pci and the block layer set, then the scenario's own values."""
    given: QueueLimits = scenario.limits
    lbs = given.logical_block_size
    lbs_sectors = lbs >> SECTOR_SHIFT
    notes: list[str] = []
    max_map, opt_map = _mapping_sizes(dp, dma)
    virt = NVME_CTRL_PAGE_SIZE - 1
    if scenario.target is TargetKind.NVME:
        hw = dp.nvme_max_hw_kb * 2
        cap = opt_map if dp.nvme_opt_mapping_cap else max_map
        func = "dma_opt_mapping_size()" if dp.nvme_opt_mapping_cap else "dma_max_mapping_size()"
        if cap is not None and cap >> SECTOR_SHIFT < hw:
            hw = cap >> SECTOR_SHIFT
            why = "the IOMMU's IOVA rcache limit" if dma is DmaMode.IOMMU else "swiotlb's slots"
            notes.append(
                f"max_hw_sectors_kb {hw // 2}: nvme_pci_alloc_dev() caps it at {func} ="
                f" {cap // 1024} KiB ({why})"
            )
        elif dma is DmaMode.IOMMU and not dp.nvme_opt_mapping_cap:
            notes.append(
                f"max_hw_sectors_kb {hw // 2}: this release caps it with dma_max_mapping_size(),"
                " not the IOMMU's 128 KiB dma_opt_mapping_size() (v6.4, 3710e2b056cb)"
            )
        mdts = scenario.nvme.mdts
        if mdts:
            limit = mdts_sectors(mdts)
            if limit < hw:
                hw = limit
                notes.append(
                    f"max_hw_sectors_kb {hw // 2}: the controller's MDTS {mdts}"
                    f" (2^{mdts} pages of 4 KiB; nvme_init_identify())"
                )
        elif mdts is None:
            notes.append(
                "the controller's MDTS is not given (nvme.mdts): taken as 0, no limit"
                " (assumed; QEMU's default is 7, 512 KiB)"
            )
        segs = min(USHRT_MAX, min(hw // (NVME_CTRL_PAGE_SIZE >> SECTOR_SHIFT) + 1,
                                  dp.nvme_max_segments))  # fmt: skip
        if dp.sgl_no_virt_boundary and scenario.nvme.sgl:
            virt = 0
            notes.append(
                "virt_boundary_mask 0: nvme_pci_get_virt_boundary() sets none on the I/O"
                " queues of an SGL-capable controller"
            )
        max_seg_size = UINT_MAX
    else:
        # Not an nvme queue: p2pview does not model its driver's limits.
        hw = dp.def_max_sectors_kb * 2
        segs = 128
        max_seg_size = UINT_MAX
        notes.append("not an nvme queue: limits are p2pview's defaults or the scenario's")
    hw = max(hw // lbs_sectors * lbs_sectors, lbs_sectors)
    if given.max_sectors_kb is not None:
        # Written to max_sectors_kb: max_user_sectors.
        max_sectors = min(hw, given.max_sectors_kb * 2)
    else:
        max_sectors = min(hw, dp.def_max_sectors_kb * 2)
        if hw > max_sectors:
            notes.append(
                f"max_sectors_kb {max_sectors // 2}: blk_validate_limits() caps it at"
                f" BLK_DEF_MAX_SECTORS_CAP ({dp.def_max_sectors_kb} KiB in this release)"
            )
    max_sectors = max(max_sectors // lbs_sectors * lbs_sectors, lbs_sectors)
    if given.max_segments is not None:
        segs = given.max_segments
    if given.max_segment_size is not None:
        max_seg_size = given.max_segment_size
    if given.virt_boundary_mask is not None:
        virt = given.virt_boundary_mask
    return KernelLimits(
        logical_block_size=lbs,
        max_hw_sectors_kb=hw // 2,
        max_sectors_kb=max_sectors // 2,
        max_segments=segs,
        max_segment_size=max_seg_size,
        seg_boundary_mask=(
            given.seg_boundary_mask if given.seg_boundary_mask is not None else SEG_BOUNDARY_MASK
        ),
        virt_boundary_mask=virt,
        dma_opt_mapping_size=opt_map,
        dma_max_mapping_size=max_map,
        notes=tuple(notes),
    )
