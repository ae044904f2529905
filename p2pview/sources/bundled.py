"""The topologies shipped with p2pview (``topologies/`` in the source tree).

In an installed package they live in ``p2pview/topologies/`` (the build maps
the top-level directory there); in a source checkout they are read from the
top-level ``topologies/`` directly.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from p2pview.sources.packaged import PACKAGE_DIR, package_file
from p2pview.sources.topofile import read_topology_file


@dataclass(frozen=True, slots=True)
class BundledTopology:
    """One shipped topology file."""

    name: str
    path: Path
    title: str
    description: str


def topologies_dir() -> Path:
    """The directory holding the bundled ``*.toml`` files."""
    packaged = package_file("topologies")
    return packaged if packaged.is_dir() else PACKAGE_DIR.parent / "topologies"


def bundled_topologies() -> list[BundledTopology]:
    """Every bundled topology, by name."""
    out = []
    for path in sorted(topologies_dir().glob("*.toml"), key=lambda p: p.stem):
        topo = read_topology_file(path)
        title = topo.description.strip().splitlines()[0] if topo.description.strip() else ""
        out.append(BundledTopology(path.stem, path, title, topo.description.strip()))
    return out


def bundled_path(name: str) -> Path | None:
    """The file of the bundled topology ``name`` (with or without ``.toml``)."""
    stem = name.removesuffix(".toml")
    if not stem or "/" in stem or stem.startswith("."):
        return None
    path = topologies_dir() / f"{stem}.toml"
    return path if path.is_file() else None


def scenarios_dir() -> Path:
    """The directory holding the bundled O_DIRECT scenarios."""
    return topologies_dir() / "scenarios"


def bundled_scenarios() -> list[tuple[str, Path]]:
    """Every bundled scenario's name and file, by name."""
    folder = scenarios_dir()
    if not folder.is_dir():
        return []
    return [(p.stem, p) for p in sorted(folder.glob("*.toml"), key=lambda p: p.stem)]


def bundled_scenario_path(name: str) -> Path | None:
    """The file of the bundled scenario ``name`` (with or without ``.toml``)."""
    stem = name.removesuffix(".toml")
    if not stem or "/" in stem or stem.startswith("."):
        return None
    path = scenarios_dir() / f"{stem}.toml"
    return path if path.is_file() else None
