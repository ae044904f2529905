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

Each value carries its source (:class:`LimitSource`): the kernel's default for
it with the function and file that set it, the limit that lowered it, or the
scenario that gives it. The faces show these; they do not work them out again.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

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


class LimitBasis(StrEnum):
    """How a queue limit got its value."""

    #: The kernel's own value for it (or p2pview's, for a queue whose driver it
    #: does not model): nothing lowered it.
    DEFAULT = "default"
    #: A limit lowered or replaced the default: the DMA mapping size, the
    #: controller's MDTS, BLK_DEF_MAX_SECTORS_CAP, an SGL-capable controller.
    LIMITED = "limited"
    #: The scenario gives the value (``[target]``): written to sysfs, or a what-if.
    GIVEN = "given"


@dataclass(frozen=True, slots=True)
class LimitSource:
    """Where one queue limit's value comes from, for the faces to show beside it."""

    #: The value's name in ``/sys/block/*/queue/`` (``dma_opt_mapping_size``: the
    #: DMA API's, not a sysfs file).
    name: str
    basis: LimitBasis
    #: The kernel function and file, constant or scenario key it comes from.
    why: str
    #: The line of :attr:`KernelLimits.notes` that says it (``"name N: why"``),
    #: for a value a limit set.
    note: str | None = None


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
    #: How the values were derived, in order: each limit that set a value
    #: (``"name N: why"``, also where one lowered later replaced it) and each
    #: assumption made (what ``p2pview trace`` prints under the limits).
    notes: tuple[str, ...] = ()
    #: Each value's source: logical_block_size, the sysfs values of
    #: :meth:`sysfs`, then dma_opt_mapping_size when it limits anything.
    sources: tuple[LimitSource, ...] = ()

    def source(self, name: str) -> LimitSource:
        """The source of the value called ``name`` (KeyError for one not listed)."""
        for source in self.sources:
            if source.name == name:
                return source
        raise KeyError(name)

    @property
    def other_notes(self) -> tuple[str, ...]:
        """The notes that are no value's source: a limit a later one lowered, an assumption."""
        used = {source.note for source in self.sources}
        return tuple(note for note in self.notes if note not in used)

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
    # The source of each value a limit set, by name (a later limit replaces an earlier one).
    limited: dict[str, LimitSource] = {}

    def limit(name: str, value: int, why: str, basis: LimitBasis = LimitBasis.LIMITED) -> None:
        note = f"{name} {value}: {why}"
        limited[name] = LimitSource(name, basis, why, note)
        notes.append(note)

    max_map, opt_map = _mapping_sizes(dp, dma)
    virt = NVME_CTRL_PAGE_SIZE - 1
    nvme = scenario.target is TargetKind.NVME
    if nvme:
        hw = dp.nvme_max_hw_kb * 2
        cap = opt_map if dp.nvme_opt_mapping_cap else max_map
        func = "dma_opt_mapping_size()" if dp.nvme_opt_mapping_cap else "dma_max_mapping_size()"
        if cap is not None and cap >> SECTOR_SHIFT < hw:
            hw = cap >> SECTOR_SHIFT
            why = "the IOMMU's IOVA rcache limit" if dma is DmaMode.IOMMU else "swiotlb's slots"
            limit(
                "max_hw_sectors_kb",
                hw // 2,
                f"nvme_pci_alloc_dev() caps it at {func} = {cap // 1024} KiB ({why})",
            )
        elif dma is DmaMode.IOMMU and not dp.nvme_opt_mapping_cap:
            limit(
                "max_hw_sectors_kb",
                hw // 2,
                "this release caps it with dma_max_mapping_size(), not the IOMMU's 128 KiB"
                " dma_opt_mapping_size() (v6.4, 3710e2b056cb)",
                LimitBasis.DEFAULT,  # the value is NVME_MAX_KB_SZ's; the note says why
            )
        mdts = scenario.nvme.mdts
        if mdts:
            mdts_limit = mdts_sectors(mdts)
            if mdts_limit < hw:
                hw = mdts_limit
                limit(
                    "max_hw_sectors_kb",
                    hw // 2,
                    f"the controller's MDTS {mdts} (2^{mdts} pages of 4 KiB; nvme_init_identify())",
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
            limit(
                "virt_boundary_mask",
                0,
                "nvme_pci_get_virt_boundary() sets none on the I/O queues of an SGL-capable"
                " controller",
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
            limit(
                "max_sectors_kb",
                max_sectors // 2,
                "blk_validate_limits() caps it at BLK_DEF_MAX_SECTORS_CAP"
                f" ({dp.def_max_sectors_kb} KiB in this release)",
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
        sources=_sources(dp, scenario, dma, hw // 2, limited),
    )


def _sources(
    dp: DataPath,
    scenario: Scenario,
    dma: DmaMode,
    max_hw_kb: int,
    limited: dict[str, LimitSource],
) -> tuple[LimitSource, ...]:
    """Each value's source: the scenario's value, the limit that set it, or the kernel's default.

    ``limited``: the source of each value a limit set, by name. The defaults
    are the functions spec section 7.0 items 2-3 read: nvme-pci's
    ``nvme_pci_alloc_dev()``, nvme core's ``nvme_set_ctrl_limits()``, the block
    layer's ``blk_validate_limits()``.
    """
    given = scenario.limits
    release = f"Linux {dp.title}"
    nvme = scenario.target is TargetKind.NVME
    unmodelled = "p2pview's default for a queue whose driver it does not model"
    what_if = "(a what-if; the driver's value replaced)"

    def source(name: str, default: str, given_value: object = None) -> LimitSource:
        if given_value is not None:
            return LimitSource(name, LimitBasis.GIVEN, f"the scenario's target.{name} {what_if}")
        return limited.get(name) or LimitSource(name, LimitBasis.DEFAULT, default)

    lbs = (
        LimitSource(
            "logical_block_size", LimitBasis.GIVEN, "the scenario's target.logical_block_size"
        )
        if given.logical_block_size != 512
        else LimitSource(
            "logical_block_size",
            LimitBasis.DEFAULT,
            "the namespace's LBA format, taken as 512 bytes (assumed; the scenario's"
            " target.logical_block_size gives another)",
        )
    )
    if given.max_sectors_kb is not None:
        max_sectors = LimitSource(
            "max_sectors_kb",
            LimitBasis.GIVEN,
            "written to max_sectors_kb (the scenario's target.max_sectors_kb), at most"
            " max_hw_sectors_kb",
        )
    else:
        max_sectors = source(
            "max_sectors_kb",
            f"= max_hw_sectors_kb, under BLK_DEF_MAX_SECTORS_CAP ({dp.def_max_sectors_kb} KiB"
            f" in {release}; blk_validate_limits(), block/blk-settings.c)",
        )
    by_size = max_hw_kb * 2 // 8 + 1
    out = [
        lbs,
        source(
            "max_hw_sectors_kb",
            f"NVME_MAX_KB_SZ, {dp.nvme_max_hw_kb} KiB in {release} (nvme_pci_alloc_dev(),"
            " drivers/nvme/host/pci.c); no lower MDTS or DMA mapping limit"
            if nvme
            else f"{unmodelled} (BLK_DEF_MAX_SECTORS_CAP of {release})",
        ),
        max_sectors,
        source(
            "max_segments",
            f"the lower of max_hw_sectors / 8 + 1 = {by_size} and NVME_MAX_SEGS ="
            f" {dp.nvme_max_segments} (nvme_set_ctrl_limits(), drivers/nvme/host/core.c)"
            if nvme
            else f"{unmodelled} (BLK_MAX_SEGMENTS, 128)",
            given.max_segments,
        ),
        source(
            "max_segment_size",
            "UINT_MAX (nvme_set_ctrl_limits())" if nvme else f"{unmodelled} (UINT_MAX)",
            given.max_segment_size,
        ),
        source(
            "virt_boundary_mask",
            "NVME_CTRL_PAGE_SIZE - 1: a PRP addresses whole controller pages"
            " (nvme_set_ctrl_limits())"
            if nvme
            else f"{unmodelled} (NVME_CTRL_PAGE_SIZE - 1)",
            given.virt_boundary_mask,
        ),
    ]
    if dma is DmaMode.SWIOTLB:
        out.append(
            LimitSource(
                "dma_opt_mapping_size",
                LimitBasis.DEFAULT,
                "swiotlb_max_mapping_size(): 128 slots of 2 KiB less the 4 KiB nvme's"
                " alignment costs (kernel/dma/swiotlb.c)",
            )
        )
    elif dma is DmaMode.IOMMU:
        out.append(
            LimitSource(
                "dma_opt_mapping_size",
                LimitBasis.DEFAULT,
                "the IOMMU's iova_rcache_range(): IOVAs up to 128 KiB are cached"
                " (drivers/iommu/iova.c)",
            )
        )
    return tuple(out)
