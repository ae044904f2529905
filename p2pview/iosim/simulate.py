"""Run a scenario through every stage, keeping each state so a stepper can go back."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from p2pview.iosim.block import stage_bio, stage_request, stage_split
from p2pview.iosim.context import SimContext, make_context
from p2pview.iosim.device import stage_completion, stage_device_dma, stage_munmap
from p2pview.iosim.dma import stage_dma_map, stage_map_sg
from p2pview.iosim.mm import stage_gup, stage_mmap, stage_ptes
from p2pview.iosim.nvme import stage_nvme
from p2pview.iosim.objects import RAM, Event, Result, SgTable
from p2pview.iosim.scenario import Scenario
from p2pview.iosim.state import STAGE_TITLES, SimState, initial_state
from p2pview.kernel import KernelState
from p2pview.model import Topology

Stage = Callable[[SimContext, SimState], tuple[SimState, list[Event]]]

STAGE_FUNCTIONS: tuple[tuple[str, Stage], ...] = (
    ("mmap", stage_mmap),
    ("ptes", stage_ptes),
    ("gup", stage_gup),
    ("bio", stage_bio),
    ("split", stage_split),
    ("request", stage_request),
    ("map_sg", stage_map_sg),
    ("dma_map", stage_dma_map),
    ("nvme", stage_nvme),
    ("device_dma", stage_device_dma),
    ("completion", stage_completion),
    ("munmap", stage_munmap),
)
#: After a DMA-mapping error the request completes with it: these stages are skipped.
_SKIPPED_AFTER_MAP_ERROR = ("nvme", "device_dma")


# eq=False: it holds arrays; equal only to itself (p2pview.iosim.objects says why).
@dataclass(frozen=True, eq=False)
class Step:
    """One stage: the state after it and the events it produced."""

    stage: str
    title: str
    state: SimState
    events: tuple[Event, ...]


# eq=False: it holds arrays; equal only to itself (p2pview.iosim.objects says why).
@dataclass(frozen=True, eq=False)
class Trace:
    """A whole simulated I/O."""

    context: SimContext
    steps: tuple[Step, ...]

    @property
    def result(self) -> Result:
        """What the application saw (the last step's result)."""
        for step in reversed(self.steps):
            if step.state.result is not None:
                return step.state.result
        return Result(None, None, 0, "ok")

    @property
    def events(self) -> list[Event]:
        """Every event, in order."""
        return [e for s in self.steps for e in s.events]

    @property
    def final_sgls(self) -> tuple[SgTable, ...]:
        """The mapped scatterlists (after the DMA mapping), or the last ones built."""
        for step in reversed(self.steps):
            if step.state.sgls:
                return step.state.sgls
        return ()


def simulate(scenario: Scenario, topology: Topology, kstate: KernelState) -> Trace:
    """Run every stage until the I/O completes, fails or hangs."""
    ctx = make_context(scenario, topology, kstate)
    state = initial_state(ctx.providers)
    steps: list[Step] = []
    map_error = False
    for name, function in STAGE_FUNCTIONS:
        if map_error and name in _SKIPPED_AFTER_MAP_ERROR:
            continue
        state, events = function(ctx, state)
        steps.append(Step(name, STAGE_TITLES[name], state, tuple(events)))
        result = state.result
        if result is not None and result.outcome in ("error", "hang") and name != "completion":
            if result.outcome == "error" and name in ("dma_map", "nvme"):
                map_error = True  # the request completes with the error: release everything
                continue
            break
    return Trace(ctx, tuple(steps))


class Stepper:
    """Forward and back through a trace's steps (the states are kept, nothing is redone)."""

    def __init__(self, trace: Trace) -> None:
        self.trace = trace
        self.index = 0

    @property
    def step(self) -> Step:
        """The step shown."""
        return self.trace.steps[self.index]

    def forward(self) -> bool:
        """Advance; False at the last step."""
        if self.index + 1 < len(self.trace.steps):
            self.index += 1
            return True
        return False

    def back(self) -> bool:
        """Go back one step; False at the first."""
        if self.index > 0:
            self.index -= 1
            return True
        return False

    def to(self, stage: str) -> bool:
        """Jump to the step of ``stage`` if the trace reached it."""
        for i, step in enumerate(self.trace.steps):
            if step.stage == stage:
                self.index = i
                return True
        return False


def _sg_rows(ctx: SimContext, sg: SgTable, mapped_only: bool) -> list[dict[str, Any]]:
    by_pgmap = {p.pgmap: str(b) for b, p in ctx.providers.items()}
    rows = []
    n = len(sg)
    for k in range(n):
        if mapped_only and sg.nents is not None and k >= sg.nents:
            break
        pg = int(sg.pgmap[k])
        bus = bool(sg.dma_flags[k] & 1) or bool(sg.page_link[k] & 0x04)
        rows.append(
            {
                "request": sg.request,
                "page_pfn": int(sg.phys[k]) >> 12,
                "offset": int(sg.offset[k]),
                "length": int(sg.length[k]),
                "page_link_flags": int(sg.page_link[k]),
                "dma_address": None if int(sg.dma_address[k]) < 0 else int(sg.dma_address[k]),
                "dma_length": int(sg.dma_length[k]),
                "dma_flags": int(sg.dma_flags[k]),
                "bus_address": bus,
                "provider": None if pg == RAM else by_pgmap.get(pg),
            }
        )
    return rows


def trace_document(trace: Trace) -> dict[str, Any]:
    """``p2pview trace --json``: events, every intermediate scatterlist, result, final_sg."""
    ctx = trace.context
    sc = ctx.scenario
    steps = []
    for step in trace.steps:
        entry: dict[str, Any] = {
            "stage": step.stage,
            "title": step.title,
            "events": [
                {
                    "function": e.function,
                    "text": e.text,
                    "touched": list(e.touched),
                    "level": e.level,
                    "confidence": e.confidence,
                    "dmesg": list(e.dmesg),
                }
                for e in step.events
            ],
        }
        if step.stage in ("map_sg", "dma_map"):
            entry["scatterlists"] = [_sg_rows(ctx, sg, False) for sg in step.state.sgls]
        if step.stage in ("mmap", "munmap"):
            entry["p2pmem_available"] = {str(b): v for b, v in step.state.available.items()}
        steps.append(entry)
    final = [row for sg in trace.final_sgls for row in _sg_rows(ctx, sg, True)]
    return {
        "scenario": {
            "name": sc.name,
            "kernel": ctx.datapath.title,
            "client": str(sc.client),
            "op": "write" if sc.write else "read",
            "length": sc.io_length,
            "dma": sc.dma.value,
            "dma_chosen_by": ctx.dma.chosen_by.value,
            "dma_note": ctx.dma.note,
            "kernel_note": ctx.kernel_note,
        },
        "queue_limits": ctx.limits.sysfs()
        | {
            "dma_opt_mapping_size": ctx.limits.dma_opt_mapping_size,
            "notes": list(ctx.limits.notes),
        },
        "providers": {
            str(b): {
                "bar": p.bar,
                "region_start": p.region_start,
                "bus_offset": p.bus_offset,
                "map_type": None
                if ctx.verdict(b).map_type is None
                else ctx.verdict(b).map_type.value,  # type: ignore[union-attr]
                "distance": ctx.verdict(b).distance,
                "notes": list(p.notes),
            }
            for b, p in ctx.providers.items()
        },
        "steps": steps,
        "events": [e for s in steps for e in s["events"]],
        "result": trace.result.to_dict() | {"outcome": trace.result.outcome},
        "final_sg": final,
    }
