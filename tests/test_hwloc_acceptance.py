"""Issue 3 acceptance: p2pview's sysfs reader against hwloc's expected output, machine by machine.

For each gathered sysfs tarball of hwloc's test suite, hwloc's ``.test`` spec
names the expected output (``lstopo -v`` text or XML) and the options it was
made with. p2pview reads the tarball with its own sysfs reader; the set of
functions, which of them are bridges, every parent link, the IDs and the root
buses must equal hwloc's - after applying hwloc's default I/O filter to our
tree when the spec has no ``--whole-io`` - except for the differences listed
in ``KNOWN_DIFFERENCES``, each with its reason and a check that the reason
holds in the data.

The environment variables in the specs (``HWLOC_PCI_LOCALITY``,
``HWLOC_SHOW_ERRORS``) change where hwloc attaches host bridges among CPU
objects and what it prints, not the PCI tree, so they play no part here.

Also here: every hwloc XML of the suite loads, and each machine loaded from
its 1.x / 2.0 / 3.0 files gives the same tree.
"""

from __future__ import annotations

import tarfile
from pathlib import Path

import pytest
from conftest import DATA

from p2pview.model import BDF, Topology
from p2pview.sources import load_source
from p2pview.sources.hwloc import hwloc_kept_functions, parse_hwloc_xml, parse_lstopo_console

B = BDF.parse
HW = DATA / "hwloc"

MACHINES = [
    "2pa-pcidomain32bits",
    "32em64t-2n8c+dax+nvme+mic+dimms",
    "32intel64-2p8co2t+8ve",
    "40intel64-2g2n4c+pcilocality",
    "40intel64-4n10c+pci-conflicts",
]

#: Stands for "not listed" in a difference.
ABSENT = "absent"
#: Stands for "on a root bus" (no parent bridge).
ROOT = "root bus"

#: Per machine: function -> (p2pview's parent, hwloc's parent, reason).
KNOWN_DIFFERENCES: dict[str, dict[BDF, tuple[object, object, str]]] = {
    "32em64t-2n8c+dax+nvme+mic+dimms": {
        # hwloc_pcidisc_find_bridge_buses() drops a PCI-PCI bridge whose
        # secondary/subordinate bus numbers are not above its own bus. 00:11.0
        # (C600 virtual root port, 8086:1d3e) was never configured: both are
        # 00. The kernel still has a pci_dev for it, so p2pview lists it (with
        # no function below it). Checked in _check_reason below.
        B("00:11.0"): (ROOT, ABSENT, "unconfigured bridge: secondary = subordinate = 00"),
    },
    "32intel64-2p8co2t+8ve": {
        # The capture lacks sys/bus/pci/devices/0000:5f:03.0, but its
        # directory is there, between 5e:00.0 and the X722 functions
        # 60:00.0/60:00.1. The kernel's pci_upstream_bridge() of 60:00.x is
        # 5f:03.0 (the sysfs nesting is the kernel's device tree), and the
        # sysfs reader keeps it. hwloc only enumerates sys/bus/pci/devices,
        # never sees 5f:03.0, and hangs 60:00.x below 5e:00.0 by bus range.
        B("5f:03.0"): (B("5e:00.0"), ABSENT, "trimmed capture: no bus/pci/devices entry"),
        # lstopo then draws 60:00.x below 5e:00.0, whose secondary bus is 5f:
        # p2pview's console reader puts a placeholder bridge 5f:00.0 in between,
        # standing for the one it cannot see.
        B("60:00.0"): (B("5f:03.0"), B("5f:00.0"), "hwloc does not see 5f:03.0"),
        B("60:00.1"): (B("5f:03.0"), B("5f:00.0"), "hwloc does not see 5f:03.0"),
        B("5f:00.0"): (ABSENT, B("5e:00.0"), "the placeholder for the hidden bridge"),
    },
}


def _spec(name: str) -> dict[str, str]:
    """The ``source:``/``target:``/``options:`` lines of hwloc's test spec."""
    fields: dict[str, str] = {}
    for line in (HW / f"test-specs/{name}.test").read_text().splitlines():
        key, sep, value = line.partition(":")
        if sep and not key.startswith("#"):
            fields.setdefault(key.strip(), value.strip())
    return fields


def _expected(name: str) -> tuple[Topology, bool]:
    spec = _spec(name)
    assert spec["source"] == f"{name}.tar.bz2"
    target = spec["target"]
    whole_io = "--whole-io" in spec.get("options", "")
    if target.endswith(".xml"):
        path = HW / "xml" / target
        return parse_hwloc_xml(path.read_text(), str(path)), whole_io
    path = HW / "lstopo-console" / target
    return parse_lstopo_console(path.read_text(), str(path)), whole_io


def _parents(topo: Topology, bdfs: frozenset[BDF] | set[BDF]) -> dict[BDF, object]:
    return {b: topo[b].parent or ROOT for b in bdfs}


def _check_reason(name: str, tarball: Path) -> None:
    """The facts each known difference rests on, read from the capture itself."""
    with tarfile.open(tarball) as tar:
        names = tar.getnames()
        if name == "32em64t-2n8c+dax+nvme+mic+dimms":
            member = next(n for n in names if n.endswith("0000:00:11.0/config"))
            fh = tar.extractfile(member)
            assert fh is not None
            config = fh.read()
            assert config[0x0E] & 0x7F == 1  # a type 1 (bridge) header
            assert (config[0x19], config[0x1A]) == (0, 0)  # secondary, subordinate bus
    if name == "32intel64-2p8co2t+8ve":
        assert not any(n.endswith("bus/pci/devices/0000:5f:03.0") for n in names)
        assert any(n.endswith("/0000:5e:00.0/0000:5f:03.0/0000:60:00.0") for n in names)


@pytest.mark.parametrize("name", MACHINES)
def test_sysfs_tree_equals_hwlocs(name: str) -> None:
    tarball = HW / f"{name}.tar.bz2"
    loaded = load_source(str(tarball))
    ours = loaded.topology
    hwloc, whole_io = _expected(name)

    listed = frozenset(ours.bdfs) if whole_io else hwloc_kept_functions(ours)
    mine = _parents(ours, listed)
    theirs = _parents(hwloc, frozenset(hwloc.bdfs))
    differences = {
        bdf: (mine.get(bdf, ABSENT), theirs.get(bdf, ABSENT))
        for bdf in sorted(set(mine) | set(theirs))
        if mine.get(bdf, ABSENT) != theirs.get(bdf, ABSENT)
    }
    known = KNOWN_DIFFERENCES.get(name, {})
    assert differences == {bdf: (a, b) for bdf, (a, b, _why) in known.items()}
    _check_reason(name, tarball)

    both = sorted(set(mine) & set(theirs))
    assert len(both) >= 2
    for bdf in both:
        a, b = ours[bdf], hwloc[bdf]
        assert (a.vendor, a.device) == (b.vendor, b.device), bdf
        # lstopo text prints the 16-bit class only; hwloc 2.x XML has no prog-if.
        assert a.class_code >> 8 == b.class_code >> 8, bdf
        assert a.is_bridge == b.is_bridge, bdf
    roots_ours = {ours.root_bus_of(b) for b in both}
    roots_hwloc = {hwloc.root_bus_of(b) for b in both}
    assert roots_ours == roots_hwloc
    assert {hb.root for hb in hwloc.host_bridges} >= roots_hwloc


def test_every_known_difference_belongs_to_a_machine() -> None:
    assert set(KNOWN_DIFFERENCES) <= set(MACHINES)


# -- every XML loads; the formats agree ---------------------------------------

XMLS = sorted(
    str(p.relative_to(HW))
    for sub in ("xml", "xml-v2-format", "xml-v1-format")
    for p in (HW / sub).glob("*.xml")
)


def _load(rel: str) -> Topology:
    path = HW / rel
    return parse_hwloc_xml(path.read_text(), str(path))


@pytest.mark.parametrize("rel", XMLS)
def test_every_hwloc_xml_loads(rel: str) -> None:
    topo = _load(rel)
    assert len(topo) > 0 and topo.host_bridges
    assert all(d.acs.presence.value == "unknown" for d in topo)


def _tree(topo: Topology) -> dict[BDF, tuple[object, ...]]:
    """Functions, parents and IDs; the class without the prog-if, which 2.x does not store."""
    return {
        d.bdf: (
            d.parent,
            d.vendor,
            d.device,
            d.class_code >> 8,
            d.subsystem_vendor,
            d.subsystem_device,
            d.revision,
            d.header_type,
            d.numa_node,
            d.label,
            d.link.speed,
            d.pcie_type,
        )
        for d in topo
    }


V2_MACHINES = sorted(p.stem for p in (HW / "xml-v2-format").glob("*.xml"))


@pytest.mark.parametrize("name", V2_MACHINES)
def test_v2_and_v3_files_give_the_same_tree(name: str) -> None:
    v2, v3 = _load(f"xml-v2-format/{name}.xml"), _load(f"xml/{name}.xml")
    assert _tree(v2) == _tree(v3)
    assert v2.host_bridges == v3.host_bridges
    assert (v2.platform, v2.name) == (v3.platform, v3.name)


@pytest.mark.parametrize("name", sorted(p.stem for p in (HW / "xml-v1-format").glob("*.xml")))
def test_v1_file_gives_the_same_tree_as_v2(name: str) -> None:
    v1, v2 = _load(f"xml-v1-format/{name}.xml"), _load(f"xml-v2-format/{name}.xml")
    assert _tree(v1) == _tree(v2)
    assert v1.host_bridges == v2.host_bridges
