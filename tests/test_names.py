"""IDs and class from names: dumps without -nn, checked against the config space they came from.

The pciutils dumps (tests/data/pciutils) and the reconstructions in
tests/data/names are config-space dumps; lspci printed their ``-tv`` and
``-vvv`` text, so the IDs and classes a reader infers from the names can be
held against the numbers it should have found.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from builders import B

from p2pview.model import BDF, Kind, PciDevice, kind_of
from p2pview.sources import load_source
from p2pview.sources.hwloc import parse_lstopo_console
from p2pview.sources.lspci import parse_lspci_hex, parse_lspci_tree, parse_lspci_verbose
from p2pview.sources.names import (
    UNKNOWN_ID,
    class_from_name,
    ids_from_name,
    ids_text,
    known_ids,
    with_names,
)
from p2pview.sources.pciids import SYSTEM_PATHS, PciNames, bundled_path, make_subset

DATA = Path(__file__).parent / "data"
PCIUTILS = DATA / "pciutils"
GOLDEN = PCIUTILS / "golden"
NAMES = DATA / "names"
DUMPS = sorted(p.stem for p in GOLDEN.iterdir())

TINY = """\
1000  Broadcom / LSI
	0072  SAS2008 PCI-Express Fusion-MPT SAS-2 [Falcon]
1166  Broadcom
10de  NVIDIA Corporation
	0be2  High Definition Audio Controller
	0be3  High Definition Audio Controller
	20b5  GA100 [A100 PCIe 80GB]
1022  Advanced Micro Devices, Inc. [AMD]
	1480  Starship/Matisse Root Complex
8086  Intel Corporation
	2f00  Xeon E7 v3/Xeon E5 v3/Core i7 DMI2
	3405  5520/5500/X58 I/O Hub to ESI Port
	3406  5520/5500/X58 I/O Hub to ESI Port
9999  Twice
9998  Twice
"""
SOURCE = "lspci -tv without -nn prints names only"


@pytest.fixture
def tiny() -> PciNames:
    return PciNames.from_text(TINY, "tiny")


# -- IDs from names -------------------------------------------------------------------


def test_a_unique_name_gives_both_ids_as_inferred(tiny: PciNames) -> None:
    found = ids_from_name(
        "Intel Corporation Xeon E7 v3/Xeon E5 v3/Core i7 DMI2", SOURCE, names=tiny
    )
    assert (found.vendor, found.device) == (0x8086, 0x2F00)
    assert found.fact.is_inferred
    assert found.fact.how == (
        "the names 'Intel Corporation' / 'Xeon E7 v3/Xeon E5 v3/Core i7 DMI2' through pci.ids"
    )


def test_a_vendor_name_that_prefixes_another_splits_where_a_device_matches(
    tiny: PciNames,
) -> None:
    # "Broadcom" (1166) and "Broadcom / LSI" (1000) both start the text
    found = ids_from_name(
        "Broadcom / LSI SAS2008 PCI-Express Fusion-MPT SAS-2 [Falcon]", SOURCE, names=tiny
    )
    assert (found.vendor, found.device) == (0x1000, 0x0072)
    # with no device matching, two vendors could be meant: nothing is taken
    unknown = ids_from_name("Broadcom / LSI SAS9999 Unheard Of", SOURCE, names=tiny)
    assert (unknown.vendor, unknown.device) == (None, None) and unknown.fact.is_assumed


def test_a_repeated_device_name_keeps_the_vendor_only(tiny: PciNames) -> None:
    found = ids_from_name("NVIDIA Corporation High Definition Audio Controller", SOURCE, names=tiny)
    assert (found.vendor, found.device) == (0x10DE, None)
    assert found.fact.is_assumed
    assert "vendor 10de" in found.fact.how and "2 devices of that vendor" in found.fact.how
    twice = ids_from_name("Intel Corporation 5520/5500/X58 I/O Hub to ESI Port", SOURCE, names=tiny)
    assert (twice.vendor, twice.device) == (0x8086, None)


def test_a_device_name_newer_than_pci_ids_keeps_the_vendor_only(tiny: PciNames) -> None:
    # issue 12's dump: newer pci.ids name the card this way
    found = ids_from_name(
        "NVIDIA Corporation AD102GL [RTX 6000 Ada Generation]", SOURCE, names=tiny
    )
    assert (found.vendor, found.device) == (0x10DE, None)
    assert found.fact.is_assumed and "device ID unknown" in found.fact.how


def test_lspci_device_number_forms(tiny: PciNames) -> None:
    # lspci prints "VENDOR Device dddd" for a device its pci.ids does not list
    amd = ids_from_name("Advanced Micro Devices, Inc. [AMD] Device 14a4", SOURCE, names=tiny)
    assert (amd.vendor, amd.device) == (0x1022, 0x14A4) and amd.fact.is_inferred
    assert "device ID 14a4 as printed" in amd.fact.how
    twice = ids_from_name("Twice Device 0001", SOURCE, names=tiny)
    assert (twice.vendor, twice.device) == (None, 0x0001) and twice.fact.is_assumed
    numbers = ids_from_name("Device 1234:5678", SOURCE, names=tiny)
    assert (numbers.vendor, numbers.device) == (0x1234, 0x5678) and numbers.fact.is_read


def test_no_name_or_an_unknown_one_stays_unknown(tiny: PciNames) -> None:
    for text in (None, "", "   ", "Acme Widgets Frobnicator 3000", "x" * 400):
        found = ids_from_name(text, SOURCE, names=tiny)
        assert (found.vendor, found.device) == (None, None) and found.fact.is_assumed
        assert found.fact.how.startswith(SOURCE)


def test_names_given_apart(tiny: PciNames) -> None:
    found = ids_from_name(
        None, SOURCE, vendor_name="NVIDIA Corporation", device_name="GA100 [A100 PCIe 80GB]",
        names=tiny,
    )  # fmt: skip
    assert (found.vendor, found.device) == (0x10DE, 0x20B5)


# -- class from names -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "vendor", "kind"),
    [
        ("NVIDIA Corporation AD102GL [RTX 6000 Ada Generation]", 0x10DE, Kind.GPU),
        ("NVIDIA Corporation GH100[H100 SXM5 80GB]", 0x10DE, Kind.GPU),
        ("NVIDIA Corporation TU102GL [Quadro RTX 6000/8000]", 0x10DE, Kind.GPU),
        ("NVIDIA Corporation AD102 High Definition Audio Controller", 0x10DE, Kind.OTHER),
        ("NVIDIA Corporation TU102 USB 3.1 Host Controller", 0x10DE, Kind.OTHER),
        ("NVIDIA Corporation TU102 USB Type-C UCSI Controller", 0x10DE, Kind.OTHER),
        ("NVIDIA Corporation GH100 [H100 NVSwitch]", 0x10DE, Kind.OTHER),
        ("Samsung Electronics Co Ltd NVMe SSD Controller PM9A1/PM9A3/980PRO", None, Kind.NVME),
        ("Mellanox Technologies MT28908 Family [ConnectX-6]", None, Kind.NIC),
        ("Intel Corporation I350 Gigabit Network Connection", None, Kind.NIC),
        ("Advanced Micro Devices, Inc. [AMD/ATI] Navi 21 [Radeon RX 6800/6800 XT]", None, Kind.GPU),
        ("Intel Corporation Xeon E7 v3/Xeon E5 v3/Core i7 DMI2", None, Kind.HOST),
    ],
)
def test_class_words(name: str, vendor: int | None, kind: Kind) -> None:
    found = class_from_name(name, SOURCE, vendor=vendor)
    assert found.class_code is not None and found.fact.is_inferred
    dev = PciDevice(BDF(0, 1, 0, 0), vendor or 1, 1, found.class_code)
    assert kind_of(dev) is kind


def test_a_gpu_code_name_counts_under_nvidia_only() -> None:
    assert class_from_name("Acme GA100 Widget", SOURCE, vendor=0x1234).class_code is None
    gpu = class_from_name("NVIDIA Corporation GA100 [A100 PCIe 80GB]", SOURCE, vendor=0x10DE)
    assert gpu.class_code == 0x038000 and "code name 'GA100'" in gpu.fact.how


def test_unknown_class_is_assumed() -> None:
    found = class_from_name("Intel Corporation Xeon 5500/Core i7 QPI Link 0", SOURCE)
    assert found.class_code is None and found.fact.is_assumed
    bridge = class_from_name(None, SOURCE, bridge=True)
    assert bridge.class_code == 0x060400 and bridge.fact.is_inferred


def test_known_ids_and_their_text(tiny: PciNames) -> None:
    base = PciDevice(BDF(0, 1, 0, 0), UNKNOWN_ID, UNKNOWN_ID, label="Acme Frobnicator")
    unknown = with_names(base, SOURCE, ids_given=False, class_given=False, names=tiny)
    assert known_ids(unknown) == (None, None) and ids_text(unknown) == "IDs unknown"
    audio = with_names(
        base.replace(label="NVIDIA Corporation High Definition Audio Controller"),
        SOURCE, ids_given=False, class_given=False, names=tiny,
    )  # fmt: skip
    assert known_ids(audio) == (0x10DE, None) and ids_text(audio) == "10de:????"
    assert audio.base_class == 0x04
    read = PciDevice(BDF(0, 1, 0, 0), 0xFFFF, 0xFFFF)  # a value read as such is shown as such
    assert ids_text(read) == "ffff:ffff"
    names = PciNames.from_text(TINY + "ffff  Illegal Vendor ID\n", "tiny")
    assert names.describe(unknown) == "IDs unknown" and names.short(unknown) == "IDs unknown"
    assert names.describe(audio) == "NVIDIA Corporation, device ID unknown"


# -- the readers, against the config space the text was printed from ------------------


@pytest.mark.parametrize("dump", DUMPS)
@pytest.mark.parametrize("option", ["tv", "vvv"])
def test_names_agree_with_config_space(dump: str, option: str) -> None:
    truth = parse_lspci_hex((PCIUTILS / dump).read_text(), dump)
    parse = parse_lspci_tree if option == "tv" else parse_lspci_verbose
    topo = parse((GOLDEN / f"{dump}.{option}").read_text(), f"{dump}.{option}")
    for dev in topo.devices:
        real = truth[dev.bdf]
        ids, cls = dev.fact("ids"), dev.fact("class_code")
        assert not ids.is_read, dev.bdf  # no -nn: nothing was printed as numbers
        vendor, device = known_ids(dev)
        assert vendor in (None, real.vendor) and device in (None, real.device), dev.bdf
        assert ids.is_inferred == (vendor is not None and device is not None), dev.bdf
        if cls.is_inferred:
            assert kind_of(dev) is kind_of(real), (dev.bdf, dev.label, cls.how)
        if option == "vvv" and cls.is_read:
            assert dev.class_code == real.class_code, dev.bdf


def test_most_names_resolve_on_a_whole_machine() -> None:
    topo = parse_lspci_tree((GOLDEN / "tree-asus-p6t6.tv").read_text(), "tv")
    inferred = [d for d in topo.devices if d.fact("ids").is_inferred]
    assert len(inferred) == 38  # of 53; the 15 others are unnamed bridges or repeated names
    sas = topo[B("04:00.0")]
    assert sas.ids == "1000:0072" and kind_of(sas) is Kind.STORAGE
    hb = topo[B("00:00.0")]  # 3400-3406 share "5520/5500/X58 I/O Hub to ESI Port"
    assert known_ids(hb) == (0x8086, None) and kind_of(hb) is Kind.HOST
    assert ids_text(topo[B("00:01.0")]) == "IDs unknown"  # lspci -tv names no bridge


def test_the_whitelisted_host_bridge_of_a_plain_tree() -> None:
    # issue 12: 00:00.0 "Xeon E7 v3/Xeon E5 v3/Core i7 DMI2" is 8086:2f00, whitelisted
    topo = load_source(str(NAMES / "k80-3x-supermicro.reconstruction.tv")).topology
    truth = load_source(str(NAMES / "k80-3x-supermicro.reconstruction.hex")).topology
    hb = topo[B("00:00.0")]
    assert hb.ids == "8086:2f00" and hb.fact("ids").is_inferred
    assert "Xeon E7 v3/Xeon E5 v3/Core i7 DMI2" in hb.fact("ids").how
    root0 = topo[B("80:00.0")]  # a Root Port at 00.0: drawn as a bridge, without a name
    assert root0.fact("ids").is_assumed and ids_text(root0) == "IDs unknown"
    gpus = [d.bdf for d in topo.devices if kind_of(d) is Kind.GPU]
    assert gpus == [d.bdf for d in truth.devices if kind_of(d) is Kind.GPU] and len(gpus) == 6


def test_gpus_and_their_other_functions_in_a_plain_tree() -> None:
    topo = load_source(str(NAMES / "trpro-3gpu.reconstruction.tv")).topology
    ada, ada_audio = topo[B("21:00.0")], topo[B("21:00.1")]
    assert known_ids(ada) == (0x10DE, None) and kind_of(ada) is Kind.GPU
    assert "code name 'AD102GL'" in ada.fact("class_code").how
    assert ada_audio.base_class == 0x04
    card = [kind_of(topo[B(f"61:00.{fn}")]) for fn in range(4)]
    assert card == [Kind.GPU, Kind.OTHER, Kind.OTHER, Kind.OTHER]  # audio, USB, UCSI
    assert topo[B("61:00.3")].class_code == 0x0C8000
    assert topo[B("00:00.0")].ids == "1022:1480"


def test_lstopo_names_in_place_of_ids() -> None:
    text = (DATA / "hwloc" / "lstopo-console" / "16intel64-manyVFs.console").read_text()
    bare = re.sub(r" id=[0-9a-f]{4}:[0-9a-f]{4}| class=[0-9a-f]{4}\(\w+\)", "", text)
    named, numbered = parse_lstopo_console(bare, "bare"), parse_lstopo_console(text, "full")
    for dev in named.devices:
        real = numbered[dev.bdf]
        if real.vendor == 0x1138:
            # hwloc's file gives 0c:00.2-3 id=1138:00cf beside Cisco's (1137) names, to
            # test that collapsing keeps functions of other IDs apart: the names say 1137
            assert dev.ids == "1137:00cf"
            continue
        assert dev.ids == real.ids and dev.fact("ids").is_inferred, dev.bdf
        assert kind_of(dev) is kind_of(real), dev.bdf


# -- the bundled subset answers name lookups as the file it was cut from -------------------


def test_a_subset_keeps_what_makes_a_name_ambiguous() -> None:
    subset = PciNames.from_text(make_subset(TINY, [(0x10DE, 0x0BE2), (0x1000, 0x0072)], (), ()))
    audio = ids_from_name("NVIDIA Corporation High Definition Audio Controller", "s", names=subset)
    assert (audio.vendor, audio.device) == (0x10DE, None)  # 0be3 was kept beside 0be2
    assert subset.vendors_named("Broadcom") == (0x1166,)  # a prefix of "Broadcom / LSI"
    missing = ids_from_name("Broadcom / LSI SAS9999 Unheard Of", "s", names=subset)
    assert missing.vendor is None


SYSTEM = next((p for p in SYSTEM_PATHS if p.is_file()), None)


@pytest.mark.skipif(SYSTEM is None, reason="no system pci.ids to compare the subset with")
def test_the_bundled_subset_resolves_names_as_the_full_file() -> None:
    assert SYSTEM is not None
    full = PciNames.from_path(SYSTEM)
    bundled = bundled_path()
    assert bundled is not None
    subset = PciNames.from_path(bundled)
    if "2023.04.10" not in SYSTEM.read_text(errors="replace")[:2000]:
        pytest.skip("the subset was cut from pci.ids 2023.04.10; this host has another")
    for vendor in (0x10DE, 0x8086, 0x1022, 0x1000, 0x15B3, 0x144D):
        for device in [d for d in range(0x10000) if subset.device(vendor, d) is not None]:
            text = f"{subset.vendor(vendor)} {subset.device(vendor, device)}"
            a, b = ids_from_name(text, "x", names=subset), ids_from_name(text, "x", names=full)
            assert (a.vendor, a.device) == (b.vendor, b.device), text
