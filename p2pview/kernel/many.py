"""``pci_p2pdma_distance_many()`` and ``pci_p2pmem_find_many()`` (spec sections 4.1-4.3)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from p2pview.kernel.decision import KernelState, calc_map_type_and_dist
from p2pview.kernel.messages import KernelMessage
from p2pview.kernel.verdict import MapType, Verdict
from p2pview.model import BDF

#: ``PAGE_SIZE / sizeof(struct pci_dev *)`` on x86-64: how many tied
#: providers ``pci_p2pmem_find_many()`` keeps (spec section 4.2; not 8).
MAX_TIED_PROVIDERS = 4096 // 8

#: The one line ``calc_map_type_and_dist()`` prints whatever ``verbose`` says:
#: ``host_bridge_whitelist(provider, client, acs_redirects)`` warns on the ACS
#: path, gated on ``acs_redirects``, not on ``verbose`` (v5.15+; Linux 6.12.117
#: drivers/pci/p2pdma.c lines 507-508 and 653-654 [read]).
QUIET_WARNING = "Host bridge not in P2PDMA whitelist:"


@dataclass(frozen=True, slots=True)
class NonPciClient:
    """A client ``struct device`` with no PCI function above it (a platform device)."""

    name: str

    def __str__(self) -> str:
        return self.name


Client = BDF | NonPciClient


@dataclass(frozen=True, slots=True)
class DistanceMany:
    """What ``pci_p2pdma_distance_many()`` returns, with the per-client verdicts it computed."""

    provider: BDF
    total: int
    verdicts: tuple[Verdict, ...]
    messages: tuple[KernelMessage, ...]
    stopped_at: Client | None = None


def pci_p2pdma_distance_many(
    state: KernelState, provider: BDF, clients: Sequence[Client], verbose: bool = True
) -> DistanceMany:
    """Sum of distances from ``provider`` to every client, -1 if any is unsupported.

    Follows S-5.17 / S-new: an empty client list gives -1; a client that is
    not a PCI device stops the loop with -1 at once; a NOT_SUPPORTED client
    (or, before v5.4, a negative distance) makes the result -1, and without
    ``verbose`` the loop stops there. THRU_HOST_BRIDGE adds its plain dist.

    ``messages`` are the lines the kernel prints: every verbose line, or
    without ``verbose`` only the whitelist warning (:data:`QUIET_WARNING`),
    which v5.15+ print on the ACS path either way; v4.20-v5.14 print nothing
    then (``upstream_bridge_distance()`` without ``_warn``).
    """
    if not clients:
        return DistanceMany(provider, -1, (), ())
    total = 0
    not_supported = False
    verdicts: list[Verdict] = []
    messages: list[KernelMessage] = []
    for client in clients:
        if isinstance(client, NonPciClient):
            if verbose:
                messages.append(
                    KernelMessage(
                        "warn",
                        None,
                        None,
                        f"{client.name}: cannot be used for peer-to-peer DMA as it is not"
                        " a PCI device",
                    )
                )
            return DistanceMany(provider, -1, tuple(verdicts), tuple(messages), client)
        verdict = calc_map_type_and_dist(state, provider, client)
        verdicts.append(verdict)
        if verbose:
            messages.extend(verdict.messages)
        else:
            messages.extend(m for m in verdict.messages if m.text.startswith(QUIET_WARNING))
        if verdict.map_type is None:
            if verdict.distance < 0:
                not_supported = True
        elif verdict.map_type is MapType.NOT_SUPPORTED:
            not_supported = True
        if not_supported and not verbose:
            return DistanceMany(provider, -1, tuple(verdicts), tuple(messages), client)
        total += verdict.distance
    return DistanceMany(provider, -1 if not_supported else total, tuple(verdicts), tuple(messages))


@dataclass(frozen=True, slots=True)
class FindMany:
    """``pci_p2pmem_find_many()``: the best total distance and every provider tied at it.

    The kernel returns one of ``tied`` chosen uniformly at random; p2pview
    reports them all. ``candidates`` lists every published provider's total;
    ``messages`` what the kernel prints meanwhile (``pci_p2pdma_distance_many()``
    with ``verbose`` false).
    """

    best: int | None
    tied: tuple[BDF, ...]
    candidates: tuple[tuple[BDF, int], ...]
    messages: tuple[KernelMessage, ...] = ()


def published_providers(state: KernelState) -> tuple[BDF, ...]:
    """``pci_has_p2pmem()`` in ``for_each_pci_dev()`` order.

    p2pmem exists and is published; in the newest tree also a pool (a
    ``p2pmem/size`` above 0), since ``pcim_p2pdma_init()`` providers have none.
    """
    need_pool = state.target.p2pmem_needs_pool
    out = []
    for dev in state.topology.devices:
        mem = dev.p2pmem
        if mem is None or not mem.published:
            continue
        if need_pool and mem.size <= 0:
            continue
        out.append(dev.bdf)
    return tuple(out)


def pci_p2pmem_find_many(state: KernelState, clients: Sequence[Client]) -> FindMany:
    """The published providers with the lowest total distance to all ``clients``."""
    best: int | None = None
    tied: list[BDF] = []
    candidates: list[tuple[BDF, int]] = []
    messages: list[KernelMessage] = []
    for provider in published_providers(state):
        many = pci_p2pdma_distance_many(state, provider, clients, verbose=False)
        total = many.total
        candidates.append((provider, total))
        messages.extend(many.messages)
        if total < 0 or (best is not None and total > best):
            continue
        if total == best and len(tied) >= MAX_TIED_PROVIDERS:
            continue
        if best is None or total < best:
            tied = []
            best = total
        tied.append(provider)
    return FindMany(best, tuple(tied), tuple(candidates), tuple(messages))
