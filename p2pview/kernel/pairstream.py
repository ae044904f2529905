"""Every pair's verdict record, a block of rows at a time, without deciding pairs one by one.

``p2pview matrix --json`` writes, for every (provider, client) pair, what
:meth:`Verdict.to_dict() <p2pview.kernel.Verdict.to_dict>` holds: map type,
distance, the functions whose ACS redirects, and the assumptions and
alternatives. Deciding 4 million pairs one by one takes minutes; this module
gets the same records from the vectorised matrix (:mod:`p2pview.kernel.matrix`)
plus short per-function lists, with memory bounded by the block size:

* the ACS lists come from each function's redirecting (or unknown) ancestors
  and the depth of the pair's common upstream device: the kernel checks the
  provider side up to and including it, the client side below it (spec
  section 3.1);
* assumed parent links likewise (the links below the common device, or both
  whole chains when there is none);
* the platform-wide assumptions (CPU, kernel release, host-bridge functions)
  depend only on the two host bridges;
* alternatives come from the matrices of the alternative kernel states
  (:meth:`KernelState.alternative <p2pview.kernel.decision.KernelState.alternative>`).

``tests/test_pairstream.py`` holds the records equal to the pair-by-pair
decision on generated topologies.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt

from p2pview.kernel.decision import KernelState, _root_complex_whitelist, whitelist_check
from p2pview.kernel.matrix import (
    CODE_TO_MAP_TYPE,
    CODE_UNDETERMINED,
    ChainArrays,
    PairMatrix,
    chain_arrays,
    pair_matrix,
)
from p2pview.kernel.provenance import (
    ALT_ACS,
    ALT_CPU,
    ALT_HOST_BRIDGE,
    ALT_KERNEL,
    PLAUSIBLE_KERNELS,
    cpu_text,
    host_bridge_alternative,
    other_cpu_text,
)
from p2pview.kernel.verdict import Alternative, Assumption
from p2pview.model import BDF, RootBus

#: Cells computed at once (bounds memory: about 20 bytes a cell while a block lives).
BLOCK_CELLS = 1 << 20

_HOST_FACTS = frozenset({"host_bridge_device", "ids", "pcie_type"})

#: A host-bridge-path pair's assumptions, the host bridges consulted, and whether all passed.
_HostFacts = tuple[list[dict[str, str]], list[RootBus], bool]


@dataclass(frozen=True)
class RowRecords:
    """One provider's row: codes and distances for every client, and the records that say more.

    A client ``j`` not in ``records`` has the plain record: its map type
    (``CODE_TO_MAP_TYPE[code[j]]``) and ``distance[j]``, and empty lists.
    """

    provider: BDF
    code: npt.NDArray[np.int8]
    distance: npt.NDArray[np.int16]
    records: dict[int, dict[str, Any]] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class _Mark:
    """A function on some chain whose fact a record may list."""

    depth: int
    bdf: str
    value: str = ""
    why: str = ""


class PairRecords:
    """The per-function lists and per-host-bridge tables the records are built from."""

    def __init__(self, state: KernelState) -> None:
        self.state = state
        topo = state.topology
        self.arrays = chain_arrays(state)
        arr = self.arrays
        self.names = {b: str(b) for b in topo.bdfs}
        self.roots: list[RootBus] = [hb.root for hb in topo.host_bridges]
        depth = {b: int(arr.depth[i]) for i, b in enumerate(arr.bdfs)}
        redirect: dict[BDF, tuple[_Mark, ...]] = {}
        unknown: dict[BDF, tuple[_Mark, ...]] = {}
        parents: dict[BDF, tuple[_Mark, ...]] = {}
        for b in topo.bdfs:
            red, unk, par = [], [], []
            for x in topo.upstream_chain(b):
                eff = state.acs[x]
                if eff.redirect:
                    red.append(_Mark(depth[x], self.names[x]))
                if not eff.known:
                    unk.append(_Mark(depth[x], self.names[x], why=topo[x].fact("acs").how))
                fact = topo[x].fact("parent")
                if fact.is_assumed:
                    dev = topo[x]
                    where = (
                        f"below {dev.parent}"
                        if dev.parent is not None
                        else f"on root bus {topo.root_bus_of(x)}"
                    )
                    par.append(_Mark(depth[x], self.names[x], where, fact.how))
            redirect[b], unknown[b], parents[b] = tuple(red), tuple(unk), tuple(par)
        self.redirect, self.unknown, self.parents = redirect, unknown, parents
        self.root_index = {b: int(arr.host_bridge[i]) for i, b in enumerate(arr.bdfs)}
        plat = topo.platform
        self.cpu: Assumption | None = None
        self.kernel: Assumption | None = None
        if state.target.profile.cpu_check and plat.facts.cpu.is_assumed:
            self.cpu = Assumption(
                "cpu", "platform", cpu_text(plat, state.cpu_supports), plat.facts.cpu.how
            )
        if plat.facts.kernel.is_assumed:
            version = state.target.version
            self.kernel = Assumption(
                "kernel", "platform", f"Linux {version}", plat.facts.kernel.how
            )
        self._host: dict[tuple[int, int, bool], _HostFacts] = {}
        self._alt_keys = self._alternative_keys()
        self._alt_arrays: dict[str, ChainArrays] = {}

    # -- the stream -----------------------------------------------------------

    def rows(self, providers: Sequence[BDF], clients: Sequence[BDF]) -> Iterator[RowRecords]:
        """Every provider's row, computed :data:`BLOCK_CELLS` cells at a time."""
        step = max(1, BLOCK_CELLS // max(1, len(clients)))
        for start in range(0, len(providers), step):
            block = providers[start : start + step]
            matrix = pair_matrix(self.state, block, clients, self.arrays)
            alts = self._alternative_blocks(block, clients, matrix)
            for i, provider in enumerate(block):
                yield self._row(provider, clients, matrix, i, alts)

    def _row(
        self,
        provider: BDF,
        clients: Sequence[BDF],
        m: PairMatrix,
        i: int,
        alts: dict[str, tuple[npt.NDArray[np.int8], npt.NDArray[np.int16]]],
    ) -> RowRecords:
        row = RowRecords(provider, m.map_code[i], m.distance[i])
        special = m.acs[i] | m.assumed[i]
        for j in np.flatnonzero(special).tolist():
            others = [(key, int(c[i, j]), int(d[i, j])) for key, (c, d) in alts.items()]
            row.records[j] = self._record(provider, clients[j], m, i, j, others)
        return row

    def _record(
        self,
        provider: BDF,
        client: BDF,
        m: PairMatrix,
        i: int,
        j: int,
        others: list[tuple[str, int, int]],
    ) -> dict[str, Any]:
        code, dist = int(m.map_code[i, j]), int(m.distance[i, j])
        du = int(m.common_depth[i, j])
        common = du >= 0
        redirect: list[str] = []
        assumptions: list[Assumption] = []
        # Parent links followed: below the common device, or every link without one.
        floor = du if common else -1
        for x in (provider, client):
            for mark in self.parents[x]:
                if mark.depth > floor:
                    assumptions.append(Assumption("parent", mark.bdf, mark.value, mark.why))
        if common:
            # Provider side up to and including the common device, client side below it.
            redirect = [x.bdf for x in self.redirect[provider] if x.depth >= du]
            redirect += [x.bdf for x in self.redirect[client] if x.depth > du]
            for x, lowest in ((provider, du), (client, du + 1)):
                for mark in self.unknown[x]:
                    if mark.depth >= lowest:
                        assumptions.append(Assumption("acs", mark.bdf, "no ACS redirect", mark.why))
        undetermined = code == CODE_UNDETERMINED
        host_path = not common or bool(m.acs[i, j])
        if host_path and not undetermined:
            host, _consulted, _passed = self._host_facts(provider, client, common)
            assumptions.extend(Assumption(**a) for a in host)
        assumptions = list(dict.fromkeys(assumptions))
        alternatives = (
            []
            if undetermined
            else self._alternatives(code, dist, others, assumptions, provider, client, common)
        )
        if not any(alt.fact == "kernel" for alt in alternatives):
            assumptions = [a for a in assumptions if a.fact != "kernel"]
        map_type = CODE_TO_MAP_TYPE[code]
        record: dict[str, Any] = {
            "provider": self.names[provider],
            "client": self.names[client],
            "map_type": None if map_type is None else map_type.value,
            "distance": None if undetermined else dist,
            "acs_redirect": redirect,
            "assumed": sorted({a.subject for a in assumptions}),
            "assumptions": [a.to_dict() for a in assumptions],
            "alternatives": [a.to_dict() for a in alternatives],
        }
        if undetermined:
            record["undetermined"] = self._undetermined_text(provider, client)
        return record

    def _undetermined_text(self, provider: BDF, client: BDF) -> str:
        """:attr:`Verdict.undetermined` for this pair (the same words)."""
        topo = self.state.topology
        tops = [topo.upstream_chain(x)[-1] for x in (provider, client)]
        unknown = [t for t in tops if topo[t].fact("parent").is_assumed]
        names = " and ".join(str(b) for b in dict.fromkeys(unknown))
        return (
            f"the source does not show what is above {names}: whether the two share an upstream"
            " bridge there, and so the map type and the distance, cannot be known"
        )

    # -- host-bridge path ------------------------------------------------------

    def _host_facts(self, provider: BDF, client: BDF, common: bool) -> _HostFacts:
        """Assumptions of a host-bridge-path pair, the host bridges consulted, and the answer."""
        hp, hc = self.root_index[provider], self.root_index[client]
        key = (hp, hc, common)
        cached = self._host.get(key)
        if cached is not None:
            return cached
        state = self.state
        consulted, passed = self._consulted(hp, hc, common)
        out = [a.to_dict() for a in (self.cpu, self.kernel) if a is not None]
        for root in consulted:
            out.extend(a.to_dict() for a in state.host_bridge_basis(root).assumed)
        self._host[key] = (out, consulted, passed)
        return out, consulted, passed

    def _consulted(self, hp: int, hc: int, common: bool) -> tuple[list[RootBus], bool]:
        """The host bridges whose whitelist function the decision looks at, and the outcome.

        ``host_bridge_whitelist()`` (after ``cpu_supports_p2pdma()`` said no) looks
        at the provider's host bridge, then at the client's if the first passed
        and they differ; v5.1-v5.3 ``root_complex_whitelist()`` at both root
        complexes when there is no common device (spec sections 3.2, 3.6).
        """
        state = self.state
        profile = state.target.profile
        rp, rc = self.roots[hp], self.roots[hc]
        if profile.int_distance:
            if not profile.amd_penalty or common:
                return [], True
            first = _root_complex_whitelist(state, self._first_on(rp)).passed
            return ([rp, rc], True) if first else ([rp], False)
        if state.cpu_supports:
            return [], True
        same = hp == hc
        consulted = []
        for root in [rp] if same else [rp, rc]:
            consulted.append(root)
            if not whitelist_check(state, root, same).passed:
                return consulted, False
        return consulted, True

    def _first_on(self, root: RootBus) -> BDF:
        """Some function below ``root`` (``_root_complex_whitelist`` takes any)."""
        arr = self.arrays
        k = self.roots.index(root)
        return arr.bdfs[int(np.flatnonzero(arr.host_bridge == k)[0])]

    # -- alternatives ----------------------------------------------------------

    def _alternative_keys(self) -> list[str]:
        state = self.state
        facts = state.topology.platform.facts
        keys = []
        if bool(self.arrays.unknown.any()):
            keys.append(ALT_ACS)
        if self.cpu is not None:
            keys.append(ALT_CPU)
        if any(state.host_bridge_basis(root).assumed for root in self.roots):
            keys.append(ALT_HOST_BRIDGE)
        if facts.kernel.is_assumed:
            keys.extend(ALT_KERNEL + r for r in PLAUSIBLE_KERNELS)
        return keys

    def _alternative_blocks(
        self, providers: Sequence[BDF], clients: Sequence[BDF], main: PairMatrix
    ) -> dict[str, tuple[npt.NDArray[np.int8], npt.NDArray[np.int16]]]:
        if not self._alt_keys or not bool(main.assumed.any()):
            return {}
        out = {}
        for key in self._alt_keys:
            alt = self.state.alternative(key)
            arrays = self._alt_arrays.get(key)
            if arrays is None:
                arrays = self._alt_arrays[key] = chain_arrays(alt)
            m = pair_matrix(alt, providers, clients, arrays, kernel_step=False)
            out[key] = (m.map_code, m.distance)
        return out

    def _alternatives(
        self,
        code: int,
        dist: int,
        others: list[tuple[str, int, int]],
        assumptions: list[Assumption],
        provider: BDF,
        client: BDF,
        common: bool,
    ) -> list[Alternative]:
        """As :func:`p2pview.kernel.decision.calc_map_type_and_dist` lists them."""
        facts = {a.fact for a in assumptions}
        out = []
        for key, alt_code, alt_dist in others:
            if (alt_code, alt_dist) == (code, dist) or not _wanted(key, facts):
                continue
            map_type = CODE_TO_MAP_TYPE[alt_code]
            if key == ALT_ACS:
                on = ", ".join(a.subject for a in assumptions if a.fact == "acs")
                value = f"ACS redirect is set on {on} (as an IOMMU would set it)"
                out.append(Alternative("acs", on, value, map_type, alt_dist))
            elif key == ALT_CPU:
                value = other_cpu_text(self.state.cpu_supports)
                out.append(Alternative("cpu", "platform", value, map_type, alt_dist))
            elif key == ALT_HOST_BRIDGE:
                _host, consulted, passed = self._host_facts(provider, client, common)
                fact, subject, value = host_bridge_alternative(map(str, consulted), passed)
                out.append(Alternative(fact, subject, value, map_type, alt_dist))
            else:
                release = key.removeprefix(ALT_KERNEL)
                value = f"the kernel is Linux {release}"
                out.append(Alternative("kernel", "platform", value, map_type, alt_dist))
        return out


def _wanted(key: str, facts: set[str]) -> bool:
    """Whether the alternative ``key`` belongs to a pair with these assumed facts."""
    if key == ALT_ACS:
        return "acs" in facts
    if key == ALT_CPU:
        return "cpu" in facts
    if key == ALT_HOST_BRIDGE:
        return bool(facts & _HOST_FACTS)
    return "kernel" in facts
