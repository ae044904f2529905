"""``p2pview capture`` and reading captures back: the host as it was."""

from __future__ import annotations

import json
import os
import tarfile

from p2pview.cli import main
from p2pview.model import BDF, AcsPresence, PcieType
from p2pview.sources import load_source, to_mapping
from p2pview.sources.capture import write_capture
from p2pview.sources.synthetic import generate, write_sysfs_tree
from p2pview.sources.sysfs import DEVICE_FILES, DEVICE_LINKS, PROC_FILES


def _tree(tmp_path, size=120, privileged=True):
    topo = generate(size, seed=3)
    root = tmp_path / "host"
    write_sysfs_tree(topo, root, privileged=privileged)
    return topo, root


def test_capture_reads_back_as_the_host(tmp_path, capsys):
    _topo, root = _tree(tmp_path)
    out = tmp_path / "cap.tar.gz"
    assert main(["capture", "--root", str(root), "-o", str(out)]) == 0
    assert f"Wrote {out}: 120 PCI functions" in capsys.readouterr().out
    direct = load_source(str(root)).topology
    captured = load_source(str(out)).topology
    assert to_mapping(captured)["device"] == to_mapping(direct)["device"]
    assert captured.platform == direct.platform
    assert "p2pview capture of" in captured.description and "as root" in captured.description


def test_capture_holds_only_what_the_reader_reads(tmp_path):
    _topo, root = _tree(tmp_path, size=30)
    (root / "sys/devices/pci0000:00/0000:00:00.0/remove").write_text("")
    (root / "sys/devices/pci0000:00/0000:00:00.0/p2pmem").mkdir()
    (root / "sys/devices/pci0000:00/0000:00:00.0/p2pmem/allocate").write_text("")
    out = tmp_path / "cap.tar.gz"
    manifest = write_capture(out, root)
    allowed = set(DEVICE_FILES) | set(DEVICE_LINKS)
    with tarfile.open(out) as tar:
        names = [m.name for m in tar if not m.isdir()]
    for name in names:
        if name.startswith("sys/devices/"):
            leaf = name.split("/", 3)[3]
            parts = leaf.split("/")
            tail = "/".join(parts[-2:]) if parts[-2] == "p2pmem" else parts[-1]
            assert tail in allowed, name
        elif name.startswith("sys/bus/pci/devices/"):
            continue
        else:
            assert name in (*PROC_FILES, "p2pview-capture.json"), name
    assert not any(n.endswith(("allocate", "remove")) for n in names)
    assert manifest.functions == 30 and manifest.p2pview_version


def test_manifest_fields(tmp_path):
    _topo, root = _tree(tmp_path, size=10)
    out = tmp_path / "cap.tar.gz"
    write_capture(out, root)
    with tarfile.open(out) as tar:
        member = tar.extractfile("p2pview-capture.json")
        assert member is not None
        data = json.load(member)
    assert set(data) == {
        "format",
        "hostname",
        "kernel",
        "date",
        "p2pview_version",
        "root",
        "functions",
    }
    assert data["format"] == "p2pview-capture/1" and data["hostname"] == "generated-10"
    assert data["root"] == (os.geteuid() == 0)


def test_unprivileged_tree_gives_unknown_acs_and_one_note(tmp_path, capsys):
    _topo, root = _tree(tmp_path, size=60, privileged=False)
    loaded = load_source(str(root))
    ports = [d for d in loaded.topology.devices if d.pcie_type is PcieType.ROOT_PORT]
    assert ports and all(d.pcie_type_inferred for d in ports)
    assert all(d.acs.presence is AcsPresence.UNKNOWN for d in ports)
    assert main(["matrix", str(root), "--providers", "nvme", "--clients", "nvme"]) == 0
    out = capsys.readouterr().out
    assert out.count("Run as root, or load a capture made as root") == 1


def test_vmd_domain_below_an_endpoint(tmp_path):
    """A VMD controller's domain sits under the VMD endpoint's directory as pci10000:00."""
    topo = generate(8, seed=1)
    root = tmp_path / "vmd"
    write_sysfs_tree(topo, root)
    vmd = root / "sys/devices/pci0000:00/0000:00:00.0"
    port = vmd / "pci10000:00" / "10000:00:02.0"
    ssd = port / "10000:01:00.0"
    ssd.mkdir(parents=True)
    for path, cls in ((port, "0x060400"), (ssd, "0x010802")):
        (path / "vendor").write_text("0x8086\n")
        (path / "device").write_text("0x2030\n")
        (path / "class").write_text(cls + "\n")
        os.symlink(
            os.path.relpath(path, root / "sys/bus/pci/devices"),
            root / "sys/bus/pci/devices" / path.name,
        )
    loaded = load_source(str(root))
    topo = loaded.topology
    ssd_bdf, port_bdf = BDF.parse("10000:01:00.0"), BDF.parse("10000:00:02.0")
    assert topo.upstream_chain(ssd_bdf) == (ssd_bdf, port_bdf)
    assert topo[port_bdf].parent is None  # the VMD domain's root bus: the chain stops there
    assert str(topo.root_bus_of(ssd_bdf)) == "pci10000:00"
    assert topo[ssd_bdf].acs.presence is AcsPresence.UNKNOWN
    assert any("config" in n for n in topo[ssd_bdf].notes)
