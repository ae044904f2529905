"""Which bundled O_DIRECT scenarios the stepper offers for the loaded topology.

Plain Python (no Textual): the stepper screen lists these in its picker. A
scenario names its topology (``topology = "switch-nvme"``); the ones written
for the loaded topology come first. The others are listed too, with a note:
they run here only when every function they name exists in this topology.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from pathlib import Path

from p2pview.iosim import Scenario, read_scenario
from p2pview.model import BDF, Topology
from p2pview.sources import SourceError
from p2pview.sources.bundled import bundled_scenarios


@dataclass(frozen=True)
class ScenarioChoice:
    """One bundled scenario as the picker shows it."""

    name: str
    path: Path
    #: ``None`` when the file could not be read (``error`` says why).
    scenario: Scenario | None
    #: The topology the scenario was written for.
    topology: str
    #: The first line of its description.
    title: str
    #: Written for the loaded topology.
    fits: bool
    #: Every function it names exists in the loaded topology.
    runnable: bool
    #: One line for the user: why it cannot run, or what to expect.
    note: str = ""
    error: str | None = None


def scenario_topology(scenario: Scenario) -> str:
    """The name of the topology a scenario was written for (a path's stem, else the name)."""
    return Path(scenario.source).stem if scenario.source else ""


def named_functions(scenario: Scenario) -> tuple[BDF, ...]:
    """The client and every provider the scenario's buffer names, in order, once each."""
    seen: dict[BDF, None] = {scenario.client: None}
    for segment in scenario.buffer:
        if segment.provider is not None:
            seen.setdefault(segment.provider, None)
    return tuple(seen)


def missing_functions(scenario: Scenario, topology: Topology) -> tuple[BDF, ...]:
    """The functions the scenario names that the topology does not have."""
    return tuple(b for b in named_functions(scenario) if b not in topology)


@cache
def _read(path: Path, mtime: float) -> Scenario | str:
    """A bundled scenario, or the reason it cannot be read (cached per file version)."""
    try:
        return read_scenario(path)
    except SourceError as exc:
        return str(exc)


def read_bundled(path: Path) -> Scenario | str:
    """Read one bundled scenario file (a parsed scenario, or an error line)."""
    try:
        mtime = path.stat().st_mtime
    except OSError as exc:
        return f"{path}: {exc.strerror or exc}"
    return _read(path, mtime)


def scenario_choices(topology: Topology) -> list[ScenarioChoice]:
    """Every bundled scenario: the loaded topology's first, then the others with a note."""
    own: list[ScenarioChoice] = []
    others: list[ScenarioChoice] = []
    for name, path in bundled_scenarios():
        parsed = read_bundled(path)
        if isinstance(parsed, str):
            others.append(
                ScenarioChoice(name, path, None, "?", "", False, False, error=parsed, note=parsed)
            )
            continue
        written_for = scenario_topology(parsed)
        description = parsed.description.strip()
        title = description.splitlines()[0] if description else ""
        missing = missing_functions(parsed, topology)
        fits = written_for == topology.name
        if missing:
            shown = ", ".join(str(b) for b in missing[:3])
            note = f"written for {written_for}: {shown} not in this topology"
        elif fits:
            note = ""
        else:
            note = f"written for {written_for}; its functions exist here, so it runs on this one"
        choice = ScenarioChoice(
            name, path, parsed, written_for, title, fits, not missing, note=note
        )
        (own if fits else others).append(choice)
    return own + others
