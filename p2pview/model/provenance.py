"""Where each fact the P2PDMA decision uses comes from: read, inferred or assumed.

A dump of another machine rarely holds every fact ``calc_map_type_and_dist()``
looks at: ``lspci -tv`` has no ACS and no CPU, hwloc leaves out the
host-bridge function the whitelist checks, NCCL records no host bridges at
all. Readers say, for every such fact, whether they *read* it, *inferred* it
(and from what), or *assumed* it (and which default they used), so that the
engine can mark a verdict that rests on an assumption and say what it would
be otherwise. User-supplied values (``--cpu``, ``--kernel``, a what-if edit)
count as read: the user gave them.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from enum import StrEnum


class Basis(StrEnum):
    """How a fact is known."""

    #: Taken from the source as it is (config space, sysfs, the dump's text, the user).
    READ = "read"
    #: Worked out from other facts of the source; ``Fact.how`` names them.
    INFERRED = "inferred"
    #: Not in the source; a default stands in for it. ``Fact.how`` says which and why.
    ASSUMED = "assumed"


@dataclass(frozen=True, slots=True)
class Fact:
    """The provenance of one fact: its basis and, in words, where it came from.

    ``how`` is written for the user and completes "read from ...",
    "inferred from ..." or "assumed: ...", e.g. ``"0000:00:00.0 1022:14a4"``
    for a CPU vendor inferred from a root complex, or ``"an lspci -tv dump has
    no CPU; GenuineIntel family 6, p2pview's default"``.
    """

    basis: Basis = Basis.READ
    how: str = ""

    @classmethod
    def read(cls, how: str = "") -> Fact:
        """A fact taken from the source."""
        return cls(Basis.READ, how)

    @classmethod
    def inferred(cls, how: str) -> Fact:
        """A fact worked out from others: ``how`` names them."""
        return cls(Basis.INFERRED, how)

    @classmethod
    def assumed(cls, how: str) -> Fact:
        """A default standing in for a fact the source lacks: ``how`` says which and why."""
        return cls(Basis.ASSUMED, how)

    @property
    def is_read(self) -> bool:
        """Taken from the source."""
        return self.basis is Basis.READ

    @property
    def is_inferred(self) -> bool:
        """Worked out from other facts."""
        return self.basis is Basis.INFERRED

    @property
    def is_assumed(self) -> bool:
        """A default standing in for a missing fact."""
        return self.basis is Basis.ASSUMED

    def describe(self) -> str:
        """``"read"``, ``"inferred from X"`` or ``"assumed: X"``, for the faces."""
        if not self.how:
            return self.basis.value
        joiner = {Basis.READ: " from ", Basis.INFERRED: " from ", Basis.ASSUMED: ": "}
        return f"{self.basis.value}{joiner[self.basis]}{self.how}"

    def to_text(self) -> str:
        """The form topology files keep: ``"inferred: HOW"``, ``"assumed: HOW"`` or ``"read"``."""
        return self.basis.value if not self.how else f"{self.basis.value}: {self.how}"

    @classmethod
    def from_text(cls, text: str) -> Fact:
        """Parse :meth:`to_text`'s form.

        Raises:
            ValueError: when the basis is not read, inferred or assumed.
        """
        basis, _, how = text.partition(":")
        try:
            return cls(Basis(basis.strip().lower()), how.strip())
        except ValueError:
            raise ValueError(
                f"{text[:60]!r}: expected 'read', 'inferred: HOW' or 'assumed: HOW'"
            ) from None


#: A fact read from the source, with nothing more to say.
READ = Fact()

#: The names of the per-function facts, in the order the faces list them.
DEVICE_FACTS = ("ids", "class_code", "pcie_type", "parent", "acs")
#: The names of the platform facts.
PLATFORM_FACTS = ("cpu", "kernel", "iommu", "cmdline")


@dataclass(frozen=True, slots=True)
class DeviceFacts:
    """Provenance of what the decision uses about one PCI function.

    Attributes:
        ids: vendor and device ID (the whitelist compares them).
        class_code: the class code (bridge or not, and what ``compare`` calls a GPU).
        pcie_type: the PCIe Device/Port type (the v5.19+ Root Port lookup rule).
        parent: the upstream bridge, i.e. the function's place in the tree; also
            whether the function itself is in the source (a function a reader
            adds because the exporter is known to drop it has an inferred parent).
        acs: the ACS capability and control register. A function whose ACS is
            unknown is always *assumed* to have no redirect (see
            :meth:`p2pview.model.PciDevice.fact`); ``how`` says why it is unknown.
    """

    ids: Fact = READ
    class_code: Fact = READ
    pcie_type: Fact = READ
    parent: Fact = READ
    acs: Fact = READ

    def get(self, name: str) -> Fact:
        """The fact called ``name`` (one of :data:`DEVICE_FACTS`)."""
        if name not in DEVICE_FACTS:
            raise KeyError(f"no device fact {name!r}")
        fact: Fact = getattr(self, name)
        return fact

    def with_fact(self, name: str, fact: Fact) -> DeviceFacts:
        """A copy with one fact replaced."""
        self.get(name)
        return replace(self, **{name: fact})


@dataclass(frozen=True, slots=True)
class PlatformFacts:
    """Provenance of the platform facts.

    Attributes:
        cpu: the boot CPU's architecture, vendor and family (``cpu_supports_p2pdma()``).
        kernel: the kernel release the source ran (which era decides).
        iommu: whether DMA is translated (which ACS bits the kernel turns on).
        cmdline: the kernel command line (``pci=disable_acs_redir=``, ``config_acs=``).
    """

    cpu: Fact = READ
    kernel: Fact = READ
    iommu: Fact = READ
    cmdline: Fact = READ

    def get(self, name: str) -> Fact:
        """The fact called ``name`` (one of :data:`PLATFORM_FACTS`)."""
        if name not in PLATFORM_FACTS:
            raise KeyError(f"no platform fact {name!r}")
        fact: Fact = getattr(self, name)
        return fact

    def with_fact(self, name: str, fact: Fact) -> PlatformFacts:
        """A copy with one fact replaced."""
        self.get(name)
        return replace(self, **{name: fact})
