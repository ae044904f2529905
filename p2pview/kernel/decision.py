"""``calc_map_type_and_dist()`` and the checks it makes, per kernel era.

Follows spec sections 2-3 (``kernel-p2pdma.md``), which paraphrase
``drivers/pci/p2pdma.c``: S-4.20 and S-5.1 (torvalds/linux @ 02917e9f and
3306e99e) for the int-distance eras, the v5.9-v5.14 copy for
``upstream_bridge_distance()``, and S-5.15 / S-6.2 / S-new (pci.git @
cd2698d7) for ``calc_map_type_and_dist()``; the newest copy was re-read for
this module (loop structure, messages, the 128-byte ``seq_buf``).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, field

from p2pview.kernel.acs import AcsEffect, effective_acs
from p2pview.kernel.messages import KernelMessage
from p2pview.kernel.profiles import HostBridgeDevRule, KernelTarget
from p2pview.kernel.provenance import (
    ALT_ACS,
    ALT_CPU,
    ALT_HOST_BRIDGE,
    ALT_KERNEL,
    HostBridgeBasis,
    alternative_keys,
    facts_used,
    host_bridge_basis,
    make_alternative,
    same_outcome,
)
from p2pview.kernel.verdict import AcsCheck, MapType, PathKind, Verdict, WhitelistCheck
from p2pview.kernel.whitelist import match_entry
from p2pview.model import BDF, AcsBits, PcieType, RootBus, Topology

#: v5.1-v5.3 ``root_complex_whitelist()``: the AMD Zen root complex.
AMD_ZEN_ROOT = (0x1022, 0x1450)
#: v5.1-v5.3 penalty added when both root complexes are whitelisted.
AMD_PENALTY = 0x1000


@dataclass(frozen=True, slots=True)
class HostBridgeLookup:
    """``pci_host_bridge_dev()`` (or the slot-00.0 lookup) for one root bus."""

    root: RootBus
    device: BDF | None
    reason: str


@dataclass
class KernelState:
    """What a kernel knows after boot: effective ACS, the CPU check, host-bridge devices.

    Build it with :func:`prepare`; it is shared by the pair-by-pair function
    and the vectorised matrix.
    """

    topology: Topology
    target: KernelTarget
    acs: Mapping[BDF, AcsEffect]
    boot_messages: tuple[KernelMessage, ...]
    cpu_supports: bool
    host_bridge_devs: Mapping[RootBus, HostBridgeLookup]
    #: Whitelist results imposed on host bridges (alternative states only).
    whitelist_overrides: Mapping[RootBus, bool] = field(default_factory=dict)
    _whitelist_cache: dict[tuple[RootBus, bool], WhitelistCheck] = field(default_factory=dict)
    _alternatives: dict[str, KernelState] = field(default_factory=dict)
    _hb_basis: dict[RootBus, HostBridgeBasis] = field(default_factory=dict)

    @property
    def profile_key(self) -> str:
        """The era profile key."""
        return self.target.profile.key

    def host_bridge_basis(self, root: RootBus) -> HostBridgeBasis:
        """How the function the whitelist looks at for ``root`` is known."""
        basis = self._hb_basis.get(root)
        if basis is None:
            lookup = self.host_bridge_devs[root]
            basis = host_bridge_basis(self.topology, root, lookup.device)
            self._hb_basis[root] = basis
        return basis

    def alternative(self, key: str) -> KernelState:
        """This state with one assumed fact given its other plausible value.

        Keys (:mod:`p2pview.kernel.provenance`): ``acs`` (every function
        whose ACS is unknown has RR|CR set, as an IOMMU would set them),
        ``cpu`` (``cpu_supports_p2pdma()`` flipped), ``host_bridge`` (the
        whitelist result flipped on every host bridge whose function is
        assumed), ``kernel:X.Y`` (release X.Y on the same topology).
        """
        alt = self._alternatives.get(key)
        if alt is not None:
            return alt
        if key == ALT_ACS:
            acs = {
                bdf: eff
                if eff.known
                else dataclasses.replace(eff, redirect=int(AcsBits.RR | AcsBits.CR), known=True)
                for bdf, eff in self.acs.items()
            }
            alt = self._fresh(acs=acs)
        elif key == ALT_CPU:
            alt = self._fresh(cpu_supports=not self.cpu_supports)
        elif key == ALT_HOST_BRIDGE:
            flips = {
                hb.root: not whitelist_check(self, hb.root, True).passed
                for hb in self.topology.host_bridges
                if self.host_bridge_basis(hb.root).assumed
            }
            alt = self._fresh(whitelist_overrides=flips)
        elif key.startswith(ALT_KERNEL):
            return self.under(KernelTarget.parse(key.removeprefix(ALT_KERNEL)))
        else:
            raise KeyError(f"no alternative {key!r}")
        self._alternatives[key] = alt
        return alt

    def under(self, target: KernelTarget) -> KernelState:
        """The same topology booted on another release (kept, as the alternatives are)."""
        key = ALT_KERNEL + str(target.version)
        alt = self._alternatives.get(key)
        if alt is None:
            alt = self._alternatives[key] = prepare(self.topology, target)
        return alt

    def _fresh(self, **changes: object) -> KernelState:
        """A copy with some fields changed and empty caches."""
        return dataclasses.replace(
            self,
            _whitelist_cache={},
            _alternatives={},
            _hb_basis={},
            **changes,  # type: ignore[arg-type]
        )


def prepare(topology: Topology, target: KernelTarget) -> KernelState:
    """Boot ``target`` on ``topology``: apply the ACS parameters, run the one-off checks."""
    acs, boot = effective_acs(topology, target)
    lookups = {
        hb.root: pci_host_bridge_dev(topology, target, hb.root) for hb in topology.host_bridges
    }
    return KernelState(
        topology=topology,
        target=target,
        acs=acs,
        boot_messages=boot,
        cpu_supports=cpu_supports_p2pdma(topology, target),
        host_bridge_devs=lookups,
    )


def cpu_supports_p2pdma(topology: Topology, target: KernelTarget) -> bool:
    """``cpu_supports_p2pdma()`` (v5.9+, dea286bb71ba; spec section 2.4).

    True only on x86 with an AMD CPU of family 0x17 (Zen) or later; Hygon
    (its own vendor) and every other architecture get false. Re-read in the
    newest tree: no other vendor was added.
    """
    if not target.profile.cpu_check:
        return False
    plat = topology.platform
    return plat.is_x86 and plat.cpu_vendor == "AuthenticAMD" and plat.cpu_family >= 0x17


def pci_host_bridge_dev(
    topology: Topology, target: KernelTarget, root: RootBus
) -> HostBridgeLookup:
    """The function whose IDs stand for host bridge ``root`` (spec section 2.2).

    v4.20-v5.14: ``pci_get_slot(host->bus, PCI_DEVFN(0, 0))``. v5.15-v5.18:
    the first device of ``host->bus->devices`` if it is devfn 00.0. v5.19+
    (1af7c26c59eb): ... or if ``pci_pcie_type()`` says Root Port. The first
    device is modelled as the lowest devfn on the root bus (scan order).
    """
    rule = target.host_bridge_dev or HostBridgeDevRule.SLOT_00_0
    on_bus = topology.root_bus_devices(root)
    if rule is HostBridgeDevRule.SLOT_00_0:
        for bdf in on_bus:
            if bdf.devfn == 0:
                return HostBridgeLookup(root, bdf, "the function at devfn 00.0")
        return HostBridgeLookup(root, None, "no function at devfn 00.0 on the root bus")
    if not on_bus:
        return HostBridgeLookup(root, None, "the root bus has no functions")
    first = on_bus[0]
    if first.devfn == 0:
        return HostBridgeLookup(root, first, "the first function on the root bus, at devfn 00.0")
    if rule is HostBridgeDevRule.FIRST_IF_DEVFN_0_OR_ROOT_PORT:
        dev = topology[first]
        if dev.pcie_type is PcieType.ROOT_PORT:
            return HostBridgeLookup(root, first, "the first function on the root bus, a Root Port")
        what = "not a Root Port" if dev.pcie_type is not None else "of unknown port type"
        return HostBridgeLookup(
            root, None, f"the first function {first} is not at devfn 00.0 and is {what}"
        )
    return HostBridgeLookup(root, None, f"the first function {first} is not at devfn 00.0")


def whitelist_check(state: KernelState, root: RootBus, same: bool) -> WhitelistCheck:
    """``__host_bridge_whitelist(host, same_host_bridge, warn)`` without the warning."""
    key = (root, same)
    cached = state._whitelist_cache.get(key)
    if cached is not None:
        return cached
    lookup = state.host_bridge_devs[root]
    override = state.whitelist_overrides.get(root)
    if override is not None:
        dev_ids = state.topology[lookup.device] if lookup.device is not None else None
        check = WhitelistCheck(
            root,
            same,
            lookup.device,
            None if dev_ids is None else dev_ids.vendor,
            None if dev_ids is None else dev_ids.device,
            "(assumed)" if override else None,
            override,
            "assumed " + ("in" if override else "not in") + " the whitelist",
        )
    elif lookup.device is None:
        check = WhitelistCheck(root, same, None, None, None, None, False, lookup.reason)
    else:
        dev = state.topology[lookup.device]
        entry = match_entry(
            state.target.whitelist,
            dev.vendor,
            dev.device,
            wildcard=state.target.profile.wildcard_ids,
        )
        if entry is None:
            check = WhitelistCheck(
                root,
                same,
                dev.bdf,
                dev.vendor,
                dev.device,
                None,
                False,
                f"{dev.shown_ids} ({lookup.reason}) is not in pci_p2pdma_whitelist[]",
            )
        elif entry.requires_same_host_bridge and not same:
            check = WhitelistCheck(
                root,
                same,
                dev.bdf,
                dev.vendor,
                dev.device,
                entry.ids,
                False,
                f"{entry.ids} ({entry.comment}) has REQ_SAME_HOST_BRIDGE and the devices"
                " are below different host bridges",
            )
        else:
            check = WhitelistCheck(
                root,
                same,
                dev.bdf,
                dev.vendor,
                dev.device,
                entry.ids,
                True,
                f"{dev.shown_ids} matches the whitelist row {entry.ids} ({entry.comment})",
            )
    state._whitelist_cache[key] = check
    return check


def host_bridge_whitelist(
    state: KernelState, provider: BDF, client: BDF, warn: bool
) -> tuple[bool, list[WhitelistCheck], list[KernelMessage]]:
    """``host_bridge_whitelist(a, b, warn)`` (spec section 3.2).

    Same host bridge: one check with ``same_host_bridge``. Different: both
    must pass, and the second is not looked at when the first fails. The
    "not in whitelist" warning (v5.15+, only when ``warn``) is printed on the
    function checked, and only when no row matched.
    """
    topo = state.topology
    ha, hb = topo.root_bus_of(provider), topo.root_bus_of(client)
    roots = [ha] if ha == hb else [ha, hb]
    checks: list[WhitelistCheck] = []
    messages: list[KernelMessage] = []
    for root in roots:
        check = whitelist_check(state, root, ha == hb)
        warned = (
            warn
            and state.target.profile.whitelist_warning
            and check.device is not None
            and check.entry is None
        )
        if warned:
            assert (
                check.device is not None
                and check.vendor is not None
                and check.device_id is not None
            )
            dev = topo[check.device]
            messages.append(
                KernelMessage(
                    "warn",
                    dev.bdf,
                    dev.driver,
                    "Host bridge not in P2PDMA whitelist:"
                    f" {check.vendor:04x}:{check.device_id:04x}",
                )
            )
            check = dataclasses.replace(check, warned=True)
        checks.append(check)
        if not check.passed:
            return False, checks, messages
    return True, checks, messages


def _root_complex_whitelist(state: KernelState, bdf: BDF) -> WhitelistCheck:
    """v5.1-v5.3 ``root_complex_whitelist(dev)``: devfn 00.0 of the root bus is AMD 1022:1450."""
    root = state.topology.root_bus_of(bdf)
    lookup = state.host_bridge_devs[root]
    if lookup.device is None:
        return WhitelistCheck(root, False, None, None, None, None, False, lookup.reason)
    dev = state.topology[lookup.device]
    ok = (dev.vendor, dev.device) == AMD_ZEN_ROOT
    reason = (
        f"{dev.shown_ids} is the AMD Zen root complex (1022:1450)"
        if ok
        else f"{dev.shown_ids} is not the AMD Zen root complex 1022:1450"
    )
    return WhitelistCheck(
        root, False, dev.bdf, dev.vendor, dev.device, "1022:1450" if ok else None, ok, reason
    )


class _AcsList:
    """The ``seq_buf`` the ACS list is printed into (kernel notes, item 4).

    An entry is taken whole only if the text then stays under ``size``
    (``seq_buf_vprintf()``: ``len + n < size``). The first entry that does not
    fit is cut to what fits in ``size - 1`` characters, and later entries
    are dropped. The final ';' is dropped only when nothing overflowed (on
    overflow the kernel's ``buffer[len-1] = 0`` lands one byte past the
    buffer instead).
    """

    def __init__(self, size: int) -> None:
        self.size = size
        self.text = ""
        self.overflowed = False

    def add(self, bdf: BDF) -> None:
        if self.overflowed:
            return
        entry = f"{bdf};"
        if len(self.text) + len(entry) < self.size:
            self.text += entry
        else:
            self.text = (self.text + entry)[: self.size - 1]
            self.overflowed = True

    def printed(self) -> str:
        return self.text if self.overflowed else self.text[:-1]


def calc_map_type_and_dist(state: KernelState, provider: BDF, client: BDF) -> Verdict:
    """Decide one (provider, client) pair as the chosen kernel does, verbosely.

    ``calc_map_type_and_dist(provider, client, &dist, verbose=true)`` in v5.15+,
    ``upstream_bridge_distance_warn()`` in v5.4-v5.14 and
    ``upstream_bridge_distance_warn()`` returning an int in v4.20-v5.3 (spec
    sections 3.1, 3.5, 3.6). The messages are those the verbose call prints.

    The verdict also says which of the facts it used were assumed or
    inferred (:mod:`p2pview.kernel.provenance`), and what it would be under
    the other plausible value of each assumed fact, where that changes it.
    """
    verdict = _calc(state, provider, client)
    assumptions, inferred = facts_used(
        state.topology,
        verdict,
        cpu_supports=state.cpu_supports,
        cpu_checked=verdict.cpu_supports is not None,
        kernel=str(state.target.version),
        host_bridges=state.host_bridge_basis,
    )
    verdict = dataclasses.replace(verdict, assumptions=assumptions, inferred=inferred)
    if not assumptions or verdict.undetermined:
        return verdict
    alternatives = []
    for key in alternative_keys(assumptions):
        other = _calc(state.alternative(key), provider, client)
        if not same_outcome(verdict, other):
            alternatives.append(make_alternative(key, verdict, other, state.cpu_supports))
    if not any(alt.fact == "kernel" for alt in alternatives):
        # p2pview always models one release; where every plausible release decides
        # this pair alike, the verdict does not rest on which one the machine runs.
        assumptions = tuple(a for a in assumptions if a.fact != "kernel")
    return dataclasses.replace(verdict, assumptions=assumptions, alternatives=tuple(alternatives))


def _calc(state: KernelState, provider: BDF, client: BDF) -> Verdict:
    """The kernel's walk and tail for one pair, without provenance.

    Notes:
        An ACS state that could not be read is taken as "no redirect", as the
        kernel would see no capability it could not read; such devices on the
        counted path are listed in ``Verdict.assumed``.
    """
    topo = state.topology
    profile = state.target.profile
    pchain = topo.upstream_chain(provider)
    cchain = topo.upstream_chain(client)
    cindex = {bdf: i for i, bdf in enumerate(cchain)}
    acs_list = _AcsList(profile.acs_list_size)
    checks: list[AcsCheck] = []
    redirect: list[BDF] = []
    assumed: list[BDF] = []

    common: BDF | None = None
    for a in pchain:
        eff = state.acs[a]
        checks.append(AcsCheck(a, "provider", eff.redirect, eff.known, True))
        if eff.redirect:
            acs_list.add(a)
        if a in cindex:
            common = a
            break
    if common is None:
        dist = len(pchain) + len(cchain)
        checks = [AcsCheck(c.device, c.side, c.redirect, c.known, False) for c in checks]
    else:
        dist_a, dist_b = len(checks) - 1, cindex[common]
        dist = dist_a + dist_b
        for bb in cchain[:dist_b]:
            eff = state.acs[bb]
            checks.append(AcsCheck(bb, "client", eff.redirect, eff.known, True))
            if eff.redirect:
                acs_list.add(bb)
        redirect = [c.device for c in checks if c.redirect]
        assumed = [c.device for c in checks if not c.known]

    acs_text = acs_list.printed() if redirect else ""
    if common is None:
        unknown_tops = [c[-1] for c in (pchain, cchain) if topo[c[-1]].fact("parent").is_assumed]
        if unknown_tops:
            return _undetermined(pchain, cchain, checks, dist, unknown_tops)
        kind = PathKind.NO_COMMON_UPSTREAM
    elif redirect:
        kind = PathKind.ACS_REDIRECT
    else:
        kind = PathKind.COMMON_UPSTREAM
    outcome = (_int_era_outcome if profile.int_distance else _host_path_outcome)(
        state, provider, client, kind, dist, acs_text
    )
    return Verdict(
        provider=provider,
        client=client,
        map_type=outcome.map_type,
        distance=outcome.distance,
        walk_distance=dist,
        path=kind,
        provider_chain=pchain,
        client_chain=cchain,
        common=common,
        acs_checks=tuple(checks),
        acs_redirect=tuple(redirect),
        acs_list_text=acs_text,
        acs_list_truncated=acs_list.overflowed and bool(redirect),
        assumed=tuple(assumed),
        cpu_supports=outcome.cpu_supports,
        whitelist_checks=tuple(outcome.whitelist_checks),
        messages=tuple(outcome.messages),
    )


def _undetermined(
    pchain: tuple[BDF, ...],
    cchain: tuple[BDF, ...],
    checks: list[AcsCheck],
    dist: int,
    unknown_tops: list[BDF],
) -> Verdict:
    """No verdict: the chains meet nowhere the source shows, and what is above is unknown.

    Whether the two functions share an upstream bridge above the top the
    source shows, and so the map type and the distance, cannot be known.
    """
    tops = " and ".join(str(b) for b in dict.fromkeys(unknown_tops))
    return Verdict(
        provider=pchain[0],
        client=cchain[0],
        map_type=None,
        distance=-1,
        walk_distance=dist,
        path=PathKind.NO_COMMON_UPSTREAM,
        provider_chain=pchain,
        client_chain=cchain,
        common=None,
        acs_checks=tuple(checks),
        acs_redirect=(),
        acs_list_text="",
        acs_list_truncated=False,
        assumed=(),
        cpu_supports=None,
        whitelist_checks=(),
        messages=(),
        undetermined=(
            f"the source does not show what is above {tops}: whether the two share an upstream"
            " bridge there, and so the map type and the distance, cannot be known"
        ),
    )


@dataclass
class _Outcome:
    """What the era-specific tail of the decision adds to the walk."""

    map_type: MapType | None
    distance: int
    cpu_supports: bool | None = None
    whitelist_checks: list[WhitelistCheck] = field(default_factory=list)
    messages: list[KernelMessage] = field(default_factory=list)

    def warn(self, state: KernelState, client: BDF, text: str) -> None:
        """``pci_warn(client, ...)``."""
        self.messages.append(KernelMessage("warn", client, state.topology[client].driver, text))


def _host_path_outcome(
    state: KernelState, provider: BDF, client: BDF, kind: PathKind, dist: int, acs_text: str
) -> _Outcome:
    """v5.4+: BUS_ADDR, or the host-bridge path with its messages (spec sections 3.1-3.2)."""
    if kind is PathKind.COMMON_UPSTREAM:
        return _Outcome(MapType.BUS_ADDR, dist)
    profile = state.target.profile
    out = _Outcome(MapType.THRU_HOST_BRIDGE, dist)
    acs_redirects = kind is PathKind.ACS_REDIRECT
    if acs_redirects:
        out.warn(state, client, f"ACS redirect is set between the client and provider ({provider})")
        out.warn(
            state,
            client,
            "to disable ACS redirect for this path, add the kernel parameter:"
            f" pci=disable_acs_redir={acs_text}",
        )
    out.cpu_supports = state.cpu_supports if profile.cpu_check else None
    if state.cpu_supports:
        return out
    ok, out.whitelist_checks, wl_messages = host_bridge_whitelist(
        state, provider, client, warn=acs_redirects
    )
    out.messages.extend(wl_messages)
    if not ok:
        out.map_type = MapType.NOT_SUPPORTED
        out.warn(
            state,
            client,
            "cannot be used for peer-to-peer DMA as the client and provider"
            f" ({provider}) do not share an upstream bridge or whitelisted host bridge",
        )
    return out


def _int_era_outcome(
    state: KernelState, provider: BDF, client: BDF, kind: PathKind, dist: int, acs_text: str
) -> _Outcome:
    """v4.20-v5.3 ``upstream_bridge_distance()`` and its ``_warn`` wrapper (spec section 3.6)."""
    if kind is PathKind.COMMON_UPSTREAM:
        return _Outcome(None, dist)
    if kind is PathKind.ACS_REDIRECT:
        out = _Outcome(None, -2)
        out.warn(
            state,
            client,
            "cannot be used for peer-to-peer DMA as ACS redirect is set between the client"
            f" and provider ({provider})",
        )
        out.warn(
            state,
            client,
            "to disable ACS redirect for this path, add the kernel parameter:"
            f" pci=disable_acs_redir={acs_text}",
        )
        return out
    out = _Outcome(None, -1)
    if state.target.profile.amd_penalty:
        first = _root_complex_whitelist(state, provider)
        out.whitelist_checks.append(first)
        if first.passed:
            second = _root_complex_whitelist(state, client)
            out.whitelist_checks.append(second)
            if second.passed:
                out.distance = AMD_PENALTY + dist
    if out.distance == -1:
        out.warn(
            state,
            client,
            "cannot be used for peer-to-peer DMA as the client and provider"
            f" ({provider}) do not share an upstream bridge",
        )
    return out
