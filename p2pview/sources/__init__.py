"""Layer 2: readers that turn topology files, sysfs trees and captures into a model.

Each reader is imported when a source needs it: the readers of dumps
(:mod:`~p2pview.sources.formats`: lspci, hwloc, NCCL ...), of archives, of
sysfs trees, of ``generated:N``, and the topology writers, so that a command
on a topology file starts without the sysfs reader, one on a sysfs tree
without the dump readers (``tests/test_cli_startup.py``), and a module that
wants only :class:`SourceError` (the simulator's scenario reader) without
any reader. The package's names are the same as when it imported them all.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from p2pview import lend_lazily
from p2pview.model import BDF, Topology
from p2pview.sources.checks import SourceError
from p2pview.sources.report import ScanReport

if TYPE_CHECKING:
    from p2pview.sources.bundled import BundledTopology, bundled_topologies
    from p2pview.sources.topofile import parse_topology_text, read_topology_file
    from p2pview.sources.topowrite import to_json, to_mapping, to_toml

#: The names this package lends from its readers, by module (imported on first use).
_LAZY = {
    "p2pview.sources.bundled": frozenset({"BundledTopology", "bundled_topologies"}),
    "p2pview.sources.topofile": frozenset({"parse_topology_text", "read_topology_file"}),
    "p2pview.sources.topowrite": frozenset({"to_json", "to_mapping", "to_toml"}),
}


#: A reader's name, imported when first asked for.
__getattr__ = lend_lazily(globals(), _LAZY)


__all__ = [
    "BundledTopology",
    "Loaded",
    "ScanReport",
    "SourceError",
    "bundled_topologies",
    "load_source",
    "parse_topology_text",
    "read_topology_file",
    "to_json",
    "to_mapping",
    "to_toml",
]

#: What ``p2pview`` reads when no SOURCE is given.
LIVE = "/"
#: ``--format`` for a sysfs tree (a directory or an archive of one), which detection finds anyway.
SYSFS = "sysfs"


@dataclass(frozen=True)
class Loaded:
    """A topology and how it was obtained.

    ``kind`` is ``"live"``, ``"sysfs"`` (a gathered tree or capture),
    ``"file"`` or ``"bundled"``. ``report`` is set for sysfs sources.
    """

    topology: Topology
    kind: str
    report: ScanReport = field(default_factory=ScanReport)

    @property
    def is_live(self) -> bool:
        """Read from this host's own ``/sys``."""
        return self.kind == "live"


def load_source(
    spec: str | None, fmt: str | None = None, *, only: Collection[BDF] | None = None
) -> Loaded:
    """Load SOURCE, then infer what it leaves out where it can (:mod:`p2pview.sources.infer`).

    ``only``: for a sysfs directory or this host, read just what a decision
    about those functions uses (see :func:`~p2pview.sources.sysfs.read_sysfs`);
    other sources are read whole.

    Raises:
        SourceError: with one line naming what could not be read and why.
    """
    from p2pview.sources.infer import infer_missing

    loaded = _load(spec, fmt, only)
    inferred = infer_missing(loaded.topology)
    if inferred is loaded.topology:
        return loaded
    return Loaded(inferred, loaded.kind, loaded.report)


def _load(spec: str | None, fmt: str | None = None, only: Collection[BDF] | None = None) -> Loaded:
    """Load SOURCE: a file in any format p2pview reads, a bundled name, a sysfs tree or ``/``.

    ``fmt`` names a file format (see :mod:`p2pview.sources.formats`) and
    skips detection from content.

    Raises:
        SourceError: with one line naming what could not be read and why.
    """
    from p2pview.sources.readfile import not_a_source

    sysfs = fmt == SYSFS
    if fmt is not None and not sysfs:
        from p2pview.sources.formats import by_name, names

        if by_name(fmt) is None:
            known = ", ".join([SYSFS, *names()])
            raise SourceError(f"--format {fmt!r}: unknown format (one of: {known})")
    if sysfs and spec is not None and spec != LIVE:
        path = Path(spec)
        from p2pview.sources.readfile import is_tarball

        if not (path.is_dir() or (path.is_file() and is_tarball(path))):
            raise SourceError(
                f"{spec}: --format sysfs wants a directory holding sys/ or a .tar.gz/.tar.bz2/"
                ".tar.xz of one"
            )
        fmt = None  # a directory or an archive of one: what the checks below look for
    if spec is None or spec == LIVE:
        from p2pview.sources.sysfs import is_sysfs_root, read_sysfs

        root = Path(LIVE)
        if not is_sysfs_root(root):
            raise SourceError("/: this host has no /sys/bus/pci (not Linux, or sysfs not mounted)")
        topo, report = read_sysfs(root, live=True, only=only)
        return Loaded(topo, "live", report)
    path = Path(spec)
    if path.is_dir():
        from p2pview.sources.sysfs import is_sysfs_root, read_sysfs

        if not is_sysfs_root(path):
            raise SourceError(
                f"{spec}: a directory, but no sys/bus/pci/devices or sys/devices under it"
            )
        topo, report = read_sysfs(path, only=only)
        return Loaded(topo, "sysfs", report)
    if path.is_file():
        from p2pview.sources.readfile import is_tarball

        if fmt is None and is_tarball(path):
            # The archive and sysfs readers are imported only for an archive.
            from p2pview.sources.archive import read_archive
            from p2pview.sources.sysfs import is_sysfs_root, read_sysfs

            tree = read_archive(path)
            if not is_sysfs_root(tree):
                raise SourceError(f"{spec}: an archive without a sys/ tree inside")
            topo, report = read_sysfs(tree)
            stem = path.name.split(".tar")[0]
            description = topo.description
            if description.startswith("sysfs of "):
                description = f"gathered sysfs tree {path.name}"
            topo = topo.replace_meta(
                name=topo.platform.hostname or stem, source=spec, description=description
            )
            return Loaded(topo, "sysfs", report)
        return Loaded(_read_file(path, fmt), "file")
    odd = not_a_source(path)
    if odd is not None:
        raise SourceError(f"{spec}: {odd}; p2pview reads regular files and directories")
    from p2pview.sources.bundled import bundled_path

    bundled = bundled_path(spec)
    if bundled is not None:
        from p2pview.sources.topofile import read_topology_file

        return Loaded(read_topology_file(bundled), "bundled")
    if spec.startswith("generated:"):
        # generated:N[:SEED] - a synthetic topology of N functions (benchmarks, scale tests)
        parts = spec.split(":")
        try:
            size = int(parts[1])
            seed = int(parts[2]) if len(parts) > 2 else 0
        except (IndexError, ValueError):
            raise SourceError(f"{spec}: expected generated:N or generated:N:SEED") from None
        if not 1 <= size <= 1 << 20:
            raise SourceError(f"{spec}: N must be between 1 and 1048576")
        from p2pview.sources.synthetic import generate

        return Loaded(generate(size, seed), "generated")
    raise SourceError(
        f"{spec}: no such file or directory, and not a bundled topology (see 'p2pview topologies')"
    )


def _read_file(path: Path, fmt: str | None) -> Topology:
    from p2pview.sources.formats import by_name, detect, not_recognised, unwrap
    from p2pview.sources.provenance import with_acs_reason
    from p2pview.sources.readfile import TEXT, read_text_bounded

    # prompts, command lines and fences around a pasted dump are blanked first
    text = unwrap(read_text_bounded(path, TEXT)).text
    chosen = by_name(fmt) if fmt is not None else detect(text)
    if chosen is None:
        raise SourceError(not_recognised(str(path), text))
    if chosen.parse is None:
        raise SourceError(f"{path}: {chosen.description}: {chosen.not_a_topology}")
    topo = chosen.parse(chosen.prepare(text), str(path))
    return with_acs_reason(topo, f"a {chosen.name} dump does not record ACS")
