"""`p2pview qemu`: the generated q35 machine, the BDF map and the stated differences."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest
from conftest import DATA

import p2pview.qemu
from p2pview.kernel import KernelTarget, calc_map_type_and_dist, prepare
from p2pview.model import BDF
from p2pview.qemu import MachineError, build_machine
from p2pview.qemu.commands import _write_dir, describe
from p2pview.qemu.machine import ORACLE_KERNEL, _config_acs_flags
from p2pview.qemu.verify import DioCheck, PairResult, sections
from p2pview.sources import bundled_topologies, load_source

KERNEL = KernelTarget.parse(ORACLE_KERNEL)
REFUSED = {"sriov-nic": "SR-IOV virtual function"}


def machine(name: str, **kw):
    return build_machine(load_source(name).topology, kernel=KERNEL, **kw)


def devices(m) -> list[str]:
    args = m.qemu_args()
    return [args[i + 1] for i, a in enumerate(args) if a == "-device"]


@pytest.mark.parametrize("name", [b.name for b in bundled_topologies()])
def test_every_bundled_topology_gets_a_line_or_a_clear_refusal(name):
    if name in REFUSED:
        with pytest.raises(MachineError, match=REFUSED[name]) as exc:
            machine(name)
        assert "\n" not in str(exc.value)
        return
    m = machine(name)
    args = m.qemu_args()
    assert args[:3] == ["qemu-system-x86_64", "-machine", "q35"]
    # every -device names an existing bus, every NVMe a declared drive
    ids = {"pcie.0"}
    drives = {a.split("id=")[1].split(",")[0] for a in args if a.startswith("if=none")}
    for dev in devices(m):
        props = dict(p.split("=", 1) for p in dev.split(",")[1:])
        assert props["bus"] in ids, dev
        ids.add(props["id"])
        if dev.startswith("nvme"):
            assert props["drive"] in drives
    # every provider of SOURCE is an NVMe with a CMB in the guest
    for dev in m.source.devices:
        if dev.p2pmem is not None:
            guest = m.guest[m.bdf_map[dev.bdf]]
            assert guest.ids == "1b36:0010" and guest.p2pmem is not None


def test_switch_nvme_command_line():
    m = machine("switch-nvme")
    assert m.cpu == "qemu64"
    assert devices(m) == [
        "pcie-root-port,id=rp0,bus=pcie.0,addr=1c.0,chassis=1,slot=1",
        "nvme,id=nvme0,bus=rp0,addr=00.0,serial=p2pv0000,drive=disk0",
        "pxb-pcie,id=pxb0,bus=pcie.0,addr=01.0,bus_nr=23",
        "pcie-root-port,id=rp1,bus=pxb0,addr=00.0,chassis=1,slot=2",
        "x3130-upstream,id=usp0,bus=rp1,addr=00.0",
        "xio3130-downstream,id=dsp0,bus=usp0,addr=00.0,chassis=1,slot=3",
        "nvme,id=nvme1,bus=dsp0,addr=00.0,serial=p2pv0001,drive=disk1,cmb_size_mb=16",
        "xio3130-downstream,id=dsp1,bus=usp0,addr=01.0,chassis=1,slot=4",
        "nvme,id=nvme2,bus=dsp1,addr=00.0,serial=p2pv0002,drive=disk2,cmb_size_mb=16",
        "xio3130-downstream,id=dsp2,bus=usp0,addr=02.0,chassis=1,slot=5",
        "nvme,id=nvme3,bus=dsp2,addr=00.0,serial=p2pv0003,drive=disk3",
        "pcie-root-port,id=rp2,bus=pxb0,addr=02.0,chassis=1,slot=6",
        "nvme,id=nvme4,bus=rp2,addr=00.0,serial=p2pv0004,drive=disk4",
    ]
    # SeaBIOS numbering reproduces the source's buses exactly here
    assert all(s == g for s, g in m.bdf_map.items())


def test_switch_nvme_differences_and_changed_verdicts():
    m = machine("switch-nvme")
    texts = [d.text for d in m.differences]
    assert any("8086:29c0 (not whitelisted)" in t and "8086:2020 (whitelisted)" in t for t in texts)
    assert any("1b36:000c (not whitelisted)" in t and "8086:2030" in t for t in texts)
    # under the switch nothing changes; through the host bridge THRU becomes NOT_SUPPORTED
    changed = {(c.provider.short(), c.client.short()): (c.source, c.guest) for c in m.changes}
    assert ("1a:00.0", "1b:00.0") not in changed
    assert changed[("1a:00.0", "1d:00.0")] == (("THRU_HOST_BRIDGE", 6), ("NOT_SUPPORTED", 6))


def test_epyc_cpu_keeps_thru_host_bridge():
    m = machine("switch-nvme", cpu="EPYC")
    assert not [c for c in m.changes if c.guest[0] == "NOT_SUPPORTED"]
    assert any(d.kind == "cpu" and "true" in d.text for d in m.differences)
    assert machine("epyc-2s").cpu == "EPYC"  # the default follows SOURCE's Zen CPU


def test_multifunction_under_acs_root_port_uses_config_acs():
    m = machine("multifunction-acs")
    assert "pci=config_acs=1100@0000:00:02.0;1100@0000:00:02.1" in m.cmdline
    assert (
        "nvme,id=nvme0,bus=rp0,addr=00.0,serial=p2pv0000,drive=disk0,cmb_size_mb=16,multifunction=on"
        in devices(m)
    )
    assert not m.changes  # the QEMU guest this topology came from is reproduced exactly
    # the engine applies the parameter to the QEMU-equivalent topology
    v = calc_map_type_and_dist(prepare(m.guest, KERNEL), BDF.parse("01:00.0"), BDF.parse("01:00.1"))
    assert (v.map_type.value, v.distance) == ("NOT_SUPPORTED", 2)


def test_renumbering_is_stated():
    m = machine("arm64-offset")
    moved = {s: g for s, g in m.bdf_map.items() if s != g}
    assert moved
    assert any(
        d.kind == "bdf" and "domain 000c becomes domain 0000" in d.text for d in m.differences
    )
    # q35's 00:00.0 is the MCH: a source function there goes elsewhere
    assert (
        BDF.parse("00:00.0") not in moved.values()
        or m.guest[BDF.parse("00:00.0")].ids == "8086:29c0"
    )


def test_endpoints_on_an_extra_root_bus_get_a_root_port():
    m = machine("hgx-8gpu")
    assert not any("nvme" in d.split(",")[0] and "bus=pxb" in d for d in devices(m)), (
        "QEMU refuses endpoints plugged straight into pxb-pcie"
    )
    assert any("extra root port" in d.text for d in m.differences)


def test_config_acs_flags_are_rightmost_bit_0():
    assert _config_acs_flags(0x000C, 0x5F) == "1100"
    assert _config_acs_flags(0x005D, 0x5F) == "1x11101"  # EC (bit 5) is not in the root port's cap


def test_unknown_cpu_model_is_refused():
    with pytest.raises(MachineError, match="unknown QEMU CPU model"):
        machine("switch-nvme", cpu="Pentium42")


def test_describe_lists_map_differences_and_changes():
    text = describe(machine("switch-nvme"), "qemu-system-x86_64 ...")
    assert "0000:1a:00.0 -> 0000:1a:00.0  1b36:0010" in text
    assert "Differences from SOURCE:" in text
    assert "1a:00.0 -> 1d:00.0: THRU_HOST_BRIDGE 6 -> NOT_SUPPORTED 6" in text


def test_output_dir_has_a_runnable_script_and_disks(tmp_path):
    m = machine("multifunction-acs")
    script = _write_dir(m, tmp_path)
    assert sorted(p.name for p in tmp_path.glob("*.img")) == [f"disk{i}.img" for i in range(4)]
    assert (tmp_path / "disk0.img").stat().st_size == 4 << 20
    subprocess.run(["sh", "-n", str(script)], check=True)
    text = script.read_text()
    assert "file=$HERE/disk0.img" in text and "config_acs=1100@0000:00:02.0" in text


def test_guest_sections_and_agreement():
    console = "\r\n".join(
        [
            "noise",
            "=====P2PVIEW BEGIN module",
            "0000:01:00.0 0000:01:00.1 -1",
            "=====P2PVIEW END module",
        ]
    )
    assert sections(console) == {"module": ["0000:01:00.0 0000:01:00.1 -1"]}
    p, c = BDF.parse("01:00.0"), BDF.parse("01:00.1")
    refused = DioCheck("allocate", "read=EREMOTEIO write=EREMOTEIO", "EREMOTEIO", "EREMOTEIO")
    done = DioCheck("allocate", "read=ok write=ok", "ok", "ok")
    # the kernel's -1 for an unsupported pair is not a distance
    assert PairResult(p, c, "NOT_SUPPORTED", -1, ("NOT_SUPPORTED", 2), None, refused).ok
    assert not PairResult(p, c, "BUS_ADDR", 2, ("NOT_SUPPORTED", 2), None, done).agrees
    assert not PairResult(p, c, "BUS_ADDR", 2, ("BUS_ADDR", 4), None, done).agrees
    # O_DIRECT alone decides supported / not supported
    assert PairResult(p, c, None, None, ("NOT_SUPPORTED", 2), None, refused).agrees
    assert not PairResult(p, c, None, None, ("BUS_ADDR", 2), None, refused).agrees
    # an O_DIRECT outcome p2pview did not predict is a disagreement of its own
    surprise = DioCheck("bar", "read=ok write=ok", "ok", "EFAULT")
    pair = PairResult(p, c, "BUS_ADDR", 2, ("BUS_ADDR", 2), None, done, surprise)
    assert pair.agrees and not pair.ok


def test_earlier_qemu_capture_matches_the_prediction():
    """The machine p2pview builds for multifunction-acs is the one those captures came from."""
    expected = json.loads(
        (DATA / "qemu-guest-captures" / "switch-qemu64.expected.json").read_text()
    )
    m = machine("switch-nvme")
    state = prepare(m.guest, KERNEL)
    # the earlier switch capture: same-switch pair BUS_ADDR 4, as in the guest predicted here
    assert expected["pairs"]["0000:03:00.0 0000:04:00.0"] == ["BUS_ADDR", 4, None]
    v = calc_map_type_and_dist(state, BDF.parse("1a:00.0"), BDF.parse("1b:00.0"))
    assert (v.map_type.value, v.distance) == ("BUS_ADDR", 4)


@pytest.mark.parametrize("name", ["switch-acs-iommu", "switch-nvme-acs"])
def test_dsp_acs_reproduces_downstream_port_acs(name):
    plain = machine(name)
    assert any(d.kind == "acs" for d in plain.differences)
    assert "disable-acs" not in " ".join(devices(plain))

    m = machine(name, dsp_acs=True)
    assert m.dsp_acs
    assert not [d for d in m.differences if d.kind == "acs"]
    dsps = [d for d in m.devices if d.driver == "xio3130-downstream"]
    assert dsps and all(("disable-acs", "off") in d.props for d in dsps)
    config_acs = m.cmdline.split("pci=config_acs=")[1].split()[0].split(";")
    targets = {entry.split("@")[1] for entry in config_acs}
    for dsp in dsps:
        assert str(dsp.guest) in targets
        src = m.source[dsp.source]
        assert src.acs.ctrl & 0x000C  # RR and CR set in SOURCE ...
        assert m.guest[dsp.guest].acs.cap == 0x005F  # ... and the guest port can take them
    # the guest's switch ports redirect as SOURCE's do
    gst, src = prepare(m.guest, KERNEL), prepare(m.source, KERNEL)
    for dsp in dsps:
        assert gst.acs[dsp.guest].redirect == src.acs[dsp.source].redirect


def test_dsp_acs_changes_nothing_without_switches():
    assert (
        machine("multifunction-acs", dsp_acs=True).cmdline == machine("multifunction-acs").cmdline
    )


def test_dsp_acs_option_reaches_the_machine():
    from p2pview.cli import build_parser

    args = build_parser().parse_args(["qemu", "switch-nvme-acs", "--dsp-acs"])
    assert args.dsp_acs
    args = build_parser().parse_args(["verify", "switch-nvme-acs", "--kernel", "k", "--dsp-acs"])
    assert args.dsp_acs


def test_dsp_acs_run_script_names_the_patched_qemu(tmp_path):
    script = _write_dir(machine("switch-nvme-acs", dsp_acs=True), tmp_path)
    text = script.read_text()
    assert "tools/qemu-acs/build.sh" in text and "disable-acs=off" in text
    assert (
        "tools/qemu-acs" not in _write_dir(machine("switch-nvme-acs"), tmp_path / "b").read_text()
    )


@pytest.mark.parametrize("release", ["5.10.223", "6.1.176"])
def test_releases_without_config_acs_get_acs_written_by_init(release):
    """Before v6.11 there is no pci=config_acs=: /init writes ACS Control through sysfs."""
    m = build_machine(load_source("multifunction-acs").topology, kernel=KernelTarget.parse(release))
    assert "config_acs" not in m.cmdline
    assert "p2pview_acs=0000:00:02.0=0x000c,0000:00:02.1=0x000c" in m.cmdline
    assert m.guest[BDF.parse("00:02.0")].acs.ctrl == 0x000C
    assert any(d.kind == "acs" and "sysfs" in d.text for d in m.differences)
    assert not m.changes  # the guest redirects as SOURCE does
    init = (Path(p2pview.qemu.__file__).parent / "guest" / "init.sh").read_text()
    assert "p2pview_acs" in init and init.index("begin acs") < init.index("begin capture")


def test_releases_with_config_acs_keep_the_kernel_parameter():
    m = machine("multifunction-acs")
    assert "pci=config_acs=" in m.cmdline and "p2pview_acs" not in m.cmdline
