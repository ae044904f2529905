"""Reading gathered sysfs trees: full config space, 64-byte reads, odd and broken trees."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from conftest import DATA

from p2pview.model import BDF, AcsPresence, PcieType
from p2pview.sources import load_source
from p2pview.sources.configspace import decode

B = BDF.parse


def test_full_config_space_from_a_real_kernel():
    topo = load_source(str(DATA / "qemu-guest-captures/switch-qemu64.tar.gz")).topology
    rp = topo[B("00:02.0")]
    assert rp.pcie_type is PcieType.ROOT_PORT and not rp.pcie_type_inferred
    assert (rp.acs.presence, rp.acs.cap, rp.acs.ctrl) == (AcsPresence.PRESENT, 0x005F, 0)
    assert topo[B("01:00.0")].pcie_type is PcieType.UPSTREAM
    assert topo[B("02:01.0")].acs.presence is AcsPresence.ABSENT  # xio3130 DSPs have none
    nvme = topo[B("03:00.0")]
    assert nvme.driver == "nvme" and nvme.p2pmem is not None
    assert (nvme.p2pmem.size, nvme.p2pmem.published) == (67108864, True)
    assert topo.upstream_chain(B("03:00.0")) == (
        B("03:00.0"),
        B("02:00.0"),
        B("01:00.0"),
        B("00:02.0"),
    )
    assert topo.platform.kernel == "6.12.117"
    assert (topo.platform.cpu_vendor, topo.platform.cpu_family) == ("AuthenticAMD", 15)


def test_acs_control_as_the_guest_set_it():
    topo = load_source(str(DATA / "qemu-guest-captures/mf3-qemu64-acs-rp.tar.gz")).topology
    assert topo[B("00:02.0")].acs.ctrl == 0x000C
    assert topo[B("00:03.0")].acs.ctrl == 0


def test_second_host_bridge():
    topo = load_source(str(DATA / "qemu-guest-captures/pxb2-qemu64.tar.gz")).topology
    assert [str(hb.root) for hb in topo.host_bridges] == ["pci0000:00", "pci0000:40"]
    assert topo.root_bus_of(B("41:00.0")).bus == 0x40


def test_64_byte_config_leaves_acs_unknown_and_infers_port_types():
    loaded = load_source(str(DATA / "hwloc/32intel64-2p8co2t+8ve.tar.bz2"))
    topo = loaded.topology
    assert all(
        d.acs.presence is AcsPresence.UNKNOWN for d in topo.devices if d.pcie_type is not None
    )
    ports = [d for d in topo.devices if d.pcie_type is PcieType.ROOT_PORT]
    assert ports and all(d.pcie_type_inferred for d in ports)
    # 5f:03.0 has no sys/bus/pci/devices entry, but it is on 60:00.0's chain
    assert topo.upstream_chain(B("60:00.0"))[1] == B("5f:03.0")
    assert loaded.report.unreadable_config


def test_32_bit_pci_domain():
    topo = load_source(str(DATA / "hwloc/2pa-pcidomain32bits.tar.bz2")).topology
    vmd = B("10000:00:04.0")
    assert vmd in topo and str(vmd) == "10000:00:04.0"
    assert str(topo.root_bus_of(vmd)) == "pci10000:00"


def _fake_device(root: Path, rel: str, *, cfg: bytes | None, files: dict[str, str]) -> Path:
    path = root / "sys/devices" / rel
    path.mkdir(parents=True)
    if cfg is not None:
        (path / "config").write_bytes(cfg)
    for name, value in files.items():
        target = path / name
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(value)
    link = root / "sys/bus/pci/devices" / path.name
    link.parent.mkdir(parents=True, exist_ok=True)
    os.symlink(os.path.relpath(path, link.parent), link)
    return path


def _header(vendor: int, device: int, cls: int, header: int = 0) -> bytes:
    cfg = bytearray(64)
    cfg[0:2] = vendor.to_bytes(2, "little")
    cfg[2:4] = device.to_bytes(2, "little")
    cfg[9:12] = cls.to_bytes(3, "little")
    cfg[0x0E] = header
    return bytes(cfg)


def test_odd_tree_never_raises(tmp_path):
    root = tmp_path
    (root / "proc").mkdir()
    (root / "proc/cpuinfo").write_text("vendor_id\t: GenuineIntel\ncpu family\t: 6\n\n")
    _fake_device(
        root,
        "pci0000:00/0000:00:01.0",
        cfg=_header(0x8086, 0x2030, 0x060400, 1),
        files={"vendor": "0x8086\n", "device": "0x2030\n", "class": "0x060400\n"},
    )
    _fake_device(
        root,
        "pci0000:00/0000:00:01.0/0000:01:00.0",
        cfg=b"\x01\x02",
        files={
            "vendor": "garbage\n",
            "numa_node": "-1\n",
            "p2pmem/size": "4096\n",
            "p2pmem/published": "1\n",
            "p2pmem/allocate": "",
        },
    )
    _fake_device(root, "pci0000:00/0000:00:02.0", cfg=None, files={})
    # a listed device whose directory vanished
    os.symlink(
        "../../../devices/pci0000:00/0000:00:09.0", root / "sys/bus/pci/devices/0000:00:09.0"
    )
    loaded = load_source(str(root))
    topo = loaded.topology
    assert set(topo.bdfs) == {B("00:01.0"), B("01:00.0"), B("00:02.0")}
    odd = topo[B("01:00.0")]
    assert odd.parent == B("00:01.0") and odd.acs.presence is AcsPresence.UNKNOWN
    assert any("vendor" in n for n in odd.notes)
    assert odd.p2pmem is not None and odd.p2pmem.size == 4096 and odd.numa_node is None
    assert "0000:00:09.0" in loaded.report.vanished


def test_decode_walks_extended_capabilities():
    cfg = bytearray(4096)
    cfg[0:4] = bytes([0x86, 0x80, 0x30, 0x20])
    cfg[0x06] = 0x10  # capability list
    cfg[0x0E] = 0x01
    cfg[0x34] = 0x40
    cfg[0x40:0x44] = bytes([0x10, 0x00, 0x42, 0x00])  # PCIe cap, type 4 (root port)
    cfg[0x100:0x104] = (0x0001 | (1 << 16) | (0x140 << 20)).to_bytes(4, "little")  # AER -> 0x140
    cfg[0x140:0x144] = (0x000D | (1 << 16)).to_bytes(4, "little")  # ACS, end of list
    cfg[0x144:0x146] = (0x005F).to_bytes(2, "little")
    cfg[0x146:0x148] = (0x001D).to_bytes(2, "little")
    info = decode(bytes(cfg))
    assert info.pcie_type is PcieType.ROOT_PORT
    assert (info.acs.cap, info.acs.ctrl) == (0x5F, 0x1D)
    assert decode(bytes(cfg[:64])).acs.presence is AcsPresence.UNKNOWN
    assert decode(bytes(cfg[:256])).acs.presence is AcsPresence.ABSENT


def test_capability_loop_is_bounded():
    cfg = bytearray(4096)
    cfg[0x06] = 0x10
    cfg[0x34] = 0x40
    cfg[0x40:0x42] = bytes([0x01, 0x40])  # points at itself
    cfg[0x100:0x104] = (0x0001 | (0x100 << 20)).to_bytes(4, "little")  # ext cap loops too
    info = decode(bytes(cfg))
    assert info.pcie_type is None


AUDIT = textwrap.dedent(
    """
    import sys
    from p2pview.sources import load_source
    bad = []
    def hook(event, args):
        if event == "open":
            path, mode, flags = args
            text = str(path)
            if text.endswith("p2pmem/allocate"):
                bad.append(("allocate", text))
            writing = (isinstance(mode, str) and any(c in mode for c in "wax+")) or (
                isinstance(flags, int) and flags & 3)
            if writing and text.startswith(ROOT):
                bad.append(("write", text))
    sys.addaudithook(hook)
    load_source(ROOT)
    print(bad)
    sys.exit(1 if bad else 0)
    """
)


@pytest.mark.parametrize("where", ["capture", "live"])
def test_reader_never_writes_nor_opens_allocate(tmp_path, where):
    if where == "live":
        if not Path("/sys/bus/pci/devices").is_dir():
            pytest.skip("this host has no /sys/bus/pci")
        root = "/"
    else:
        root = str(tmp_path)
        (tmp_path / "proc").mkdir()
        _fake_device(
            tmp_path,
            "pci0000:00/0000:00:01.0",
            cfg=_header(0x8086, 0x1234, 0x010802),
            files={
                "p2pmem/size": "4096\n",
                "p2pmem/available": "4096\n",
                "p2pmem/published": "1\n",
                "p2pmem/allocate": "",
                "remove": "",
                "reset": "",
            },
        )
    code = AUDIT.replace("ROOT", repr(root))
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr
