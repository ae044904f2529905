"""Demo scripts: a talk as a TOML file of steps (``p2pview demo``).

A demo file has a ``title`` and a list of ``[[step]]`` tables. Every step has a
``caption`` and may change what is shown; whatever a step does not change
carries over from the step before, so each step describes the whole picture:

``topology``
    A SOURCE (usually a bundled topology name). Changing it drops the edits.
``kernel``, ``cpu``, ``cmdline``
    Platform overrides, as on the command line (``kernel = "5.17-series"``).
``screen``
    ``topology``, ``matrix``, ``explain``, ``whatif`` or ``stepper``.
``select``, ``peer``
    The function selected and the peer its verdict is shown against (BDF,
    ``vendor:device`` or label); the explain screen shows this pair.
``edits``
    What-if edits applied in order, each a table: ``{ acs = "BDF", set = ["RR"],
    clear = ["CR", "EC"] }``, ``{ iommu = true }``, ``{ cmdline = "..." }``,
    ``{ cpu = "intel:6" }``, ``{ kernel = "6.1" }``, ``{ host_bridge = "0000:00",
    ids = "8086:2030" }``. ``reset = true`` (a step key) drops earlier edits.
``scenario``, ``stage``
    A bundled O_DIRECT scenario run on the step's topology and kernel, and the
    stage of it to show (``gup``, ``bio``, ``map_sg`` ... as in ``p2pview trace``).

:func:`load_demo` checks every step before anything is shown: it builds the
state each step shows (loading the topology, applying the edits, running the
scenario), so a demo that loads will play, forwards and backwards.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from p2pview.iosim import STAGES, Scenario, read_scenario
from p2pview.iosim.datapath import DataPathKernel
from p2pview.model import BDF, AcsPresence, RootBus
from p2pview.model.errors import InputError
from p2pview.session import CpuChoice, EngineConfig
from p2pview.sources.bundled import bundled_scenario_path, topologies_dir
from p2pview.tui import analysis as whatif_edits
from p2pview.tui.analysis import Selection, StepperRun, WhatIf, simulate_scenario
from p2pview.tui.model import load_start

#: The screens a step may show.
SCREENS = ("topology", "matrix", "explain", "whatif", "stepper")

#: ACS Control bits a demo may set or clear (PCI_ACS_* in include/uapi/linux/pci_regs.h).
ACS_BITS = {"SV": 0x01, "TB": 0x02, "RR": 0x04, "CR": 0x08, "UF": 0x10, "EC": 0x20, "DT": 0x40}

_STEP_KEYS = {
    "caption", "topology", "kernel", "cpu", "cmdline", "screen", "select", "peer",
    "edits", "reset", "scenario", "stage",
}  # fmt: skip


#: Step keys whose value replaces the previous step's as written.
_CARRIED = ("kernel", "cpu", "cmdline", "select", "peer", "scenario")


class DemoError(InputError):
    """A demo file that cannot be played; the message names the step."""


@dataclass(frozen=True)
class Edit:
    """One what-if edit of a step, as written in the file."""

    kind: str
    args: tuple[tuple[str, Any], ...]

    def describe(self) -> str:
        """The edit as the file spells it."""
        return ", ".join(f"{k} = {v!r}" for k, v in self.args)


@dataclass(frozen=True)
class StepSpec:
    """What one step shows (after carrying over what it does not change)."""

    number: int
    caption: str
    topology: str
    kernel: str | None = None
    cpu: str | None = None
    cmdline: str | None = None
    screen: str = "topology"
    select: str | None = None
    peer: str | None = None
    edits: tuple[Edit, ...] = ()
    scenario: str | None = None
    stage: str | None = None


@dataclass(frozen=True)
class DemoStep:
    """A step ready to show: its spec and the app state it shows (immutable values)."""

    spec: StepSpec
    whatif: WhatIf
    selection: Selection
    run: StepperRun | None = None
    stage_index: int = 0


@dataclass
class Demo:
    """A checked demo: its title and its steps."""

    name: str
    title: str
    path: Path
    steps: list[DemoStep] = field(default_factory=list)


def demos_dir() -> Path:
    """The directory holding the bundled demos."""
    return topologies_dir() / "demos"


def bundled_demos() -> list[tuple[str, Path]]:
    """Every bundled demo's name and file."""
    folder = demos_dir()
    return [(p.stem, p) for p in sorted(folder.glob("*.toml"))] if folder.is_dir() else []


def demo_path(name: str) -> Path:
    """A bundled demo by name, or a path to a demo file."""
    path = Path(name)
    if path.suffix == ".toml" and path.is_file():
        return path
    stem = name.removesuffix(".toml")
    bundled = demos_dir() / f"{stem}.toml"
    if "/" not in stem and bundled.is_file():
        return bundled
    names = ", ".join(n for n, _ in bundled_demos())
    raise DemoError(f"no demo {name!r} (bundled demos: {names})")


def _edit(number: int, raw: object) -> Edit:
    if not isinstance(raw, dict) or not raw:
        raise DemoError(f"step {number}: each edit must be a table, got {raw!r}")
    kinds = [k for k in ("acs", "iommu", "cmdline", "cpu", "kernel", "host_bridge") if k in raw]
    if len(kinds) != 1:
        raise DemoError(
            f"step {number}: edit {raw!r} must have exactly one of acs, iommu, cmdline,"
            " cpu, kernel, host_bridge"
        )
    kind = kinds[0]
    allowed = {"acs": {"acs", "set", "clear"}, "host_bridge": {"host_bridge", "ids"}}
    extra = set(raw) - allowed.get(kind, {kind})
    if extra:
        raise DemoError(f"step {number}: unknown key(s) {sorted(extra)} in {kind} edit")
    if kind == "acs":
        for key in ("set", "clear"):
            bits = raw.get(key, [])
            if not isinstance(bits, list) or any(b not in ACS_BITS for b in bits):
                raise DemoError(
                    f"step {number}: acs {key} = {bits!r}: expected a list of {', '.join(ACS_BITS)}"
                )
    if kind == "iommu" and not isinstance(raw["iommu"], bool):
        raise DemoError(f"step {number}: iommu must be true or false")
    if kind == "host_bridge" and "ids" not in raw:
        raise DemoError(f'step {number}: host_bridge edit needs ids = "vvvv:dddd"')
    return Edit(kind, tuple(raw.items()))


def parse_steps(data: dict[str, Any], where: str) -> tuple[str, list[StepSpec]]:
    """The title and the step specs of a parsed demo file, carried over."""
    title = data.get("title")
    if not isinstance(title, str) or not title.strip():
        raise DemoError(f"{where}: a demo needs a title")
    raw_steps = data.get("step")
    if not isinstance(raw_steps, list) or not raw_steps:
        raise DemoError(f"{where}: a demo needs at least one [[step]]")
    extra = set(data) - {"title", "description", "step"}
    if extra:
        raise DemoError(f"{where}: unknown key(s) {sorted(extra)}")
    specs: list[StepSpec] = []
    prev: StepSpec | None = None
    for number, raw in enumerate(raw_steps, start=1):
        specs.append(prev := _step(number, raw, prev))
    return title.strip(), specs


def _step(number: int, raw: dict[str, Any], prev: StepSpec | None) -> StepSpec:
    unknown = set(raw) - _STEP_KEYS
    if unknown:
        raise DemoError(f"step {number}: unknown key(s) {sorted(unknown)}")
    caption = raw.get("caption")
    if not isinstance(caption, str) or not caption.strip():
        raise DemoError(f"step {number}: every step needs a caption")
    for key in ("topology", "kernel", "cpu", "cmdline", "screen", "select", "peer",
                "scenario", "stage"):  # fmt: skip
        if key in raw and not isinstance(raw[key], str):
            raise DemoError(f"step {number}: {key} must be a string, got {raw[key]!r}")
    if prev is None:
        if "topology" not in raw:
            raise DemoError(f"step {number}: the first step must name a topology")
        spec = StepSpec(number, caption.strip(), raw["topology"])
    else:
        spec = replace(prev, number=number, caption=caption.strip())
        if raw.get("topology", prev.topology) != prev.topology:
            spec = StepSpec(number, caption.strip(), raw["topology"], screen=prev.screen)
    if raw.get("reset"):
        spec = replace(spec, edits=(), kernel=None, cpu=None, cmdline=None)
    screen = raw.get("screen", spec.screen)
    if screen not in SCREENS:
        raise DemoError(f"step {number}: unknown screen {screen!r} (one of {', '.join(SCREENS)})")
    stage = raw.get("stage", spec.stage if "scenario" not in raw else None)
    if stage is not None and stage not in STAGES:
        raise DemoError(f"step {number}: unknown stage {stage!r} (one of {', '.join(STAGES)})")
    edits = raw.get("edits", [])
    if not isinstance(edits, list):
        raise DemoError(f"step {number}: edits must be a list of tables")
    return replace(
        spec,
        screen=screen,
        stage=stage,
        edits=spec.edits + tuple(_edit(number, e) for e in edits),
        **{k: raw[k] for k in _CARRIED if k in raw},
    )


def _resolve(whatif: WhatIf, number: int, what: str, spec: str) -> BDF:
    try:
        return whatif.topology.resolve(spec)
    except KeyError as exc:
        msg = exc.args[0] if exc.args else spec
        raise DemoError(f"step {number}: {what} {spec!r}: {msg}") from None


def _apply_edit(whatif: WhatIf, number: int, edit: Edit) -> WhatIf:
    """``whatif`` after one of the step's edits (values parsed here, where the file gives them)."""
    args = dict(edit.args)
    if edit.kind == "acs":
        bdf = _resolve(whatif, number, "acs", str(args["acs"]))
        dev = whatif.topology[bdf]
        if dev.acs.presence is not AcsPresence.PRESENT or dev.acs.cap is None:
            raise DemoError(f"step {number}: {bdf} has no ACS capability to edit")
        ctrl = dev.acs.ctrl or 0
        want = ctrl | sum(ACS_BITS[b] for b in args.get("set", []))
        want &= ~sum(ACS_BITS[b] for b in args.get("clear", []))
        for bit in ACS_BITS.values():
            if (ctrl ^ want) & bit:
                whatif = whatif.apply(whatif_edits.toggle_acs_bit(bdf, bit))
        return whatif
    if edit.kind == "iommu":
        return whatif.apply(whatif_edits.set_iommu(bool(args["iommu"])))
    if edit.kind == "cmdline":
        return whatif.apply(whatif_edits.set_cmdline(str(args["cmdline"])))
    if edit.kind == "cpu":
        return whatif.apply(whatif_edits.set_cpu(CpuChoice.parse(str(args["cpu"]))))
    if edit.kind == "kernel":
        target = EngineConfig.parse(kernel=str(args["kernel"])).kernel
        assert target is not None
        return whatif.apply(whatif_edits.set_kernel(target))
    if edit.kind == "host_bridge":
        root = RootBus.parse(str(args["host_bridge"]))
        vendor, _, device = str(args["ids"]).partition(":")
        return whatif.apply(
            whatif_edits.set_host_bridge_ids(root, int(vendor, 16), int(device, 16))
        )
    raise DemoError(f"step {number}: unknown edit {edit.kind!r}")


def build_step(spec: StepSpec, whatif: WhatIf, selection: Selection) -> DemoStep:
    """The state ``spec`` shows, built from a freshly loaded ``whatif`` and its selection."""
    n = spec.number
    try:
        for edit in spec.edits:
            whatif = _apply_edit(whatif, n, edit)
        selected, peer = selection.selected, selection.peer
        if spec.select is not None:
            selected = _resolve(whatif, n, "select", spec.select)
        if spec.peer is not None:
            peer = _resolve(whatif, n, "peer", spec.peer)
        stage_index = 0
        run = None
        if spec.stage is not None and spec.scenario is None:
            raise DemoError(f"step {n}: stage {spec.stage} needs a scenario")
        if spec.scenario is not None:
            scenario = _scenario(spec)
            kernel = whatif.current.config.kernel
            named = None if scenario.kernel is None else scenario.kernel.version
            if kernel is not None and kernel.version != named:
                # The step's kernel (named, carried or edited) is also the data
                # path's, as with 'p2pview trace --kernel'.
                scenario = scenario.replace(kernel=DataPathKernel.of(kernel))
            providers = [seg.provider for seg in scenario.buffer if seg.provider is not None]
            if spec.select is None and providers:
                selected = providers[0]
            if spec.peer is None:
                peer = scenario.client
            run = simulate_scenario(whatif.current, scenario)
            if spec.stage is not None:
                names = [s.stage for s in run.trace.steps]
                if spec.stage not in names:
                    raise DemoError(
                        f"step {n}: scenario {spec.scenario} stops before stage {spec.stage}"
                        f" (it reaches {names[-1]})"
                    )
                stage_index = names.index(spec.stage)
        elif spec.screen == "stepper":
            raise DemoError(f"step {n}: the stepper screen needs a scenario")
        pair = (selected, peer) if selected is not None and peer is not None else selection.pair
    except DemoError:
        raise
    except (KeyError, ValueError) as exc:  # InputError is a ValueError
        raise DemoError(f"step {n}: {exc}") from None
    return DemoStep(spec, whatif, Selection(selected, peer, pair), run, stage_index)


def load_demo(name: str) -> Demo:
    """Read and check a demo (bundled name or file path); build every step's state."""
    path = demo_path(name)
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise DemoError(f"{path}: {exc}") from None
    title, specs = parse_steps(data, str(path))
    demo = Demo(path.stem, title, path)
    for spec in specs:
        demo.steps.append(build_step(spec, *_load(spec)))
    return demo


def _load(spec: StepSpec) -> tuple[WhatIf, Selection]:
    """Load the step's topology with its platform overrides.

    A step that runs a scenario and names no kernel runs it on the scenario's
    kernel, as ``p2pview trace`` does.
    """
    try:
        config = EngineConfig.parse(kernel=spec.kernel, cpu=spec.cpu, cmdline=spec.cmdline)
        if spec.kernel is None and spec.scenario is not None:
            named = _scenario(spec).kernel
            if named is not None:
                config = replace(config, kernel=named.target)
        start = load_start(spec.topology, config)
    except ValueError as exc:  # InputError is a ValueError
        raise DemoError(f"step {spec.number}: {exc}") from None
    return start.whatif, start.selection


def _scenario(spec: StepSpec) -> Scenario:
    assert spec.scenario is not None
    path = bundled_scenario_path(spec.scenario)
    return read_scenario(path if path is not None else Path(spec.scenario))
