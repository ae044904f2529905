"""The file formats p2pview reads, and detection from content.

Detection never trusts the file name: each format has a ``sniff`` test on the
first bytes of the text, tried in the order of :data:`FORMATS` (the most
specific first). ``--format NAME`` skips detection.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from p2pview.model import Topology
from p2pview.sources.hwloc import (
    parse_hwloc_xml,
    parse_lstopo_console,
    sniff_hwloc_xml,
    sniff_lstopo_console,
)
from p2pview.sources.lspci import (
    parse_lspci_hex,
    parse_lspci_tree,
    parse_lspci_verbose,
    sniff_lspci_hex,
    sniff_lspci_tree,
    sniff_lspci_verbose,
)
from p2pview.sources.nccl import parse_nccl_xml, sniff_nccl_xml
from p2pview.sources.nvsmi import sniff_nvsmi_topo
from p2pview.sources.topofile import looks_like_topology, parse_topology_text


@dataclass(frozen=True, slots=True)
class Format:
    """A readable file format.

    ``parse`` is ``None`` for formats that are not topologies (an
    ``nvidia-smi topo -m`` matrix is a labelling, read by ``p2pview compare``).
    """

    name: str
    description: str
    sniff: Callable[[str], bool]
    parse: Callable[[str, str], Topology] | None
    #: For formats without ``parse``: what to do with such a file instead.
    not_a_topology: str = ""


FORMATS: tuple[Format, ...] = (
    Format(
        "hwloc-xml",
        "hwloc XML (lstopo --of xml), formats 1.x, 2.x, 3.x: tree, IDs, link bandwidth,"
        " NUMA; no ACS",
        sniff_hwloc_xml,
        parse_hwloc_xml,
    ),
    Format(
        "nccl-xml",
        "NCCL/RCCL topology dump (NCCL_TOPO_DUMP_FILE): the PCI tree as NCCL saw it",
        sniff_nccl_xml,
        parse_nccl_xml,
    ),
    Format(
        "lstopo",
        "lstopo -v text: tree, IDs, link bandwidth; no ACS",
        sniff_lstopo_console,
        parse_lstopo_console,
    ),
    Format(
        "topology",
        "p2pview topology file (TOML, or JSON with the same schema)",
        looks_like_topology,
        parse_topology_text,
    ),
    Format(
        "nvidia-smi",
        "'nvidia-smi topo -m' matrix (a labelling of GPU/NIC pairs, not a topology)",
        sniff_nvsmi_topo,
        None,
        not_a_topology="compare it with a topology of the same machine:"
        " p2pview compare SOURCE FILE",
    ),
    # hex before verbose: a -vvxxxx dump passes both tests.
    Format(
        "lspci-hex",
        "lspci -xxx/-xxxx/-vvxxxx dump (what lspci -F reads): config space, ACS, tree",
        sniff_lspci_hex,
        parse_lspci_hex,
    ),
    Format(
        "lspci-tree",
        "lspci -tv/-tvnn tree: names and parent links only (ACS unknown)",
        sniff_lspci_tree,
        parse_lspci_tree,
    ),
    Format(
        "lspci-verbose",
        "lspci -vvv/-vvvnn text: Bus: lines, PCIe port types, ACSCap/ACSCtl",
        sniff_lspci_verbose,
        parse_lspci_verbose,
    ),
)


def by_name(name: str) -> Format | None:
    """The format called ``name``."""
    return next((f for f in FORMATS if f.name == name), None)


def detect(text: str) -> Format | None:
    """The first format whose sniff test accepts ``text``."""
    head = text[:65536]
    for fmt in FORMATS:
        if fmt.sniff(head):
            return fmt
    return None


def names() -> list[str]:
    """Every format name, for ``--format`` choices."""
    return [f.name for f in FORMATS]
