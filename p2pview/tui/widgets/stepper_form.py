"""The stepper's forms: build an O_DIRECT scenario, or pick a kernel for the current one.

``ScenarioForm`` is ``p2pview trace SOURCE --provider P --client C --size N``
as a modal: provider (a p2pmem provider, or anonymous RAM), client (NVMe
functions first; any other function makes a queue without P2PDMA support,
target kind ``other``), size, offset, read or write, the DMA mode (the
topology's IOMMU by default; another is a what-if) and a kernel for the data
path; then the controller's inputs (MDTS, SGL support, ``sgl_threshold``, the
provider's p2pmem pool size: :mod:`~p2pview.tui.widgets.stepper_controller`).
It returns the :class:`~p2pview.iosim.Scenario`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Grid, Horizontal, Vertical
from textual.content import Content
from textual.screen import ModalScreen
from textual.widgets import Button, Input, Label, Select, Static

from p2pview.iosim import (
    BufferKind,
    BufferSegment,
    Iovec,
    Scenario,
    TargetKind,
    quick_scenario,
)
from p2pview.iosim.datapath import DataPathKernel
from p2pview.kernel import MapType
from p2pview.model import BDF, AddressError, Kind, Topology, kind_of
from p2pview.model.units import size_text
from p2pview.sources.checks import parse_int
from p2pview.tui.widgets.stepper_controller import (
    ControllerFields,
    ControllerValues,
    apply_controller,
    say,
)
from p2pview.views.names import role

#: The provider choice for a buffer of anonymous memory.
RAM_CHOICE = "ram"
PAGE = 4096


@dataclass(frozen=True)
class FormValues:
    """What the form holds (kept between openings)."""

    provider: str
    client: str
    size: str = "128K"
    offset: str = "0"
    write: bool = False
    kernel: str = ""
    #: The DMA mode and the controller's inputs.
    controller: ControllerValues = field(default_factory=ControllerValues)


def providers_of(topology: Topology) -> list[BDF]:
    """Functions with a p2pmem pool, in BDF order."""
    return [d.bdf for d in topology.devices if d.p2pmem is not None]


def clients_of(topology: Topology) -> list[BDF]:
    """Every non-bridge function: NVMe ones first."""
    endpoints = [d for d in topology.devices if not d.is_bridge]
    nvme = [d.bdf for d in endpoints if kind_of(d) is Kind.NVME]
    other = [d.bdf for d in endpoints if kind_of(d) is not Kind.NVME]
    return nvme + other


def default_values(
    topology: Topology,
    selected: BDF | None,
    peer: BDF | None,
    map_type_of: Callable[[BDF, BDF], MapType | None] | None = None,
) -> FormValues:
    """A sensible first I/O: the selected provider into an NVMe peer it can reach.

    With ``map_type_of(provider, client)`` the first NVMe client with a
    BUS_ADDR verdict is preferred, then a THRU_HOST_BRIDGE one (the first 64
    NVMe functions are asked, so that a 2,000-function host stays quick).
    """
    providers = providers_of(topology)
    provider = selected if selected in providers else (providers[0] if providers else None)
    nvme = [b for b in clients_of(topology) if kind_of(topology[b]) is Kind.NVME]
    candidates = [peer] if peer is not None and peer in nvme and peer != provider else []
    candidates += [b for b in nvme if b != provider and b not in candidates]
    if provider is not None and map_type_of is not None and candidates:
        types = {b: map_type_of(provider, b) for b in candidates[:64]}
        for wanted in (MapType.BUS_ADDR, MapType.THRU_HOST_BRIDGE):
            best = [b for b in candidates if types.get(b) is wanted]
            if best:
                candidates = best + [b for b in candidates if b not in best]
                break
    clients = clients_of(topology)
    client = candidates[0] if candidates else (clients[0] if clients else provider)
    return FormValues(
        provider=str(provider) if provider is not None else RAM_CHOICE,
        client=str(client) if client is not None else "",
    )


def build_scenario(values: FormValues, topology: Topology) -> Scenario:
    """The scenario the form describes; ``ValueError`` with one line for the user."""
    try:
        client = BDF.parse(values.client)
    except AddressError:
        raise ValueError("pick a client") from None
    if client not in topology:
        raise ValueError(f"{client} is not in this topology")
    try:
        size = parse_int(values.size.strip(), sizes=True)
        offset = parse_int(values.offset.strip() or "0", sizes=True)
    except ValueError:
        raise ValueError("size and offset: a number such as 4096, 0x1000, 128K or 1G") from None
    if size <= 0 or offset < 0:
        raise ValueError("the size must be positive and the offset not negative")
    if size + offset > 1 << 40:
        raise ValueError("keep the buffer under 1 TiB")
    # A VersionError (a ValueError) says what is wrong with the release.
    kernel = DataPathKernel.parse(values.kernel) if values.kernel.strip() else None
    target = TargetKind.NVME if kind_of(topology[client]) is Kind.NVME else TargetKind.OTHER
    op = "write" if values.write else "read"
    if values.provider == RAM_CHOICE:
        pages = (offset + size + PAGE - 1) // PAGE
        ram = Scenario(
            name=f"RAM -> {client.short()}",
            description=f"O_DIRECT {op} of {size_text(size)} to or from anonymous memory",
            source=topology.name,
            kernel=kernel,
            buffer=(BufferSegment(BufferKind.RAM, pages * PAGE),),
            client=client,
            write=values.write,
            iovecs=(Iovec(offset, size),),
            target=target,
        )
        return apply_controller(ram, values.controller)
    try:
        provider = BDF.parse(values.provider)
    except AddressError:
        raise ValueError("pick a provider") from None
    if provider not in topology:
        raise ValueError(f"{provider} is not in this topology")
    scenario = quick_scenario(
        topology.name,
        provider,
        client,
        size,
        offset=offset,
        write=values.write,
        kernel=kernel,
    )
    scenario = scenario.replace(
        target=target, description=f"O_DIRECT {op} of {size_text(size)}, built in the form"
    )
    return apply_controller(scenario, values.controller)


def _function_label(topology: Topology, bdf: BDF, extra: str = "") -> Content:
    dev = topology[bdf]
    text = f"{bdf}  {role(dev)}"
    if dev.label:
        text += f"  {dev.label}"
    return Content(text + extra)


class ScenarioForm(ModalScreen[tuple[Scenario, FormValues] | None]):
    """Build a scenario: provider, client, size, offset, operation, DMA mode, kernel."""

    BINDINGS = [
        Binding("escape", "cancel", "Cancel"),
        Binding("ctrl+r", "run", "Run", show=False),
    ]

    def __init__(
        self,
        topology: Topology,
        values: FormValues,
        session_kernel: str,
        check: Callable[[Scenario], None] | None = None,
    ) -> None:
        super().__init__()
        self.topology = topology
        self.values = values
        self.session_kernel = session_kernel
        #: Raises ``ValueError`` when the scenario cannot run on the topology.
        self.check = check

    def compose(self) -> ComposeResult:
        """The fields, in one compact grid."""
        topo = self.topology
        providers: list[tuple[Content, str]] = []
        for bdf in providers_of(topo):
            mem = topo[bdf].p2pmem
            pool = f"  p2pmem {size_text(mem.size)}" if mem is not None else ""
            providers.append((_function_label(topo, bdf, pool), str(bdf)))
        providers.append((Content("anonymous RAM (no P2P memory)"), RAM_CHOICE))
        clients: list[tuple[Content, str]] = []
        for bdf in clients_of(topo):
            nvme = kind_of(topo[bdf]) is Kind.NVME
            extra = "" if nvme else "  (not NVMe: a queue without P2PDMA)"
            clients.append((_function_label(topo, bdf, extra), str(bdf)))
        v = self.values
        known_provider = v.provider in {value for _, value in providers}
        known_client = v.client in {value for _, value in clients}
        with Vertical(id="stepper-form"):
            yield Static(Content.styled("Build an O_DIRECT I/O", "bold $text-accent"))
            with Grid(id="stepper-form-grid"):
                yield Label("provider")
                yield Select(
                    providers,
                    value=v.provider if known_provider else RAM_CHOICE,
                    allow_blank=False,
                    compact=True,
                    id="form-provider",
                )
                yield Label("client")
                yield Select(
                    clients,
                    value=v.client if known_client else Select.NULL,
                    prompt="pick the device that does the DMA",
                    compact=True,
                    id="form-client",
                )
                yield Label("size")
                yield Input(v.size, placeholder="128K, 1M, 0x2000", compact=True, id="form-size")
                yield Label("offset")
                yield Input(v.offset, placeholder="bytes into the buffer", compact=True,
                            id="form-offset")  # fmt: skip
                yield Label("operation")
                yield Select(
                    [(Content("read (pread: the device writes the buffer)"), "read"),
                     (Content("write (pwrite: the device reads the buffer)"), "write")],
                    value="write" if v.write else "read",
                    allow_blank=False,
                    compact=True,
                    id="form-op",
                )  # fmt: skip
                yield Label("kernel")
                yield Input(
                    v.kernel,
                    placeholder=f"{self.session_kernel} (the session's); 6.17, 5.17-series ...",
                    compact=True,
                    id="form-kernel",
                )
            yield ControllerFields(v.controller, topo, id="form-controller")
            yield Static("", id="form-error")
            with Horizontal(id="stepper-form-buttons"):
                yield Button("Run", variant="primary", id="form-run", compact=True)
                yield Button("Cancel", id="form-cancel", compact=True)
            yield Static(
                Content.styled(
                    "enter or ctrl+r runs it on the current topology; escape cancels",
                    "$foreground-muted",
                )
            )

    def on_mount(self) -> None:
        """Start on the size when provider and client are already chosen."""
        self.query_one("#form-provider", Select).focus()
        self.query_one("#form-error", Static).display = False

    def _read(self) -> FormValues:
        def select(name: str) -> str:
            value = self.query_one(f"#{name}", Select).value
            return value if isinstance(value, str) else ""

        return replace(
            self.values,
            provider=select("form-provider"),
            client=select("form-client"),
            size=self.query_one("#form-size", Input).value,
            offset=self.query_one("#form-offset", Input).value,
            write=select("form-op") == "write",
            kernel=self.query_one("#form-kernel", Input).value,
            controller=self.query_one(ControllerFields).values(),
        )

    def action_run(self) -> None:
        """Build the scenario; stay open with the reason when it cannot be built."""
        values = self._read()
        try:
            scenario = build_scenario(values, self.topology)
            if self.check is not None:
                self.check(scenario)
        except ValueError as exc:
            say(self.query_one("#form-error", Static), str(exc), "$text-error")
            return
        self.dismiss((scenario, values))

    def action_cancel(self) -> None:
        """Close without running anything."""
        self.dismiss(None)

    @on(Input.Submitted)
    def _submitted(self, _event: Input.Submitted) -> None:
        self.action_run()

    @on(Button.Pressed, "#form-run")
    def _run_pressed(self) -> None:
        self.action_run()

    @on(Button.Pressed, "#form-cancel")
    def _cancel_pressed(self) -> None:
        self.action_cancel()


@dataclass(frozen=True)
class KernelChoice:
    """What the kernel prompt gave: a release, or None for the session's kernel."""

    kernel: DataPathKernel | None


class KernelPrompt(ModalScreen[KernelChoice | None]):
    """Ask which kernel's data path the current scenario should take."""

    BINDINGS = [Binding("escape", "cancel", "Cancel")]

    def __init__(self, scenario_kernel: DataPathKernel | None, session_kernel: str) -> None:
        super().__init__()
        self.scenario_kernel = scenario_kernel
        self.session_kernel = session_kernel

    def compose(self) -> ComposeResult:
        """One input and a line of help."""
        with Vertical(id="stepper-kernel"):
            yield Static(Content.styled("Kernel for this I/O's data path", "bold $text-accent"))
            yield Input(
                "" if self.scenario_kernel is None else str(self.scenario_kernel),
                placeholder=f"empty: the session's {self.session_kernel}",
                compact=True,
                id="kernel-input",
            )
            yield Static("", id="kernel-error")
            yield Static(
                Content.styled(
                    "6.1, 6.2, 6.12, 6.16, 6.17, next, 5.17-series ... The verdicts stay the"
                    " session's (set its kernel on the what-if screen). enter runs, escape"
                    " cancels.",
                    "$foreground-muted",
                )
            )

    @on(Input.Submitted)
    def _submitted(self, event: Input.Submitted) -> None:
        text = event.value.strip()
        kernel = None
        if text:
            try:
                kernel = DataPathKernel.parse(text)
            except ValueError as exc:
                self.query_one("#kernel-error", Static).update(
                    Content.styled(str(exc), "$text-error")
                )
                return
        self.dismiss(KernelChoice(kernel))

    def action_cancel(self) -> None:
        """Keep the kernel as it is."""
        self.dismiss(None)
