"""The topology file format: reading, writing, round trips and errors that name the field."""

from __future__ import annotations

import json

import pytest
from conftest import DATA

from p2pview.model import BDF, AcsPresence, PcieType
from p2pview.sources import SourceError, bundled_topologies, load_source, parse_topology_text
from p2pview.sources.topowrite import to_json, to_mapping, to_toml

SMALL = """
# two NVMe under one switch
name = "small"
description = "Two NVMe behind a switch"

[platform]
cpu_vendor = "AuthenticAMD"
cpu_family = 25
kernel = "6.12"
cmdline = "pci=disable_acs_redir=0000:02:00.0"

[[host_bridge]]
root = "0000:00"
mem_offset = 0x3f80000000

[[device]]
bdf = "0000:00:00.0"
id = "1022:1480"
class = 0x060000

[[device]]
bdf = "0000:00:01.1"
id = "1022:1483"
pcie_type = "root_port"
acs = { cap = 0x5f, ctrl = 0x1d, fw_ctrl = 0 }

[[device]]
bdf = "0000:01:00.0"
id = "10b5:8747"
parent = "0000:00:01.1"
pcie_type = "upstream_port"

[[device]]
bdf = "0000:02:00.0"
id = "10b5:8747"
parent = "0000:01:00.0"
pcie_type = "downstream_port"
acs = "unknown"

[[device]]
bdf = "0000:03:00.0"
id = "144d:a808"
class = 0x010802
parent = "0000:02:00.0"
driver = "nvme"
link = { speed = "8.0 GT/s PCIe", width = 4 }
bars = [ { index = 0, start = 0xfb000000, size = "16K", is_64bit = true } ]
p2pmem = { size = "2M", published = true, bar = 4 }
"""


def test_reads_every_kind_of_field():
    topo = parse_topology_text(SMALL, "small.toml")
    assert topo.name == "small"
    assert topo.platform.cpu_family == 25
    rp = topo[BDF.parse("00:01.1")]
    assert rp.header_type == 1 and rp.pcie_type is PcieType.ROOT_PORT  # bridge from pcie_type
    assert (rp.acs.cap, rp.acs.ctrl, rp.acs.fw_ctrl) == (0x5F, 0x1D, 0)
    assert topo[BDF.parse("02:00.0")].acs.presence is AcsPresence.UNKNOWN
    nvme = topo[BDF.parse("03:00.0")]
    assert nvme.p2pmem.size == 2 << 20 and nvme.p2pmem.available == 2 << 20
    assert nvme.bars[0].size == 16384 and nvme.link.width == 4
    assert topo.host_bridges[0].mem_offset == 0x3F80000000


def test_toml_and_json_round_trip():
    topo = parse_topology_text(SMALL, "small.toml")
    again = parse_topology_text(to_toml(topo, "header line"), "again.toml")
    assert to_mapping(again) == to_mapping(topo)
    from_json = parse_topology_text(to_json(topo), "again.json")
    assert to_mapping(from_json) == to_mapping(topo)


@pytest.mark.parametrize(
    "capture",
    [
        "qemu-guest-captures/switch-qemu64.tar.gz",
        "qemu-guest-captures/mf3-qemu64-acs-rp.tar.gz",
        "hwloc/32intel64-2p8co2t+8ve.tar.bz2",
        "hwloc/2pa-pcidomain32bits.tar.bz2",
    ],
)
def test_captures_convert_losslessly(capture):
    topo = load_source(str(DATA / capture)).topology
    again = parse_topology_text(to_toml(topo), "converted.toml")
    assert to_mapping(again) == to_mapping(topo)


def test_bundled_topologies_round_trip():
    for item in bundled_topologies():
        topo = load_source(item.name).topology
        assert to_mapping(parse_topology_text(to_toml(topo), "x.toml")) == to_mapping(topo), (
            item.name
        )


def _device(bdf: str, parent: str | None = None, extra: str = "") -> str:
    text = f'[[device]]\nbdf = "{bdf}"\nid = "8086:1234"\n'
    if parent:
        text += f'parent = "{parent}"\n'
    return text + extra


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (
            _device("00:01.0", "00:02.0") + _device("00:02.0", "00:01.0"),
            "bad.toml: line 1: device 0000:00:01.0: parent links form a cycle",
        ),
        (
            _device("00:01.0") + _device("00:01.0"),
            "bad.toml: line 4: device 0000:00:01.0: duplicate address",
        ),
        (
            _device("01:00.0", "00:09.0"),
            "bad.toml: line 1: device 0000:01:00.0: parent 0000:00:09.0 does not exist",
        ),
        (
            _device("00:01.0", extra="acs = { cap = 0x5f }\n"),
            "bad.toml: line 1: device[0] (00:01.0).acs: an ACS table needs both cap and ctrl",
        ),
        (
            _device("00:01.0", extra='colour = "red"\n'),
            "bad.toml: line 1: device[0] (00:01.0).colour: unknown key",
        ),
        (
            '[[device]]\nbdf = "00:20.0"\nid = "8086:1234"\n',
            "bad.toml: line 1: device[0] (00:20.0).bdf: PCI device 0x20 out of range (0-1f)",
        ),
        (
            '[[device]]\nbdf = "00:01.0"\nid = "zz"\n',
            "bad.toml: line 1: device[0] (00:01.0).id: expected 'vvvv:dddd'",
        ),
        (
            "[platform]\ncpu_family = true\n" + _device("00:01.0"),
            "bad.toml: line 1: platform.cpu_family: expected a number, got a boolean",
        ),
        ("name = [\n", "bad.toml: line 2: invalid TOML"),
        ('name = "x"\n', "bad.toml: device: at least one [[device]] table is needed"),
        (
            _device("00:01.0") + _device("01:00.0", "00:01.0") + _device("02:00.0", "01:00.0"),
            "bad.toml: line 9: device 0000:02:00.0: parent 0000:01:00.0 is not a bridge",
        ),
    ],
)
def test_errors_name_the_file_and_field(body, message):
    if "is not a bridge" in message:
        body = body.replace(
            '[[device]]\nbdf = "01:00.0"', '[[device]]\nheader_type = "normal"\nbdf = "01:00.0"'
        )
    with pytest.raises(SourceError) as err:
        parse_topology_text(body, "bad.toml")
    assert str(err.value).startswith(message), str(err.value)


def test_json_errors_carry_a_line():
    with pytest.raises(SourceError, match=r"bad.json: line 2: invalid JSON"):
        parse_topology_text('{\n "name": }', "bad.json")


def test_vf_must_share_its_pf_parent():
    body = (
        _device("00:01.0", extra='header_type = "bridge"\n')
        + _device("00:02.0", extra='header_type = "bridge"\n')
        + _device("01:00.0", "00:01.0")
        + _device("01:00.1", "00:02.0", 'physfn = "01:00.0"\n')
    )
    with pytest.raises(SourceError, match="differs from its physfn's parent"):
        parse_topology_text(body, "vf.toml")


def test_json_document_has_the_toml_schema():
    topo = parse_topology_text(SMALL, "small.toml")
    doc = json.loads(to_json(topo))
    assert set(doc) == {"format", "name", "description", "platform", "host_bridge", "device"}


def test_convert_writes_the_tree_as_graphml_and_gexf(tmp_path) -> None:
    import networkx as nx

    from p2pview.cli import main
    from p2pview.session import open_session

    topo = open_session("switch-acs-iommu").topology
    graphml, gexf = tmp_path / "t.graphml", tmp_path / "t.gexf"
    assert main(["convert", "switch-acs-iommu", "-o", str(graphml)]) == 0
    assert main(["convert", "switch-acs-iommu", "-o", str(gexf)]) == 0
    for graph in (nx.read_graphml(graphml), nx.read_gexf(gexf)):
        assert graph.number_of_nodes() == len(topo) + len(topo.host_bridges)
        assert graph.number_of_edges() == len(topo)
        nvme = graph.nodes["0000:1a:00.0"]
        assert nvme["kind"] == "nvme" and int(nvme["p2pmem_size"]) == 256 << 20
        assert graph.has_edge("0000:19:00.0", "0000:1a:00.0")
        port = graph.nodes["0000:19:00.0"]
        assert port["pcie_type"] == "downstream_port" and port["acs_ctrl"] == "0x001d"
