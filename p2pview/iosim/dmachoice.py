"""How one I/O's DMA mode was chosen: by the scenario, by the topology's IOMMU, or by default.

The simulator records the choice as data (:class:`DmaChoice`) and words it
without any face's names for the setting: the scenario file's ``[dma] mode``,
the CLI's ``--iommu`` and the stepper's form field are each face's to add
where it says how to change the mode.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from p2pview.iosim.scenario import DmaMode, Scenario
from p2pview.model import IommuMode, Topology


class DmaChosenBy(StrEnum):
    """Who chose the DMA mode of an I/O."""

    #: The scenario gave it: its ``[dma] mode``, or what a face set in its place.
    SCENARIO = "scenario"
    #: The topology's IOMMU: translating means dma-iommu for the client (its
    #: default domain is a DMA domain); pass-through and off mean dma-direct.
    TOPOLOGY = "topology"
    #: The topology does not say whether an IOMMU translates: dma-direct by default.
    DEFAULT = "default"


def topology_dma_mode(iommu: IommuMode) -> DmaMode:
    """The DMA mode the topology's IOMMU gives a client: dma-iommu when it translates."""
    return DmaMode.IOMMU if iommu is IommuMode.TRANSLATED else DmaMode.DIRECT


@dataclass(frozen=True)
class DmaChoice:
    """The DMA mode an I/O runs with, who chose it, and the topology's IOMMU it is held to."""

    mode: DmaMode
    chosen_by: DmaChosenBy
    #: The topology's IOMMU mode.
    iommu: IommuMode
    #: How the topology's IOMMU mode is known, when it is only assumed
    #: (``"assumed: ..."``); None when it was read or inferred.
    iommu_assumed: str | None = None

    @property
    def what_if(self) -> bool:
        """The scenario's mode contradicts the topology's IOMMU (a what-if, not the machine)."""
        if self.chosen_by is not DmaChosenBy.SCENARIO:
            return False
        if self.iommu is IommuMode.TRANSLATED:
            return self.mode is not DmaMode.IOMMU
        return self.iommu in (IommuMode.OFF, IommuMode.PASSTHROUGH) and self.mode is DmaMode.IOMMU

    @property
    def note(self) -> str | None:
        """How the mode was chosen, when there is more to say than the mode; no face's names.

        None when the scenario's mode agrees with the topology, and when the
        topology's IOMMU, read or inferred, gives dma-direct.
        """
        if self.chosen_by is DmaChosenBy.SCENARIO:
            if not self.what_if:
                return None
            if self.iommu is IommuMode.TRANSLATED:
                return (
                    "what-if: the topology's IOMMU translates DMA, but this scenario runs as"
                    f" {self.mode.value}"
                )
            return (
                f"what-if: the topology's IOMMU is {self.iommu.value}, but this scenario runs"
                " through a translating IOMMU"
            )
        if self.chosen_by is DmaChosenBy.DEFAULT:
            return "the topology does not say whether an IOMMU translates DMA: dma-direct assumed"
        if self.iommu is IommuMode.TRANSLATED:
            note = "DMA through the IOMMU: the topology's IOMMU translates (dma-iommu)"
        elif self.iommu_assumed is not None:
            note = f"dma-direct: the topology's IOMMU is {self.iommu.value}"
        else:
            return None
        return note if self.iommu_assumed is None else f"{note} ({self.iommu_assumed})"


def choose_dma(scenario: Scenario, topology: Topology) -> DmaChoice:
    """The DMA mode the I/O runs with: the scenario's when it gives one, else the topology's.

    A scenario that gives a mode runs as it says; when that contradicts the
    topology's IOMMU it is a what-if (:attr:`DmaChoice.what_if`).
    """
    iommu = topology.platform.iommu
    fact = topology.platform.facts.iommu
    assumed = fact.describe() if fact.is_assumed and iommu is not IommuMode.UNKNOWN else None
    if scenario.dma_given:
        chosen_by = DmaChosenBy.SCENARIO
        mode = scenario.dma
    elif iommu is IommuMode.UNKNOWN:
        chosen_by, mode = DmaChosenBy.DEFAULT, DmaMode.DIRECT
    else:
        chosen_by, mode = DmaChosenBy.TOPOLOGY, topology_dma_mode(iommu)
    return DmaChoice(mode, chosen_by, iommu, assumed)
