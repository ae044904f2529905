"""The result of one P2PDMA decision, as data the faces render.

A :class:`Verdict` carries everything needed to explain a pair: both chains,
the common upstream device, every ACS check with the bits that counted, the
host-bridge checks, and the kernel's messages with the device each is
printed on.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from p2pview.kernel.messages import KernelMessage
from p2pview.model import BDF, RootBus, acs_bit_names


class MapType(StrEnum):
    """``enum pci_p2pdma_map_type`` (spec section 1.1), by name."""

    NOT_SUPPORTED = "NOT_SUPPORTED"
    BUS_ADDR = "BUS_ADDR"
    THRU_HOST_BRIDGE = "THRU_HOST_BRIDGE"

    @property
    def kernel_name(self) -> str:
        """``PCI_P2PDMA_MAP_<name>``."""
        return f"PCI_P2PDMA_MAP_{self.value}"


class PathKind(StrEnum):
    """Which branch of ``calc_map_type_and_dist()`` decided the pair."""

    #: A common upstream device and no ACS redirect on the path.
    COMMON_UPSTREAM = "common_upstream"
    #: A common upstream device, but ACS redirects on the path: host-bridge path.
    ACS_REDIRECT = "acs_redirect"
    #: No common upstream device: host-bridge path.
    NO_COMMON_UPSTREAM = "no_common_upstream"


@dataclass(frozen=True, slots=True)
class AcsCheck:
    """One ``pci_bridge_has_acs_redir()`` call of the walk.

    ``side`` is ``"provider"`` (the provider and its bridges up to and
    including the common device) or ``"client"`` (the client and its bridges
    below the common device). ``counted`` is False for provider-side checks
    when no common device exists: the kernel walks them, then ignores them.
    """

    device: BDF
    side: str
    redirect: int
    known: bool
    counted: bool

    @property
    def bits(self) -> list[str]:
        """Names of the redirect bits set (RR, CR, EC)."""
        return acs_bit_names(self.redirect)


@dataclass(frozen=True, slots=True)
class WhitelistCheck:
    """One ``__host_bridge_whitelist()`` call (or v5.1-v5.3 ``root_complex_whitelist()``).

    ``device`` is the function whose IDs were compared (``None`` when the
    lookup rule found none, see ``reason``).
    """

    host_bridge: RootBus
    same_host_bridge: bool
    device: BDF | None
    vendor: int | None
    device_id: int | None
    entry: str | None
    passed: bool
    reason: str
    warned: bool = False

    @property
    def ids(self) -> str | None:
        """``vvvv:dddd`` of the function checked."""
        if self.vendor is None or self.device_id is None:
            return None
        return f"{self.vendor:04x}:{self.device_id:04x}"


@dataclass(frozen=True, slots=True)
class Assumption:
    """An assumed fact the decision used.

    ``fact`` names it (``acs``, ``cpu``, ``kernel``, ``host_bridge_device``,
    ``ids``, ``pcie_type``, ``parent``), ``subject`` what it is about (a
    function's address, ``platform``, or a host bridge ``pciDDDD:BB``),
    ``value`` the value taken in words, ``why`` why it had to be assumed.
    """

    fact: str
    subject: str
    value: str
    why: str = ""

    def to_dict(self) -> dict[str, str]:
        """``{"fact", "subject", "value"}`` (and ``why``) for JSON."""
        return {"fact": self.fact, "subject": self.subject, "value": self.value, "why": self.why}


@dataclass(frozen=True, slots=True)
class Inference:
    """An inferred fact the decision used: ``how`` names what it was inferred from."""

    fact: str
    subject: str
    how: str

    @property
    def text(self) -> str:
        """One line for the faces."""
        return f"{self.subject} {self.fact.replace('_', ' ')} inferred from {self.how}"

    def to_dict(self) -> dict[str, str]:
        """JSON form."""
        return {"fact": self.fact, "subject": self.subject, "how": self.how}


@dataclass(frozen=True, slots=True)
class Alternative:
    """The verdict under another plausible value of an assumed fact.

    Only alternatives that change the verdict are kept.
    """

    fact: str
    subject: str
    value: str
    map_type: MapType | None
    distance: int

    @property
    def outcome(self) -> str:
        """``THRU_HOST_BRIDGE, 4`` or, in the int-distance eras, the int."""
        if self.map_type is None:
            return str(self.distance)
        return f"{self.map_type.value}, {self.distance}"

    @property
    def text(self) -> str:
        """``THRU_HOST_BRIDGE, 4 if the CPU is AMD Zen (family 0x17 or later)``."""
        return f"{self.outcome} if {self.value}"

    def to_dict(self) -> dict[str, Any]:
        """JSON form."""
        return {
            "fact": self.fact,
            "subject": self.subject,
            "value": self.value,
            "map_type": None if self.map_type is None else self.map_type.value,
            "distance": self.distance,
        }


@dataclass(frozen=True, slots=True)
class Verdict:
    """``calc_map_type_and_dist()`` for one (provider, client) pair.

    ``map_type`` is ``None`` for the v4.20-v5.3 profiles, which return an int:
    there ``distance`` is that int (-1 no common upstream bridge, -2 ACS
    redirect, 0x1000 + dist for two AMD 0x1450 root complexes, else dist).
    Otherwise ``distance`` is the kernel's ``dist``, which it writes for
    NOT_SUPPORTED pairs too. ``walk_distance`` is always the walk's dist.

    ``assumed`` lists the functions whose unknown ACS was taken as "no
    redirect" on the counted path; ``assumptions`` every assumed fact the
    decision used (ACS, CPU, kernel release, host-bridge function, IDs,
    parents), ``inferred`` every inferred one, and ``alternatives`` the
    verdict under the other plausible value of an assumed fact, where that
    changes it.
    """

    provider: BDF
    client: BDF
    map_type: MapType | None
    distance: int
    walk_distance: int
    path: PathKind
    provider_chain: tuple[BDF, ...]
    client_chain: tuple[BDF, ...]
    common: BDF | None
    acs_checks: tuple[AcsCheck, ...]
    acs_redirect: tuple[BDF, ...]
    acs_list_text: str
    acs_list_truncated: bool
    assumed: tuple[BDF, ...]
    cpu_supports: bool | None
    whitelist_checks: tuple[WhitelistCheck, ...]
    messages: tuple[KernelMessage, ...]
    inferred: tuple[Inference, ...] = field(default=())
    assumptions: tuple[Assumption, ...] = field(default=())
    alternatives: tuple[Alternative, ...] = field(default=())
    #: Why no verdict can be formed (the source does not show what is above a
    #: chain, so neither a common upstream device nor the distance is known);
    #: empty when the verdict stands.
    undetermined: str = ""

    @property
    def rests_on_assumption(self) -> bool:
        """Some fact the decision used was assumed (the ``*`` mark)."""
        return bool(self.assumptions)

    @property
    def outcome(self) -> str:
        """``BUS_ADDR, 4``, in the int-distance eras the int, or ``undetermined``."""
        if self.undetermined:
            return "undetermined"
        if self.map_type is None:
            return str(self.distance)
        return f"{self.map_type.value}, {self.distance}"

    def text(self, *, short: bool = False) -> str:
        """The result as every face words it.

        ``BUS_ADDR, distance 4`` (``short``: ``BUS_ADDR 4``); in the v4.20-v5.3
        eras, whose function returns an int, ``upstream_bridge_distance() = -2``.
        """
        if self.map_type is None:
            return f"upstream_bridge_distance() = {self.distance}"
        if short:
            return f"{self.map_type.value} {self.distance}"
        return f"{self.map_type.value}, distance {self.distance}"

    @property
    def tone(self) -> str:
        """The result's kind for the faces to colour: ``bus_addr``, ``thru`` or ``unsupported``.

        The int eras have no map type: a distance >= 0 is a path between
        bridges (the ``bus_addr`` tone), below 0 a failure.
        """
        if self.map_type is MapType.BUS_ADDR:
            return "bus_addr"
        if self.map_type is MapType.THRU_HOST_BRIDGE:
            return "thru"
        if self.map_type is None and self.distance >= 0:
            return "bus_addr"
        return "unsupported"

    @property
    def supported(self) -> bool:
        """P2P DMA can happen (BUS_ADDR, THRU_HOST_BRIDGE, or a non-negative int)."""
        if self.undetermined:
            return False
        if self.map_type is None:
            return self.distance >= 0
        return self.map_type is not MapType.NOT_SUPPORTED

    @property
    def provider_index(self) -> int | None:
        """Index of the common device in the provider's chain (dist_a)."""
        return None if self.common is None else self.provider_chain.index(self.common)

    @property
    def client_index(self) -> int | None:
        """Index of the common device in the client's chain (dist_b)."""
        return None if self.common is None else self.client_chain.index(self.common)

    def roles(self, bdf: BDF) -> tuple[str, ...]:
        """What ``bdf`` is in this pair: provider, client, common upstream device (or none)."""
        found = (
            ("provider", bdf == self.provider),
            ("client", bdf == self.client),
            ("common upstream device", bdf == self.common),
        )
        return tuple(role for role, matches in found if matches)

    def to_dict(self) -> dict[str, Any]:
        """The JSON form of one pair (the ``pairs`` entries of ``p2pview matrix --json``).

        An undetermined pair has ``map_type`` and ``distance`` null and says why
        in ``undetermined``.
        """
        out: dict[str, Any] = {
            "provider": str(self.provider),
            "client": str(self.client),
            "map_type": None if self.map_type is None else self.map_type.value,
            "distance": None if self.undetermined else self.distance,
            "acs_redirect": [str(b) for b in self.acs_redirect],
            "assumed": sorted({a.subject for a in self.assumptions}),
            "assumptions": [a.to_dict() for a in self.assumptions],
            "alternatives": [a.to_dict() for a in self.alternatives],
        }
        if self.undetermined:
            out["undetermined"] = self.undetermined
        return out
