"""The hwloc XML (1.x, 2.x, 3.x) and lstopo console readers, on real files and broken ones."""

from __future__ import annotations

import pytest
from conftest import DATA

from p2pview.model import BDF, AcsPresence, PcieType
from p2pview.sources import SourceError
from p2pview.sources.hwloc import (
    hwloc_keeps,
    parse_hwloc_xml,
    parse_lstopo_console,
    parse_xml_safely,
    sniff_hwloc_xml,
    sniff_lstopo_console,
)
from p2pview.sources.nccl import sniff_nccl_xml

B = BDF.parse
HW = DATA / "hwloc"


def load(rel: str):
    path = HW / rel
    return parse_hwloc_xml(path.read_text(), str(path))


def test_dgx2_nested_plx_switches():
    topo = load("xml/nvidiaDGX2.xml")
    gpus = [d for d in topo if d.ids == "10de:1db8"]
    assert len(gpus) == 16
    # GPU 34:00.0 sits five bridges deep: root port, PEX 9781 USP/DSP, inner USP/DSP.
    assert topo.upstream_chain(B("34:00.0")) == (
        B("34:00.0"),
        B("33:00.0"),
        B("32:00.0"),
        B("2d:04.0"),
        B("2c:00.0"),
        B("2b:00.0"),
    )
    assert [str(hb.root) for hb in topo.host_bridges] == [
        "pci0000:2b",
        "pci0000:4e",
        "pci0000:ae",
        "pci0000:d7",
    ]
    assert [hb.numa_node for hb in topo.host_bridges] == [0, 0, 1, 1]
    gpu = topo[B("34:00.0")]
    assert gpu.numa_node == 0
    assert (gpu.class_code, gpu.revision) == (0x030200, 0xA1)
    assert (gpu.subsystem_vendor, gpu.subsystem_device) == (0x10DE, 0x131D)
    assert gpu.link.speed == "15.75 GB/s (hwloc)" and gpu.link.width is None
    assert gpu.acs.presence is AcsPresence.UNKNOWN
    assert gpu.pcie_type is PcieType.ENDPOINT and gpu.pcie_type_inferred
    rp = topo[B("2b:00.0")]
    assert rp.pcie_type is PcieType.ROOT_PORT and rp.pcie_type_inferred
    assert topo[B("2c:00.0")].pcie_type is PcieType.UPSTREAM
    assert topo[B("2d:04.0")].pcie_type is PcieType.DOWNSTREAM
    assert rp.label is None  # this export has no PCIVendor/PCIDevice infos
    plat = topo.platform
    assert (plat.cpu_vendor, plat.cpu_family, plat.arch) == ("GenuineIntel", 6, "x86_64")
    assert plat.cpu_model_name == "Intel(R) Xeon(R) Platinum 8174 CPU @ 3.10GHz"
    assert plat.hostname is None and topo.name == "nvidiaDGX2"  # no HostName info


def test_format_versions_are_told_apart():
    assert "format 3.0" in load("xml/nvidiaDGX2.xml").description
    assert "format 2.0" in load("xml-v2-format/nvidiaDGX2.xml").description
    assert "format 1.x" in load("xml-v1-format/nvidiaDGX2.xml").description


def test_v1_format_numa_from_the_enclosing_numanode():
    topo = load("xml-v1-format/24em64t-2n6c2t-pci.xml")
    assert topo[B("04:00.0")].numa_node == 0
    assert topo[B("14:00.0")].numa_node == 1
    assert topo[B("04:00.0")].parent == B("00:01.0")
    assert topo.platform.kernel == "2.6.27.39-0.3-perfctr"


def test_filtered_and_whole_io_exports_are_told_apart():
    normal = load("xml/32em64t-2n8c2t-pci-normalio.xml")
    whole = load("xml/32em64t-2n8c2t-pci-wholeio.xml")
    assert "default I/O filter" in normal.description
    assert "--whole-io" in whole.description and "default I/O filter" not in whole.description
    assert set(normal.bdfs) < set(whole.bdfs)


def test_hand_edited_duplicate_busid_is_kept_once_and_reported():
    # hwloc's own test file lists 0000:04:00.0 twice (a SATA controller and a
    # ConnectX-4 added under another bridge); hwloc loads it, so do we.
    topo = load("xml/32em64t-2n8c2t-pci-normalio.xml")
    assert topo[B("04:00.0")].ids == "8086:1d6b"
    assert "line 247: 0000:04:00.0 listed again (first at line 100)" in topo.description


def test_bus_ranges_that_do_not_hold_are_reported():
    topo = load("xml/devel09-pci.xml")
    assert "0000:51:00.0 is below pci0000:00, whose buses are [00-04]" in topo.description
    assert topo.root_bus_of(B("51:00.0")).bus == 0x51


def test_vfs_are_plain_functions():
    topo = load("xml/16intel64-manyVFs.xml")
    assert len(topo.find_by_id(0x1137, 0x00CF)) == 10
    assert all(d.physfn is None for d in topo)  # hwloc does not record SR-IOV links
    assert topo[B("00:01.1")].label == (
        "Intel Corporation Xeon E5/Core i7 IIO PCI Express Root Port 1b"
    )


def test_prog_if_is_part_of_the_class_from_format_3():
    v3 = load("xml/40intel64-2g2n4c+pcilocality.xml")
    usb = [d for d in v3 if d.class_code >> 8 == 0x0C03]
    assert usb and {d.class_code & 0xFF for d in usb} != {0}


def test_hwloc_keeps_mirrors_the_important_filter():
    assert hwloc_keeps(0x030200) and hwloc_keeps(0x020000) and hwloc_keeps(0x010802)
    assert hwloc_keeps(0x0C0600) and hwloc_keeps(0x0B4000) and hwloc_keeps(0x120000)
    assert not hwloc_keeps(0x0C0300)  # USB
    assert not hwloc_keeps(0x060000)  # host bridge function
    assert not hwloc_keeps(0x088000)


# -- lstopo text ---------------------------------------------------------------


def test_console_tree_and_second_domain():
    path = HW / "lstopo-console/2pa-pcidomain32bits.console"
    topo = parse_lstopo_console(path.read_text(), str(path))
    assert [str(b) for b in topo.bdfs] == [
        "0000:00:01.1",
        "0000:00:02.0",
        "0000:00:03.0",
        "10000:00:04.0",
    ]
    assert [str(hb.root) for hb in topo.host_bridges] == ["pci0000:00", "pci10000:00"]
    assert topo[B("10000:00:04.0")].class_code == 0x010000
    assert topo.platform.hostname == "hwloc-debian9amd64"


def test_console_numa_only_where_clear():
    path = HW / "lstopo-console/32intel64-2p8co2t+8ve.console"
    topo = parse_lstopo_console(path.read_text(), str(path))
    assert {d.numa_node for d in topo} == {0}  # all below Package 0 and its one NUMANode
    # hwloc attached this host bridge to the whole machine (affinity conflict): unknown.
    path = HW / "lstopo-console/40intel64-4n10c+pci-conflicts.console"
    topo = parse_lstopo_console(path.read_text(), str(path))
    assert topo[B("01:00.0")].numa_node is None and topo.host_bridges[0].numa_node is None


def test_console_collapsed_vfs_and_cut_lines():
    path = HW / "lstopo-console/16intel64-manyVFs.console"
    topo = parse_lstopo_console(path.read_text(), str(path))
    # "3 x { PCI L#3-5 (busid=0b:00.1-3 ...) }" expands to three functions.
    for fn in (1, 2, 3):
        assert topo[BDF(0, 0x0B, 0, fn)].parent == B("0a:00.0")
    # A bridge line cut before its closing parenthesis still counts.
    assert topo[B("06:00.0")].parent == B("00:03.0")
    assert topo[B("0c:00.2")].ids == "1138:00cf"
    xml = load("xml/16intel64-manyVFs.xml")
    assert {d.bdf: d.parent for d in topo} == {d.bdf: d.parent for d in xml}


def test_console_errors_name_the_line():
    text = "Machine (P#0)\n  HostBridge (buses=0000:[00-01])\n    PCI L#0 (id=8086:1521)\n"
    with pytest.raises(SourceError, match=r"^x\.console: line 3: a PCI line without busid="):
        parse_lstopo_console(text, "x.console")
    text = "Machine\n  HostBridge\n    2 x { PCI L#1-2 (busid=00:01.0-02.0 id=8086:1521) }\n"
    with pytest.raises(SourceError, match=r"^x: line 3: 2 functions collapsed"):
        parse_lstopo_console(text, "x")


# -- sniffing ------------------------------------------------------------------


def test_sniffers():
    for rel in (
        "xml/nvidiaDGX2.xml",
        "xml-v2-format/nvidiaDGX2.xml",
        "xml-v1-format/nvidiaDGX2.xml",
    ):
        text = (HW / rel).read_text()
        assert sniff_hwloc_xml(text) and not sniff_nccl_xml(text)
    rccl = (DATA / "rccl/hygon-dcu-8x-pex88096.rccl-topo.xml").read_text()
    assert sniff_nccl_xml(rccl) and not sniff_hwloc_xml(rccl)
    console = (HW / "lstopo-console/32intel64-2p8co2t+8ve.console").read_text()
    assert sniff_lstopo_console(console) and not sniff_hwloc_xml(console)
    assert not sniff_lstopo_console(rccl)
    assert sniff_hwloc_xml('<!DOCTYPE topology [<!ENTITY a "b">]><topology/>')


# -- malformed input -----------------------------------------------------------

HEAD = '<?xml version="1.0"?>\n<!DOCTYPE topology SYSTEM "hwloc2.dtd">\n<topology version="2.0">\n'


def doc(body: str) -> str:
    return HEAD + body + "</topology>\n"


HB = '<object type="Bridge" bridge_type="0-1" depth="0" bridge_pci="0000:[00-01]">\n'
DEV = (
    '<object type="PCIDev" pci_busid="{busid}" pci_type="0200 [8086:1521] [0000:0000] 01"'
    ' pci_link_speed="{speed}"/>\n'
)


def test_minimal_document():
    text = doc(
        '<object type="Machine" cpuset="0x1" nodeset="0x1">\n'
        + HB
        + DEV.format(busid="0000:00:19.0", speed="0.25")
        + "</object>\n</object>\n"
    )
    topo = parse_hwloc_xml(text, "m.xml")
    dev = topo[B("00:19.0")]
    assert dev.parent is None and dev.numa_node == 0 and dev.link.speed == "0.25 GB/s (hwloc)"
    assert topo.host_bridges[0].numa_node == 0


def test_type_names_without_bridge_type():
    text = doc(
        '<object type="HostBridge" bridge_pci="0001:[00-02]">\n'
        '<object type="PCIBridge" bridge_pci="0001:[01-01]" pci_busid="0001:00:02.0"'
        ' pci_type="0604 [8086:2030] [8086:0000] 04 00">\n'
        + DEV.format(busid="0001:01:00.0", speed="15.753846").replace("PCIDev", "PCI")
        + "</object></object>\n"
    )
    topo = parse_hwloc_xml(text, "t.xml")
    assert [str(hb.root) for hb in topo.host_bridges] == ["pci0001:00"]
    assert topo[B("0001:01:00.0")].parent == B("0001:00:02.0")
    assert topo[B("0001:00:02.0")].is_bridge and topo[B("0001:00:02.0")].parent is None


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("<topology>\n<object>\n</topology>", r"^f\.xml: line 3, column 3: not well-formed XML"),
        (
            '<!DOCTYPE t [<!ENTITY a "aaaa">]>\n<topology/>',
            r"^f\.xml: line 1: DOCTYPE with an internal subset refused",
        ),
        ("<topology>&x;</topology>", r"^f\.xml: line 1, column \d+: not well-formed"),
        (
            '<!DOCTYPE topology SYSTEM "hwloc2.dtd">\n<topology>\n&x;</topology>',
            r"^f\.xml: line 3: reference to undeclared entity &x;",
        ),
        ('<system version="1"/>', r"^f\.xml: line 1: root element <system> is not an hwloc"),
        ('<topology version="9.0"/>', r"^f\.xml: line 1: <topology> version: '9\.0'"),
        (
            doc(HB + DEV.format(busid="zz", speed="1") + "</object>\n"),
            r"^f\.xml: line 5: .*pci_busid",
        ),
        (
            doc(HB + DEV.format(busid="0000:00:19.0", speed="fast") + "</object>\n"),
            r"^f\.xml: line 5: <object> pci_link_speed: 'fast' is not a number",
        ),
        (
            doc(HB.replace("[00-01]", "[00-zz]") + "</object>\n"),
            r"^f\.xml: line 4: <object> bridge_pci:",
        ),
        (
            doc(HB.replace('"0-1"', '"7-1"') + "</object>\n"),
            r"^f\.xml: line 4: <object> bridge_type: upstream type 7",
        ),
        (
            doc('<object type="PCIDev" pci_busid="0000:00:01.0"/>\n'),
            r"^f\.xml: line 4: <object> pci_type: missing",
        ),
        (
            doc('<object type="PCIDev" pci_busid="0000:00:01.0" pci_type="0200 8086:1521"/>\n'),
            r"^f\.xml: line 4: <object> pci_type: '0200 8086:1521' is not",
        ),
        (doc("<object/>\n"), r"^f\.xml: line 4: <object> type: missing"),
        ("", r"^f\.xml: line 1, column 1: not well-formed XML: no element found"),
        ("<topology>\ud800</topology>", r"^f\.xml: line 1: character '\\ud800' cannot be encoded"),
    ],
)
def test_malformed_input_names_file_and_line(text, expected):
    with pytest.raises(SourceError, match=expected):
        parse_hwloc_xml(text, "f.xml")


def test_entity_declarations_are_never_expanded():
    bomb = (
        '<?xml version="1.0"?>\n<!DOCTYPE lolz [\n <!ENTITY lol "lol">\n'
        ' <!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">\n]>\n'
        "<topology>&lol2;</topology>\n"
    )
    with pytest.raises(SourceError, match="refused"):
        parse_hwloc_xml(bomb, "bomb.xml")


def test_deep_nesting_is_refused():
    text = "<topology>" + "<object type='Misc'>" * 500 + "</object>" * 500 + "</topology>"
    with pytest.raises(SourceError, match=r"^d: line 1: elements nested more than"):
        parse_xml_safely(text, "d")


def test_pci_object_in_another_domain_than_its_bridge():
    bridge = (
        '<object type="Bridge" bridge_type="1-1" bridge_pci="0000:[01-01]"'
        ' pci_busid="0000:00:01.0" pci_type="0604 [8086:3c02] [0000:0000] 07">\n'
    )
    text = doc(HB + bridge + DEV.format(busid="0001:01:00.0", speed="1") + "</object></object>\n")
    with pytest.raises(SourceError, match=r"^f: line 6: .*0001:01:00\.0 is below 0000:00:01\.0"):
        parse_hwloc_xml(text, "f")
