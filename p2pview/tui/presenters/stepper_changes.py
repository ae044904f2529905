"""What one step of a simulated I/O changed, for the stepper to highlight.

Plain Python over the simulator's immutable states: the step's events name
the objects they touched (``bio:0``, ``sg:R:N``, ``prp:R``, ``tlp:R``,
``pool:BDF``, ``region:N``, ``page:N``); comparing the state with the one
before adds what changed without an event naming it (a DMA address written
into a scatterlist entry, a pool's ``available`` count). Only the first
requests are compared: the panels show no more than those.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from p2pview.iosim import SimState, Trace
from p2pview.iosim.objects import Bio, Request, SgTable
from p2pview.model import BDF

#: Requests whose scatterlists, commands and routes are compared (the panels show these).
COMPARED_REQUESTS = 8


@dataclass(frozen=True)
class StepChanges:
    """The objects a step created or changed."""

    touched: frozenset[str]
    #: Buffer mappings (``Region.index``) the step created.
    regions: frozenset[int]
    #: Providers whose ``p2pmem/available`` changed.
    pools: frozenset[BDF]
    #: GUP produced the page list in this step.
    pages: bool
    bios: frozenset[int]
    requests: frozenset[int]
    #: (request, entry) of scatterlist entries created or rewritten.
    sg: frozenset[tuple[int, int]]
    #: Requests whose DMA mapping the step made.
    mappings: frozenset[int]
    #: Requests whose nvme command (PRPs / SGL) the step built.
    commands: frozenset[int]
    #: Requests whose TLP routes the step drew.
    tlps: frozenset[int]
    #: (request, entry) pairs dma_unmap_sgtable() released in this step.
    unmapped: frozenset[tuple[int, int]]
    #: I/O page indexes an error event points at (GUP refusing a page).
    error_pages: frozenset[int]

    def touches(self, key: str) -> bool:
        """An event of the step named ``key``."""
        return key in self.touched


def previous_state(trace: Trace, index: int) -> SimState:
    """The state before step ``index`` (before the first: the pools as sysfs shows them)."""
    if index > 0:
        return trace.steps[index - 1].state
    providers = trace.context.providers
    return SimState(stage="start", available={b: p.available for b, p in providers.items()})


def _keys(touched: frozenset[str], kind: str) -> set[str]:
    prefix = kind + ":"
    return {key[len(prefix) :] for key in touched if key.startswith(prefix)}


def _ints(touched: frozenset[str], kind: str) -> set[int]:
    out = set()
    for text in _keys(touched, kind):
        try:
            out.add(int(text))
        except ValueError:
            continue
    return out


def _bio_shape(bio: Bio) -> tuple[object, ...]:
    return (bio.sector, bio.size, len(bio.bvecs), bio.flags, bio.split_from)


def _request_shape(rq: Request) -> tuple[object, ...]:
    return (rq.bios, rq.sector, rq.size, rq.nr_phys_segments, rq.flags)


def _changed_entries(before: SgTable | None, after: SgTable) -> list[int]:
    """Entries of ``after`` that are new or differ from ``before``."""
    n = len(after)
    if before is None or len(before) != n:
        return list(range(n))
    differs = (
        (before.phys != after.phys)
        | (before.length != after.length)
        | (before.page_link != after.page_link)
        | (before.dma_address != after.dma_address)
        | (before.dma_length != after.dma_length)
        | (before.dma_flags != after.dma_flags)
    )
    return [int(k) for k in np.flatnonzero(differs)]


def step_changes(trace: Trace, index: int) -> StepChanges:
    """What step ``index`` of ``trace`` created or changed."""
    step = trace.steps[index]
    state = step.state
    before = previous_state(trace, index)
    touched = frozenset(key for event in step.events for key in event.touched)

    regions = set(_ints(touched, "region"))
    if state.regions is not before.regions:
        known = {r.index for r in before.regions}
        regions |= {r.index for r in state.regions if r.index not in known}

    pools = {bdf for bdf, value in state.available.items() if before.available.get(bdf) != value}

    bios = set(_ints(touched, "bio"))
    if state.bios is not before.bios:
        old_bios = {b.index: _bio_shape(b) for b in before.bios[:64]}
        bios |= {b.index for b in state.bios[:64] if old_bios.get(b.index) != _bio_shape(b)}

    requests = set(_ints(touched, "rq"))
    if state.requests is not before.requests:
        old_rqs = {r.index: _request_shape(r) for r in before.requests[:64]}
        requests |= {
            r.index for r in state.requests[:64] if old_rqs.get(r.index) != _request_shape(r)
        }

    sg: set[tuple[int, int]] = set()
    for key in _keys(touched, "sg"):
        request, _, entry = key.partition(":")
        if request.isdigit() and entry.isdigit():
            sg.add((int(request), int(entry)))
    if state.sgls is not before.sgls:
        old_sgls = {s.request: s for s in before.sgls[:COMPARED_REQUESTS]}
        for table in state.sgls[:COMPARED_REQUESTS]:
            for k in _changed_entries(old_sgls.get(table.request), table)[:64]:
                sg.add((table.request, k))

    old_maps = {m.request for m in before.mappings}
    mappings = {m.request for m in state.mappings if m.request not in old_maps}
    old_cmds = {c.request for c in before.commands}
    commands = set(_ints(touched, "prp")) | {
        c.request for c in state.commands if c.request not in old_cmds
    }
    old_tlps = {t.request for t in before.tlps}
    tlps = set(_ints(touched, "tlp")) | {t.request for t in state.tlps if t.request not in old_tlps}
    unmapped: set[tuple[int, int]] = set()
    if state.unmapped is not before.unmapped:
        shown = [pair for pair in state.unmapped if pair[0] < COMPARED_REQUESTS]
        unmapped = set(shown) - set(before.unmapped)
    error_pages = {
        int(key.partition(":")[2])
        for event in step.events
        if event.level == "error"
        for key in event.touched
        if key.startswith("page:") and key.partition(":")[2].isdigit()
    }
    return StepChanges(
        touched=touched,
        regions=frozenset(regions),
        pools=frozenset(pools),
        pages=state.pages is not None and before.pages is None,
        bios=frozenset(bios),
        requests=frozenset(requests),
        sg=frozenset(sg),
        mappings=frozenset(mappings),
        commands=frozenset(commands),
        tlps=frozenset(tlps),
        unmapped=frozenset(unmapped),
        error_pages=frozenset(error_pages),
    )
