"""The controller's inputs and the DMA mode, as fields: in the form, or for the I/O shown.

A scenario's ``[nvme]`` table (MDTS, SGL support, ``sgl_threshold``), its
segments' ``pool_size`` and its ``[dma] mode``: the values that decide the
queue limits (``p2pview.iosim.limits``) and PRP or SGL. The fields are checked
by the scenario reader's own functions (:func:`~p2pview.iosim.scenario.nvme_setup`,
:func:`~p2pview.iosim.scenario.check_pool_size`), and a bad value is named by
its field. :class:`ControllerFields` draws them (the form's lower half);
:class:`ControllerPrompt` edits those of the I/O being stepped and re-runs it.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Grid, Vertical
from textual.content import Content
from textual.screen import ModalScreen
from textual.widgets import Input, Label, Select, Static

from p2pview.iosim import DmaMode, Scenario
from p2pview.iosim.dmachoice import DmaChoice, DmaChosenBy, topology_dma_mode
from p2pview.iosim.scenario import NvmeSetup, check_pool_size, nvme_setup
from p2pview.model import IommuMode, Topology

#: The DMA choice that lets the topology's IOMMU decide (as a scenario without ``[dma] mode``).
TOPOLOGY_DMA = "topology"
#: The DMA modes as the fields list them.
MODE_NAMES = {
    DmaMode.DIRECT: "dma-direct",
    DmaMode.IOMMU: "dma-iommu",
    DmaMode.SWIOTLB: "swiotlb=force",
}
#: The fields' name in the scenario reader's messages (cut off before they are shown).
FORM = "the form"
#: The scenario keys the fields edit, and the field that holds each.
FIELDS = {
    "nvme.mdts": "MDTS",
    "nvme.sgl_threshold": "sgl_threshold",
    "nvme.sgl": "SGL",
    "buffer.pool_size": "p2pmem pool",
}
DEFAULT_THRESHOLD = str(NvmeSetup().sgl_threshold)


@dataclass(frozen=True)
class ControllerValues:
    """What the fields hold (text as typed)."""

    #: None: the topology's IOMMU decides.
    dma: DmaMode | None = None
    #: Identify Controller MDTS ("": not given, taken as 0 and said).
    mdts: str = ""
    sgl: bool = True
    sgl_threshold: str = DEFAULT_THRESHOLD
    #: The providers' p2pmem/size ("": the topology's).
    pool_size: str = ""


def _field_error(exc: ValueError) -> ValueError:
    """The scenario reader's message with the field in place of the file and key."""
    text = str(exc).removeprefix(f"{FORM}: ")
    for key, field in FIELDS.items():
        if text.startswith(key + ":"):
            return ValueError(field + text[len(key) :])
    return ValueError(text)


def controller_of(values: ControllerValues) -> tuple[NvmeSetup, int | None]:
    """The ``[nvme]`` setup and the pool size the fields give, checked as a scenario file's are.

    Raises:
        ValueError: naming the field and why (the scenario reader's reason).
    """
    table: dict[str, Any] = {"sgl": values.sgl}
    if values.sgl_threshold.strip():
        table["sgl_threshold"] = values.sgl_threshold.strip()
    if values.mdts.strip():
        table["mdts"] = values.mdts.strip()
    try:
        nvme = nvme_setup(table, FORM)
        pool = values.pool_size.strip()
        pool_size = check_pool_size(pool, "buffer", FORM) if pool else None
    except ValueError as exc:
        raise _field_error(exc) from None
    return nvme, pool_size


def _size_input(n: int) -> str:
    """A size as the fields accept it back: ``256M``, or hex when not a whole KiB."""
    for shift, unit in ((30, "G"), (20, "M"), (10, "K")):
        if n >= 1 << shift and n % (1 << shift) == 0:
            return f"{n >> shift}{unit}"
    return f"{n:#x}"


def controller_values(scenario: Scenario) -> ControllerValues:
    """The fields filled from a scenario (the first provider segment's pool size)."""
    pool = next(
        (s.pool_size for s in scenario.buffer if s.provider is not None and s.pool_size), None
    )
    nvme = scenario.nvme
    return ControllerValues(
        dma=scenario.dma if scenario.dma_given else None,
        mdts="" if nvme.mdts is None else str(nvme.mdts),
        sgl=nvme.sgl,
        sgl_threshold=str(nvme.sgl_threshold),
        pool_size="" if pool is None else _size_input(pool),
    )


def apply_controller(
    scenario: Scenario, values: ControllerValues, shown: ControllerValues | None = None
) -> Scenario:
    """``scenario`` with the controller's inputs and the DMA mode the fields give.

    ``shown`` is what the fields held when they opened: a pool size left as it
    was keeps each segment's own (a scenario may give its providers different
    ones); a pool size typed applies to every provider's segment.

    Raises:
        ValueError: naming the field and why.
    """
    nvme, pool_size = controller_of(values)
    changes: dict[str, Any] = {
        "nvme": nvme,
        "dma": values.dma or DmaMode.DIRECT,
        "dma_given": values.dma is not None,
    }
    if shown is None or values.pool_size.strip() != shown.pool_size.strip():
        if pool_size is not None and all(seg.provider is None for seg in scenario.buffer):
            raise ValueError(
                f"{FIELDS['buffer.pool_size']}: the buffer is anonymous RAM, which has no"
                " p2pmem pool (leave it empty)"
            )
        changes["buffer"] = tuple(
            replace(seg, pool_size=pool_size) if seg.provider is not None else seg
            for seg in scenario.buffer
        )
    return scenario.replace(**changes)


def topology_dma(topology: Topology) -> tuple[DmaMode, str]:
    """The DMA mode the topology's IOMMU gives (a scenario without ``[dma] mode``), and why."""
    iommu = topology.platform.iommu
    mode = topology_dma_mode(iommu)  # the simulator's rule
    if iommu is IommuMode.TRANSLATED:
        return mode, "translates: dma-iommu"
    if iommu is IommuMode.UNKNOWN:
        return mode, "not recorded: dma-direct assumed"
    return mode, f"{iommu.value}: dma-direct"


def what_if_note(topology: Topology, dma: DmaMode | None) -> str:
    """What the fields' DMA mode means against the topology's IOMMU ("" when it agrees).

    The simulator decides what a what-if is (:class:`~p2pview.iosim.dmachoice.
    DmaChoice`); the form words it for the I/O it is about to run.
    """
    if dma is None:
        return ""
    choice = DmaChoice(dma, DmaChosenBy.SCENARIO, topology.platform.iommu)
    if not choice.what_if:
        return ""
    mode = topology_dma_mode(topology.platform.iommu)
    return (
        f"what-if: the topology's IOMMU is {topology.platform.iommu.value}"
        f" ({MODE_NAMES[mode]}); this I/O runs as {MODE_NAMES[dma]}"
    )


def say(line: Static, text: str, style: str) -> None:
    """A line under the fields, shown only when it has something to say."""
    line.update(Content.styled(text, style))
    line.display = bool(text)


class ControllerFields(Vertical):
    """DMA mode, MDTS, SGL support, sgl_threshold and pool size in a grid, and a what-if line."""

    DEFAULT_CSS = """
    ControllerFields {
        height: auto;
    }
    ControllerFields > Grid {
        grid-size: 2;
        grid-columns: 13 1fr;
        grid-rows: 1;
        grid-gutter: 0 1;
        height: auto;
    }
    ControllerFields Label {
        color: $text-muted;
    }
    ControllerFields #form-dma-note {
        height: auto;
        color: $text-warning;
    }
    """

    def __init__(self, values: ControllerValues, topology: Topology, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.initial = values
        self.topology = topology

    def compose(self) -> ComposeResult:
        """Five rows and the what-if line."""
        v = self.initial
        _mode, why = topology_dma(self.topology)
        with Grid():
            yield Label("DMA")
            yield Select(
                [(Content(f"as the topology's IOMMU ({why})"), TOPOLOGY_DMA),
                 (Content("dma-direct"), DmaMode.DIRECT.value),
                 (Content("dma-iommu (IOVA)"), DmaMode.IOMMU.value),
                 (Content("swiotlb=force (bounce buffers)"), DmaMode.SWIOTLB.value)],
                value=TOPOLOGY_DMA if v.dma is None else v.dma.value,
                allow_blank=False,
                compact=True,
                id="form-dma",
            )  # fmt: skip
            yield Label(FIELDS["nvme.mdts"])
            yield Input(v.mdts, placeholder="empty: not given (no limit); 5 = 128 KiB",
                        compact=True, id="form-mdts")  # fmt: skip
            yield Label(FIELDS["nvme.sgl"])
            yield Select(
                [(Content("supported (nvme uses SGLs above sgl_threshold)"), "yes"),
                 (Content("not supported (PRPs only)"), "no")],
                value="yes" if v.sgl else "no",
                allow_blank=False,
                compact=True,
                id="form-sgl",
            )  # fmt: skip
            yield Label(FIELDS["nvme.sgl_threshold"])
            yield Input(v.sgl_threshold, placeholder=f"{DEFAULT_THRESHOLD} (the module's"
                        " default); 0: no SGLs", compact=True, id="form-sgl-threshold")  # fmt: skip
            yield Label(FIELDS["buffer.pool_size"])
            yield Input(v.pool_size, placeholder="empty: the topology's p2pmem/size; 2M,"
                        " 0x100000 ...", compact=True, id="form-pool")  # fmt: skip
        yield Static("", id="form-dma-note")

    def on_mount(self) -> None:
        """Say at once whether the DMA mode shown is a what-if."""
        self._dma_changed()

    @on(Select.Changed, "#form-dma")
    def _dma_changed(self) -> None:
        """Say when the DMA mode chosen contradicts the topology's IOMMU."""
        note = what_if_note(self.topology, self.values().dma)
        say(self.query_one("#form-dma-note", Static), note, "")

    def values(self) -> ControllerValues:
        """What the fields hold now."""
        dma = self.query_one("#form-dma", Select).value
        sgl = self.query_one("#form-sgl", Select).value
        return ControllerValues(
            dma=DmaMode(dma) if isinstance(dma, str) and dma != TOPOLOGY_DMA else None,
            mdts=self.query_one("#form-mdts", Input).value,
            sgl=sgl != "no",
            sgl_threshold=self.query_one("#form-sgl-threshold", Input).value,
            pool_size=self.query_one("#form-pool", Input).value,
        )


class ControllerPrompt(ModalScreen[Scenario | None]):
    """Edit the controller and DMA mode of the I/O being stepped; it re-runs at the same stage."""

    BINDINGS = [
        Binding("escape", "cancel", "Cancel"),
        Binding("ctrl+r", "run", "Run", show=False),
    ]

    def __init__(self, scenario: Scenario, topology: Topology) -> None:
        super().__init__()
        self.scenario = scenario
        self.topology = topology
        self.shown = controller_values(scenario)

    def compose(self) -> ComposeResult:
        """The title, the fields, the error line and a line of help."""
        with Vertical(id="stepper-controller"):
            yield Static(
                Content.assemble(
                    ("Controller and DMA of ", "bold $text-accent"),
                    (self.scenario.name, "bold"),
                )
            )
            yield ControllerFields(self.shown, self.topology, id="form-controller")
            yield Static("", id="form-error")
            yield Static(
                Content.styled(
                    "enter or ctrl+r re-runs this I/O at the stage shown; escape cancels",
                    "$foreground-muted",
                )
            )

    def on_mount(self) -> None:
        """Start on MDTS (what a user comes here to change most)."""
        self.query_one("#form-error", Static).display = False
        self.query_one("#form-mdts", Input).focus()

    def action_run(self) -> None:
        """Apply the fields; stay open with the reason when one is bad."""
        values = self.query_one(ControllerFields).values()
        try:
            scenario = apply_controller(self.scenario, values, self.shown)
        except ValueError as exc:
            say(self.query_one("#form-error", Static), str(exc), "$text-error")
            return
        self.dismiss(scenario)

    def action_cancel(self) -> None:
        """Keep the I/O as it is."""
        self.dismiss(None)

    @on(Input.Submitted)
    def _submitted(self, _event: Input.Submitted) -> None:
        self.action_run()
