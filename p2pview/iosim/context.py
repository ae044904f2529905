"""What stays fixed while one I/O is simulated: topology, kernel, providers, limits."""

from __future__ import annotations

from dataclasses import dataclass, field

from p2pview.iosim.datapath import DataPath, DataPathKernel, datapath_for
from p2pview.iosim.dmachoice import DmaChoice, choose_dma
from p2pview.iosim.limits import KernelLimits, kernel_limits
from p2pview.iosim.scenario import BufferKind, Scenario, TargetKind
from p2pview.kernel import KernelState, Verdict, calc_map_type_and_dist
from p2pview.kernel.busaddr import U64, bar_bus_address
from p2pview.model import BDF, Bar, BarKind, PciDevice, Topology
from p2pview.model.errors import InputError


class ScenarioError(InputError):
    """A scenario that does not fit its topology (one line, naming what is wrong)."""


@dataclass(frozen=True)
class ProviderInfo:
    """Where a provider's p2pmem lives (spec section 4.4), and how sure that is."""

    bdf: BDF
    pgmap: int
    bar: int | None
    region_start: int
    region_size: int
    bus_offset: int
    pool_size: int
    available: int
    published: bool
    notes: tuple[str, ...] = ()

    def bus_address(self, phys: int) -> int:
        """``pci_bus_address`` of CPU address ``phys`` in this region (the correct sum)."""
        return (phys + self.bus_offset) & U64


@dataclass
class SimContext:
    """The fixed inputs of a simulation and the verdicts it looked up."""

    scenario: Scenario
    topology: Topology
    kstate: KernelState
    datapath: DataPath
    providers: dict[BDF, ProviderInfo]
    limits: KernelLimits
    queue_p2pdma: bool
    client: PciDevice
    #: The DMA mode (``scenario.dma``) and who chose it: the scenario, the
    #: topology's IOMMU, or the default when the topology does not say.
    dma: DmaChoice
    #: Set when the scenario names another kernel than the one the verdicts come
    #: from: the data path follows the verdicts' kernel, and this says so.
    kernel_note: str | None = None
    verdicts: dict[BDF, Verdict] = field(default_factory=dict)

    def verdict(self, provider: BDF) -> Verdict:
        """``calc_map_type_and_dist(provider, client)``, computed once (the xarray cache)."""
        if provider not in self.verdicts:
            self.verdicts[provider] = calc_map_type_and_dist(self.kstate, provider, self.client.bdf)
        return self.verdicts[provider]


def _pick_bar(dev: PciDevice, size: int, wanted: int | None) -> tuple[Bar | None, str | None]:
    """The scenario's BAR, the p2pmem record's, or the smallest prefetchable BAR that fits."""
    by_index = {b.index: b for b in dev.bars}
    if wanted is not None:
        return by_index.get(wanted), None
    if dev.p2pmem is not None and dev.p2pmem.bar is not None:
        return by_index.get(dev.p2pmem.bar), (
            "the BAR holding p2pmem was inferred" if dev.p2pmem.bar_inferred else None
        )
    fits = [
        b
        for b in dev.bars
        if b.kind is BarKind.MEM and b.prefetchable and b.index <= 5 and b.size >= size
    ]
    if not fits:
        return None, None
    bar = min(fits, key=lambda b: (b.size, b.index))
    return bar, (
        f"sysfs does not say which BAR holds p2pmem: took BAR{bar.index}, the smallest"
        " prefetchable memory BAR that can hold p2pmem/size (inferred)"
    )


def _provider(topo: Topology, bdf: BDF, pgmap: int, scenario: Scenario) -> ProviderInfo:
    if bdf not in topo:
        raise ScenarioError(
            f"{scenario.path or scenario.name}: provider {bdf} is not in the topology"
        )
    dev = topo[bdf]
    segs = [s for s in scenario.buffer if s.provider == bdf]
    wanted_bar = next((s.bar for s in segs if s.bar is not None), None)
    region = next((s.region_address for s in segs if s.region_address is not None), None)
    region_bus = next(
        (s.region_bus_address for s in segs if s.region_bus_address is not None), None
    )
    mem = dev.p2pmem
    needs_pool = any(s.kind in (BufferKind.P2PMEM, BufferKind.NVME_CMB) for s in segs)
    if needs_pool and mem is None and region is None:
        raise ScenarioError(
            f"{scenario.path or scenario.name}: {bdf} has no p2pmem (no CMB registered with"
            " pci_p2pdma_add_resource()); it cannot provide P2P memory"
        )
    pool_size = next((s.pool_size for s in segs if s.pool_size is not None), None)
    size = (
        pool_size
        if pool_size is not None
        else mem.size
        if mem is not None
        else sum(s.size for s in segs)
    )
    notes: list[str] = []
    bar, note = _pick_bar(dev, size, wanted_bar)
    if note:
        notes.append(note)
    hb = topo.host_bridge(bdf)
    if region is not None:
        start = region
        bus = region_bus if region_bus is not None else (region - hb.mem_offset) & U64
    elif bar is not None:
        start = bar.start
        bus = bar_bus_address(bar, hb)
    else:
        raise ScenarioError(
            f"{scenario.path or scenario.name}: {bdf}: the source records no memory BAR that"
            " can hold its p2pmem; give region_address in the scenario's [[buffer]]"
        )
    pool = size
    available = mem.available if mem is not None and pool_size is None else pool
    if pool_size is not None:
        notes.append(f"p2pmem/size {pool_size:#x} as the scenario gives it (pool_size)")
    return ProviderInfo(
        bdf=bdf,
        pgmap=pgmap,
        bar=None if bar is None else bar.index,
        region_start=start,
        region_size=pool,
        bus_offset=(bus - start) & U64,
        pool_size=pool,
        available=available,
        published=True if mem is None else mem.published,
        notes=tuple(notes),
    )


def _data_path_kernel(scenario: Scenario, kstate: KernelState) -> tuple[DataPathKernel, str | None]:
    """The release whose data path runs, and a note when the scenario named another.

    One run has one kernel: the verdicts' (``kstate``). The CLI boots the engine
    on the scenario's ``kernel``, so the two agree there; the TUI's stepper runs
    a scenario under the session's kernel (a what-if may have changed it). The
    v5 series (``5.17-series``) is a data path of its release, kept when the
    release agrees.
    """
    release = DataPathKernel.of(kstate.target)
    ours = release.version
    named = scenario.kernel
    if named is None:
        return release, None
    theirs = named.version
    if theirs.series == ours.series and (theirs.patch in (0, ours.patch) or ours.patch == 0):
        # The same release, one of them more precise (6.12 and 6.12.117): that one.
        return (named if named.series or theirs.patch else release), None
    return release, (
        f"the scenario names kernel {named}; it runs under {release}, the kernel of the"
        " verdicts (change it on the what-if screen)"
    )


def make_context(scenario: Scenario, topology: Topology, kstate: KernelState) -> SimContext:
    """Resolve the scenario against its topology and kernel."""
    where = scenario.path or scenario.name
    if scenario.client not in topology:
        raise ScenarioError(f"{where}: client {scenario.client} is not in the topology")
    kernel, kernel_note = _data_path_kernel(scenario, kstate)
    datapath = datapath_for(kernel)
    providers: dict[BDF, ProviderInfo] = {}
    for seg in scenario.buffer:
        if seg.provider is not None and seg.provider not in providers:
            providers[seg.provider] = _provider(
                topology, seg.provider, len(providers) + 1, scenario
            )
    dma = choose_dma(scenario, topology)
    if scenario.dma is not dma.mode:
        scenario = scenario.replace(dma=dma.mode)
    limits = kernel_limits(datapath, scenario, scenario.dma)
    if scenario.limits.p2pdma is not None:
        queue_p2pdma = scenario.limits.p2pdma
    else:
        # nvme sets the queue flag when its DMA ops can do P2P (v6.2+, and the
        # v5 series); other queues never do [spec section 7.3].
        queue_p2pdma = scenario.target is TargetKind.NVME and (
            datapath.allocate_file or datapath.series
        )
    return SimContext(
        scenario=scenario,
        topology=topology,
        kstate=kstate,
        datapath=datapath,
        providers=providers,
        limits=limits,
        queue_p2pdma=queue_p2pdma,
        client=topology[scenario.client],
        dma=dma,
        kernel_note=kernel_note,
    )
