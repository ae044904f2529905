"""Names from pci.ids: the lazy parser, the file search, the bundled subset."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from p2pview.model import BDF, PciDevice
from p2pview.sources import load_source, pciids
from p2pview.sources.pciids import PciNames, make_subset, shorten_vendor

ROOT = Path(__file__).resolve().parents[1]

TINY = """\
#
#	List of PCI ID's (a tiny test file)
#
# Syntax:
# vendor  vendor_name
#	device  device_name				<-- single tab
#		subvendor subdevice  subsystem_name	<-- two tabs

10de  NVIDIA Corporation
	20b5  GA100 [A100 PCIe 80GB]
		10de 1533  A100 PCIe 80GB
	2330  GH100 [H100 SXM5 80GB]
1de5  Eideticom, Inc
# a comment inside a vendor block
	1000  IO Memory Controller
8086  Intel Corporation
	09a2  Ice Lake Memory Map/VT-d
	347a  Ice Lake-SP PCI Express Root Port A
ffff  Illegal Vendor ID

# List of known device classes, subclasses and programming interfaces

C 01  Mass storage controller
	08  Non-Volatile memory controller
		01  NVMHCI
		02  NVM Express
C 06  Bridge
	00  Host bridge
	04  PCI bridge
		00  Normal decode
C 08  Generic system peripheral
	80  System peripheral
"""


def dev(vendor: int, device: int, class_code: int = 0, **kw: object) -> PciDevice:
    return PciDevice(BDF(0, 1, 0, 0), vendor, device, class_code, **kw)  # type: ignore[arg-type]


@pytest.fixture
def tiny() -> PciNames:
    return PciNames.from_text(TINY, "tiny")


@pytest.fixture
def tiny_file(tmp_path: Path) -> Path:
    path = tmp_path / "pci.ids"
    path.write_text(TINY, encoding="utf-8")
    return path


@pytest.fixture(autouse=True)
def fresh_cache():
    pciids.clear_cache()
    yield
    pciids.clear_cache()


# -- lookups ------------------------------------------------------------------------


def test_vendor_device_subsystem(tiny: PciNames):
    assert tiny.vendor(0x10DE) == "NVIDIA Corporation"
    assert tiny.device(0x10DE, 0x20B5) == "GA100 [A100 PCIe 80GB]"
    assert tiny.device(0x10DE, 0x2330) == "GH100 [H100 SXM5 80GB]"
    assert tiny.subsystem(0x10DE, 0x20B5, 0x10DE, 0x1533) == "A100 PCIe 80GB"
    assert tiny.subsystem(0x10DE, 0x20B5, 0x10DE, 0x9999) is None
    # the comment inside a block is skipped, the next device still found
    assert tiny.device(0x1DE5, 0x1000) == "IO Memory Controller"
    # the last vendor before the class section ends at the class section
    assert tiny.vendor(0xFFFF) == "Illegal Vendor ID"
    assert tiny.device(0xFFFF, 0x0001) is None


def test_unknown_ids(tiny: PciNames):
    assert tiny.vendor(0x1234) is None
    assert tiny.device(0x1234, 0x5678) is None
    assert tiny.device(0x8086, 0xFFFF) is None
    assert tiny.subsystem(0x1234, 0x5678, 1, 2) is None


def test_classes(tiny: PciNames):
    assert tiny.class_name(0x010802) == "Non-Volatile memory controller"
    assert tiny.class_names(0x010802) == (
        "Mass storage controller",
        "Non-Volatile memory controller",
        "NVM Express",
    )
    assert tiny.class_name(0x060400) == "PCI bridge"
    assert tiny.class_names(0x060400)[2] == "Normal decode"
    assert tiny.class_name(0x088000) == "System peripheral"
    # an unknown subclass falls back to the base class; an unknown class is None
    assert tiny.class_name(0x0177FF) == "Mass storage controller"
    assert tiny.class_name(0xFF0000) is None
    # class lines are not read as vendors (C 01 is no vendor 0x0c01 or so)
    assert tiny.vendor(0x0001) is None


def test_describe_and_short(tiny: PciNames):
    gpu = dev(0x10DE, 0x20B5, 0x030200)
    assert tiny.describe(gpu) == "NVIDIA Corporation GA100 [A100 PCIe 80GB]"
    assert tiny.short(gpu) == "NVIDIA GA100 [A100 PCIe 80GB]"
    unknown_device = dev(0x8086, 0xBEEF)
    assert tiny.describe(unknown_device) == "Intel Corporation Device beef"
    assert tiny.short(unknown_device) == "Intel"
    unknown_vendor = dev(0x1234, 0x5678)
    assert tiny.describe(unknown_vendor) == "Device 1234:5678"
    assert tiny.short(unknown_vendor) is None


def test_subsystem_text(tiny: PciNames):
    named = dev(0x10DE, 0x20B5, subsystem_vendor=0x10DE, subsystem_device=0x1533)
    assert tiny.subsystem_text(named) == "A100 PCIe 80GB"
    by_vendor = dev(0x10DE, 0x20B5, subsystem_vendor=0x8086, subsystem_device=0x0001)
    assert tiny.subsystem_text(by_vendor) == "Intel Corporation Device 0001"
    assert tiny.subsystem_text(dev(0x10DE, 0x20B5)) is None


@pytest.mark.parametrize(
    ("name", "short"),
    [
        ("Intel Corporation", "Intel"),
        ("Advanced Micro Devices, Inc. [AMD/ATI]", "AMD/ATI"),
        ("Advanced Micro Devices, Inc. [AMD]", "AMD"),
        ("Samsung Electronics Co Ltd", "Samsung"),
        ("Mellanox Technologies", "Mellanox"),
        ("Broadcom Inc. and subsidiaries", "Broadcom"),
        ("Broadcom / LSI", "Broadcom / LSI"),
        ("Huawei Technologies Co., Ltd.", "Huawei"),
        ("Eideticom, Inc", "Eideticom"),
        ("Micron Technology Inc", "Micron"),
        ("NVIDIA Corporation", "NVIDIA"),
        ("Corporation", "Corporation"),
    ],
)
def test_shorten_vendor(name: str, short: str):
    assert shorten_vendor(name) == short


def test_lookups_are_lazy(tiny: PciNames):
    assert tiny._vendors is None and tiny._classes is None
    tiny.vendor(0x8086)
    assert tiny._vendors is not None
    assert tiny._devices == {}
    tiny.device(0x8086, 0x09A2)
    assert set(tiny._devices) == {0x8086}


def test_not_utf8_is_replaced(tmp_path: Path):
    path = tmp_path / "pci.ids"
    path.write_bytes(b"abcd  Caf\xe9 GmbH\n\t0001  Thing\n")
    names = PciNames.from_path(path)
    assert names.vendor(0xABCD) == "Caf\ufffd GmbH"
    assert names.device(0xABCD, 0x0001) == "Thing"


def test_empty():
    names = PciNames.empty()
    assert names.vendor(0x8086) is None
    assert names.class_name(0x010802) is None


# -- which file ---------------------------------------------------------------------


def test_env_path_wins(monkeypatch: pytest.MonkeyPatch, tiny_file: Path):
    monkeypatch.setenv(pciids.ENV_VAR, str(tiny_file))
    names = PciNames.load()
    assert names.origin == str(tiny_file)
    assert names.vendor(0xFFFF) == "Illegal Vendor ID"
    assert PciNames.load() is names  # cached


def test_env_bundled(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv(pciids.ENV_VAR, "bundled")
    names = PciNames.load()
    assert names.origin == pciids.BUNDLED_ORIGIN
    assert names.vendor(0x10DE) == "NVIDIA Corporation"


def test_system_paths_then_bundled(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, tiny_file):
    monkeypatch.delenv(pciids.ENV_VAR, raising=False)
    monkeypatch.setattr(pciids, "SYSTEM_PATHS", (tmp_path / "missing", tiny_file))
    assert pciids.find_pci_ids() == tiny_file
    monkeypatch.setattr(pciids, "SYSTEM_PATHS", (tmp_path / "missing",))
    assert pciids.find_pci_ids() == pciids.bundled_path()
    assert PciNames.load().origin == pciids.BUNDLED_ORIGIN


def test_unreadable_file_falls_back_to_bundled(monkeypatch: pytest.MonkeyPatch, tmp_path: Path):
    monkeypatch.setenv(pciids.ENV_VAR, str(tmp_path / "nope.ids"))
    names = PciNames.load()
    assert names.origin == pciids.BUNDLED_ORIGIN
    assert names.vendor(0x8086) == "Intel Corporation"


def test_explicit_path(tiny_file: Path):
    assert PciNames.load(tiny_file).vendor(0x1DE5) == "Eideticom, Inc"


@pytest.mark.skipif(
    not any(p.is_file() for p in pciids.SYSTEM_PATHS), reason="no system pci.ids on this host"
)
def test_system_file(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.delenv(pciids.ENV_VAR, raising=False)
    names = PciNames.load()
    assert names.vendor(0x8086) == "Intel Corporation"
    assert names.device(0x15B3, 0x101D) is not None
    assert names.class_name(0x020000) == "Ethernet controller"
    assert names.origin in {str(p) for p in pciids.SYSTEM_PATHS}


def test_never_reads_the_network():
    source = (ROOT / "p2pview" / "sources" / "pciids.py").read_text()
    for word in ("urllib", "http", "socket", "requests"):
        assert f"import {word}" not in source


# -- the bundled subset -------------------------------------------------------------


def test_bundled_subset_header_and_licence():
    path = pciids.bundled_path()
    assert path is not None
    head = path.read_text(encoding="utf-8")[:3000]
    assert "subset of pci.ids" in head
    assert "GNU General Public License" in head and "3-clause BSD" in head
    assert "python -m p2pview.sources.pciids" in head


def test_bundled_subset_names_every_bundled_topology_function(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv(pciids.ENV_VAR, "bundled")
    names = PciNames.load()
    for path in sorted((ROOT / "topologies").glob("*.toml")):
        for device in load_source(str(path)).topology.devices:
            assert names.vendor(device.vendor) is not None, (path.name, device.ids)
    # and the common vendors without a bundled device
    for vendor in (0x1002, 0x144D, 0x1E0F, 0x10B5, 0x11F8, 0x14E4):
        assert names.vendor(vendor) is not None, hex(vendor)
    assert names.class_name(0x030200) == "3D controller"


def test_make_subset(tiny: PciNames):
    text = make_subset(
        TINY,
        devices={(0x10DE, 0x20B5)},
        subsystems={(0x10DE, 0x1533)},
        vendors={0x8086},
        header="# test header",
    )
    subset = PciNames.from_text(text)
    assert text.startswith("# test header\n")
    assert subset.device(0x10DE, 0x20B5) == "GA100 [A100 PCIe 80GB]"
    assert subset.subsystem(0x10DE, 0x20B5, 0x10DE, 0x1533) == "A100 PCIe 80GB"
    assert subset.device(0x10DE, 0x2330) is None  # not asked for
    assert subset.vendor(0x8086) == "Intel Corporation"  # a kept vendor name
    assert subset.device(0x8086, 0x09A2) is None  # ... without its devices
    assert subset.vendor(0x1DE5) is None
    assert subset.class_name(0x010802) == "Non-Volatile memory controller"


def test_make_subset_command(tiny_file: Path, tmp_path: Path):
    topo = tmp_path / "t.toml"
    topo.write_text(
        'format = "p2pview-topology/1"\nname = "t"\n\n'
        '[[device]]\nbdf = "0000:00:00.0"\nid = "8086:09a2"\nclass = 0x088000\n',
        encoding="utf-8",
    )
    proc = subprocess.run(
        [sys.executable, "-m", "p2pview.sources.pciids", str(tiny_file), str(topo)],
        capture_output=True,
        text=True,
        check=True,
    )
    subset = PciNames.from_text(proc.stdout)
    assert subset.device(0x8086, 0x09A2) == "Ice Lake Memory Map/VT-d"
    assert subset.device(0x8086, 0x347A) is None
    assert "List of PCI ID's (a tiny test file)" in proc.stdout  # the source's header kept
