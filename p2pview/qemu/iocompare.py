"""``p2pview verify --io``'s comparison: one scenario as the guest ran it against the simulator.

What must agree, per scenario: the queue limits of the client's namespace,
the number of commands with their first LBA and block count, PRP or SGL per
command (an SGL's descriptor in the command or in a list), every range the
controller mapped (address and length; CMB bus addresses and, without an
IOMMU, RAM physical addresses are exact; through an IOMMU, IOVAs by their
offset in the page and length), the P2P pages' placement, the bytes or errno
the call returned, and whether the kernel WARNed.

The simulator runs on the guest's own capture with the guest kernel's release
and QEMU's controller (SGLs supported, the machine's MDTS); the RAM pages are
the guest's (their placement is the page allocator's, not something the data
path decides).

QEMU-specific: QEMU 7.2's controller refuses a command that mixes its own
CMB with any other address (``nvme_map_addr()`` in hw/nvme/ctrl.c returns
Invalid Use of Controller Memory Buffer, status 0x12 with DNR), where a real
controller transfers. The expected commands and result are adjusted for it,
and the scenario's report says so.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from p2pview.model import BDF, Topology
from p2pview.qemu.ioscenarios import PAGE, SECTOR, IoCheckError, IoScenario, guest_bdf
from p2pview.qemu.machine import CMB_BAR, Machine
from p2pview.qemu.nvmetrace import NvmeCommand

#: Queue limits the guest prints and the simulator computes (sysfs names).
LIMIT_NAMES = (
    "logical_block_size",
    "max_hw_sectors_kb",
    "max_sectors_kb",
    "max_segments",
    "max_segment_size",
    "virt_boundary_mask",
)
#: Linux's errno for QEMU's "Invalid Use of Controller Memory Buffer" (an I/O error).
QEMU_CMB_REFUSAL = "EIO"
_PFN_RUN = re.compile(r"^(0x[0-9a-f]+)\+([0-9]+)$")


@dataclass
class GuestRun:
    """One scenario as the guest ran it."""

    pfns: dict[int, list[int]] = field(default_factory=dict)
    result: str | None = None
    setup: str | None = None
    dmesg: list[str] = field(default_factory=list)

    @property
    def warned(self) -> bool:
        """The kernel printed a WARNING (a WARN_ON or WARN splat)."""
        return any("WARNING:" in line for line in self.dmesg)


def parse_limits(lines: Sequence[str]) -> tuple[dict[str, str], dict[str, dict[str, int]]]:
    """``ns`` lines (namespace -> controller BDF) and ``limit`` lines (namespace -> values)."""
    ns: dict[str, str] = {}
    limits: dict[str, dict[str, int]] = {}
    for line in lines:
        parts = line.split()
        if len(parts) == 3 and parts[0] == "ns":
            ns[parts[1]] = parts[2]
        elif len(parts) == 4 and parts[0] == "limit" and parts[3].isdigit():
            limits.setdefault(parts[1], {})[parts[2]] = int(parts[3])
    return ns, limits


def _pfn_runs(text: str) -> list[int]:
    out: list[int] = []
    for run in text.split(","):
        m = _PFN_RUN.match(run)
        if m is None:
            raise ValueError(run)
        first, count = int(m[1], 16), int(m[2])
        if count > 1 << 16:
            raise ValueError(run)
        out.extend(range(first, first + count))
    return out


def parse_io(lines: Sequence[str], names: Sequence[str]) -> dict[str, GuestRun]:
    """The ``io`` section: each scenario's page frames, result and log lines."""
    runs = {name: GuestRun() for name in names}
    for line in lines:
        name, _, rest = line.partition(" ")
        run = runs.get(name)
        if run is None:
            continue
        kind, _, value = rest.partition(" ")
        if kind == "seg":
            index, _, pfn = value.partition(" pfn ")
            try:
                run.pfns[int(index)] = _pfn_runs(pfn.strip())
            except ValueError:
                run.setup = f"unreadable page frames: {pfn.strip()[:60]!r}"
        elif kind == "result":
            run.result = value.strip()
        elif kind == "setup":
            run.setup = value.strip()
        elif kind == "dmesg":
            run.dmesg.append(value.strip())
    return runs


@dataclass(frozen=True)
class ExpectedCommand:
    """A command as the simulator says the controller will see it."""

    op: str
    slba: int
    nlb: int
    dptr: str
    sgl_inline: bool
    ranges: tuple[tuple[int, int], ...]
    #: QEMU refuses it (own CMB mixed with other memory).
    refused: bool = False


def qemu_prp_ranges(
    prp1: int, prp2: int | None, entries: Sequence[int], length: int
) -> list[tuple[int, int]]:
    """The ranges ``nvme_map_prp()`` (QEMU 7.2) maps for PRPs the driver built."""
    first = min(length, PAGE - prp1 % PAGE)
    ranges = [(prp1, first)]
    left = length - first
    if left <= 0:
        return ranges
    if left <= PAGE:
        return [*ranges, (prp2 if prp2 is not None else -1, left)]
    for entry in entries:
        if left <= 0:
            break
        n = min(left, PAGE)
        ranges.append((int(entry), n))
        left -= n
    return ranges


def _cmb_window(topo: Topology, client: BDF) -> tuple[int, int] | None:
    """The client's own CMB (BAR 2) when it has one: QEMU maps it itself."""
    dev = topo[client]
    if dev.p2pmem is None:
        return None
    bar = next((b for b in dev.bars if b.index == CMB_BAR), None)
    return None if bar is None else (bar.start, bar.start + bar.size)


def expected_commands(trace: Any, topo: Topology, client: BDF) -> list[ExpectedCommand]:
    """The commands the simulated I/O issues, as QEMU's trace will list them."""
    sc = trace.context.scenario
    state = trace.steps[-1].state
    rq_by_index = {rq.index: rq for rq in state.requests}
    window = _cmb_window(topo, client)
    out: list[ExpectedCommand] = []
    for cmd in state.commands:
        if cmd.status != "BLK_STS_OK":
            continue
        rq = rq_by_index[cmd.request]
        if cmd.use_sgl:
            ranges = []
            left = rq.size
            for addr, n, _kind in cmd.sgl:
                if left <= 0:
                    break
                take = min(n, left)
                ranges.append((addr, take))
                left -= take
            inline = cmd.sgl_in_command
        else:
            assert cmd.prp1 is not None
            ranges = qemu_prp_ranges(cmd.prp1, cmd.prp2, cmd.prp_list.tolist(), rq.size)
            inline = False
        refused = False
        if window is not None:
            # QEMU-specific (hw/nvme/ctrl.c nvme_map_addr()): the first range decides
            # whether the command's memory is the controller's own CMB or DMA; a range
            # of the other kind is Invalid Use of Controller Memory Buffer. QEMU has
            # traced that range before refusing, and maps nothing after it.
            in_cmb = [window[0] <= a < window[1] for a, _ in ranges]
            bad = next((i for i, c in enumerate(in_cmb) if c != in_cmb[0]), None)
            if bad is not None:
                ranges = ranges[: bad + 1]
                refused = True
        out.append(
            ExpectedCommand(
                "write" if sc.write else "read",
                rq.sector,
                rq.size // SECTOR,
                "sgl" if cmd.use_sgl else "prp",
                inline,
                tuple(ranges),
                refused,
            )
        )
    return out


def _fmt_ranges(ranges: Sequence[tuple[int, int]], most: int = 4) -> str:
    shown = [f"{a:#x}+{n}" for a, n in ranges[:most]]
    if len(ranges) > most:
        shown.append(f"... ({len(ranges)} ranges)")
    return " ".join(shown)


def _describe(cmd: ExpectedCommand | NvmeCommand) -> str:
    """``read lba 0 nlb 8 sgl inline 1 range(s)``: one command, predicted or traced."""
    if cmd.dptr == "sgl":
        kind = "sgl inline" if cmd.sgl_inline else "sgl list"
    else:
        kind = cmd.dptr or "rejected"
    return f"{cmd.op} lba {cmd.slba} nlb {cmd.nlb} {kind} {len(cmd.ranges)} range(s)"


def iova_view(
    ranges: Sequence[tuple[int, int]], bars: Sequence[tuple[int, int]] | None
) -> tuple[tuple[int, int], ...]:
    """Ranges as far as the kernel determines them.

    Without an IOMMU (``bars`` None) every address is exact. Through one, an
    address inside a BAR is a bus address (exact) and any other is an IOVA,
    which iommu-dma's allocator places: only its offset in the page is kept,
    as ``-1 - offset``.
    """
    if bars is None:
        return tuple(ranges)
    out = []
    for addr, n in ranges:
        bus = any(lo <= addr < hi for lo, hi in bars)
        out.append((addr if bus else -1 - (addr % PAGE), n))
    return tuple(out)


def compare_commands(
    expected: Sequence[ExpectedCommand],
    seen: Sequence[NvmeCommand],
    bars: Sequence[tuple[int, int]] | None = None,
) -> list[str]:
    """What differs between the predicted and the traced commands (sorted by LBA).

    ``bars``: the machine translates DMA; ranges compare through :func:`iova_view`.
    """
    diffs: list[str] = []
    exp = sorted(expected, key=lambda c: (c.slba, c.op))
    got = sorted(seen, key=lambda c: (c.slba, c.op))
    if len(exp) != len(got):
        diffs.append(
            f"{len(got)} command(s) traced, {len(exp)} predicted: traced"
            f" [{'; '.join(_describe(c) for c in got[:4])}], predicted"
            f" [{'; '.join(_describe(c) for c in exp[:4])}]"
        )
        return diffs
    for i, (e, g) in enumerate(zip(exp, got, strict=True)):
        where = f"command {i} (lba {g.slba})"
        if (e.op, e.slba, e.nlb) != (g.op, g.slba, g.nlb):
            diffs.append(f"{where}: traced {_describe(g)}, predicted {_describe(e)}")
            continue
        if e.dptr != g.dptr or (e.dptr == "sgl" and e.sgl_inline != g.sgl_inline):
            diffs.append(f"{where}: traced {_describe(g)}, predicted {_describe(e)}")
        if iova_view(g.ranges, bars) != iova_view(e.ranges, bars):
            diffs.append(
                f"{where}: ranges traced {_fmt_ranges(g.ranges)}, predicted {_fmt_ranges(e.ranges)}"
                + (" (IOVAs compared by page offset and length)" if bars is not None else "")
            )
        refused = "INVALID_USE_OF_CMB" if e.refused else None
        if refused and g.mapped == g.count:
            diffs.append(
                f"{where}: QEMU was predicted to refuse it (own CMB mixed with other memory)"
            )
    return diffs


def _check_page_cache(
    cached: Sequence[NvmeCommand], start: int, blocks: int, io: IoScenario, topo: Topology
) -> list[str]:
    """The page cache's commands: the call's direction, RAM only, ``blocks`` from ``start``.

    Which page-cache pages and how much readahead are the page cache's and
    readahead's choices, which p2pview does not model.
    """
    op = "write" if io.write else "read"
    bars = [(b.start, b.start + b.size) for d in topo.devices for b in d.bars if b.size]
    out: list[str] = []
    covered: set[int] = set()
    for c in cached:
        if c.op != op:
            out.append(f"page cache: a {c.op} command at lba {c.slba}, expected {op}s")
        if any(lo <= a < hi for a, _ in c.ranges for lo, hi in bars):
            out.append(f"page cache: the command at lba {c.slba} maps a BAR, not RAM")
        covered.update(range(c.slba, c.slba + c.nlb))
    missing = [b for b in range(start, start + blocks) if b not in covered]
    if missing:
        out.append(
            f"page cache: blocks {missing[0]}-{missing[-1]} of the buffered part have no command"
        )
    return out


@dataclass
class IoResult:
    """One scenario: the guest's observations, p2pview's prediction, and what differs."""

    name: str
    origin: str
    seen: str
    predicted: str
    #: The direct I/O's commands, compared one by one with the prediction. The page
    #: cache's (a buffered fallback's) are checked for the blocks they cover, but not
    #: counted: how many readahead issues is its own choice and varies between boots.
    commands: int
    predicted_commands: int
    summary: str
    differences: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def agrees(self) -> bool:
        """Nothing differs."""
        return not self.differences


def _sim_result(trace: Any) -> str:
    """The simulated call's return as the guest prints it: bytes, ``-1 ERRNO`` or ``hang``."""
    r = trace.result
    if r.outcome == "hang":
        return "hang"
    if r.errno is not None and r.outcome == "error":
        return f"-1 {r.errno}"
    return str(r.bytes)


def _sim_warned(trace: Any) -> bool:
    return any("WARNING" in d for e in trace.events for d in e.dmesg) or any(
        "WARN_ON" in e.text and e.level != "info" for e in trace.events
    )


def simulate_guest(
    io: IoScenario, machine: Machine, session: Any, release: str, mdts: int, run: GuestRun
) -> Any:
    """The simulator's trace of ``io`` on the guest's capture, with the guest's RAM pages."""
    from p2pview.iosim.datapath import DataPathKernel
    from p2pview.iosim.scenario import BufferKind, BufferSegment, Iovec, NvmeSetup, Scenario
    from p2pview.iosim.simulate import simulate

    buffer = []
    for k, seg in enumerate(io.segments):
        if seg.provider is None:
            pfns = run.pfns.get(k, [])
            if len(pfns) * PAGE < seg.size or not all(pfns):
                raise IoCheckError(f"{io.name}: the guest gave no page frames for buffer[{k}]")
            buffer.append(BufferSegment(BufferKind.RAM, seg.size, pfns=tuple(pfns)))
        else:
            buffer.append(
                BufferSegment(
                    BufferKind.P2PMEM, seg.size, provider=guest_bdf(machine, seg.provider)
                )
            )
    scenario = Scenario(
        name=io.name,
        description=f"p2pview verify --io ({io.origin})",
        source="guest capture",
        kernel=DataPathKernel.parse(release),
        buffer=tuple(buffer),
        client=guest_bdf(machine, io.client),
        write=io.write,
        file_offset=io.file_offset,
        iovecs=tuple(Iovec(o, n) for o, n in io.iovecs),
        # The guest reads and writes the namespace's block device itself.
        blockdev=True,
        nvme=NvmeSetup(sgl=True, mdts=mdts),
    )
    return simulate(scenario, session.topology, session.state)


def check_scenario(
    io: IoScenario,
    machine: Machine,
    session: Any,
    release: str,
    mdts: int,
    run: GuestRun,
    seen: list[NvmeCommand] | None,
    ns_limits: dict[str, int] | None,
    iommu: bool = False,
) -> IoResult:
    """Compare one scenario's guest run and trace with the simulator."""
    notes = list(io.adapted)
    if run.setup is not None:
        return IoResult(
            io.name,
            io.origin,
            f"setup {run.setup}",
            "-",
            0,
            0,
            "",
            [f"the guest could not set the scenario up: {run.setup}"],
            notes,
        )
    trace = simulate_guest(io, machine, session, release, mdts, run)
    diffs: list[str] = []
    # Queue limits of the client's namespace.
    if ns_limits is None:
        diffs.append("the guest printed no queue limits for the client's namespace")
    else:
        sim = trace.context.limits.sysfs()
        for key in LIMIT_NAMES:
            if key in ns_limits and key in sim and ns_limits[key] != sim[key]:
                diffs.append(f"queue limit {key}: kernel {ns_limits[key]}, p2pview {sim[key]}")
    # P2P pages where the simulator's pool put them.
    for region in trace.steps[0].state.regions:
        if region.provider is None:
            continue
        got = run.pfns.get(region.index, [])
        want = [int(p) >> 12 for p in region.phys]
        if got[: len(want)] != want:
            first = f"{got[0]:#x}" if got else "none"
            diffs.append(
                f"buffer[{region.index}]: the guest's P2P pages start at pfn {first},"
                f" p2pview's at {want[0]:#x}"
            )
    expected = expected_commands(trace, session.topology, guest_bdf(machine, io.client))
    predicted = _sim_result(trace)
    if any(c.refused for c in expected):
        predicted = f"-1 {QEMU_CMB_REFUSAL}"
        notes.append(
            "QEMU 7.2 refuses a command mixing the controller's own CMB with other memory"
            " (Invalid Use of Controller Memory Buffer); a real controller transfers it"
        )
    seen_result = run.result or "none"
    if seen_result != predicted:
        diffs.append(f"result: kernel {seen_result}, p2pview {predicted}")
    direct: list[Any] = []
    if seen is None:
        diffs.append("the sentinel reads around the scenario are not in QEMU's trace")
        seen = []
    else:
        buffered = int(trace.steps[-1].state.extra.get("buffered", 0))
        direct, cached = seen, []
        if buffered:
            end = io.file_offset // SECTOR + (io.length - buffered) // SECTOR
            direct = [c for c in seen if c.slba < end]
            cached = [c for c in seen if c.slba >= end]
            diffs.extend(_check_page_cache(cached, end, buffered // SECTOR, io, session.topology))
            notes.append(
                f"{buffered} bytes through the page cache (the block device's buffered"
                " fallback): its commands are checked as RAM covering those blocks"
            )
        bars = None
        if iommu:
            topo = session.topology
            bars = [(b.start, b.start + b.size) for d in topo.devices for b in d.bars if b.size]
        diffs.extend(compare_commands(expected, direct, bars))
    if run.warned != _sim_warned(trace):
        lines = [ln for ln in run.dmesg if "WARNING" in ln][:1]
        diffs.append(
            f"WARN: kernel {'yes' if run.warned else 'no'}"
            + (f" ({lines[0]})" if lines else "")
            + f", p2pview {'yes' if _sim_warned(trace) else 'no'}"
        )
    kinds = sorted({c.dptr or "rejected" for c in seen})
    summary = f"{len(seen)} command(s)" + (f" ({', '.join(kinds)})" if seen else "")
    return IoResult(
        io.name, io.origin, seen_result, predicted, len(direct), len(expected), summary, diffs,
        notes,
    )  # fmt: skip
