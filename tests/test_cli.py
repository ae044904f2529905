"""The command line as a user or a script sees it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import DATA

from p2pview.cli import main

SWITCH = str(DATA / "qemu-guest-captures/switch-qemu64.tar.gz")
MF3 = str(DATA / "qemu-guest-captures/mf3-qemu64-acs-rp.tar.gz")


def run(capsys, *args: str) -> tuple[int, str, str]:
    code = main(list(args))
    out, err = capsys.readouterr()
    return code, out, err


def test_matrix_table_shows_codes_and_legend(capsys):
    code, out, _ = run(capsys, "matrix", SWITCH, "--providers", "nvme", "--clients", "nvme")
    assert code == 0
    assert "kernel 6.12.117 (v5.19-v7.0 profile)" in out
    assert "cpu_supports_p2pdma() = false" in out
    lines = [line for line in out.splitlines() if line.startswith("03:00.0")]
    assert lines and "B0" in lines[0] and "B4" in lines[0]
    assert "BUS_ADDR" in out and "NOT_SUPPORTED" in out


def test_matrix_json_schema_covers_every_ordered_pair(capsys):
    code, out, _ = run(capsys, "matrix", SWITCH, "--json")
    assert code == 0
    doc = json.loads(out)
    assert doc["kernel"]["version"] == "6.12.117"
    assert doc["platform"]["cpu_vendor"] == "AuthenticAMD"
    devices = doc["devices"]
    assert {
        "bdf",
        "parent",
        "vendor",
        "device",
        "class",
        "pcie_type",
        "acs_cap",
        "acs_ctrl",
        "acs_known",
    } <= set(devices[0])
    by_bdf = {d["bdf"]: d for d in devices}
    assert by_bdf["0000:00:02.0"]["parent"] is None
    assert by_bdf["0000:03:00.0"]["parent"] == "0000:02:00.0"
    assert (
        by_bdf["0000:00:02.0"]["acs_cap"] == "005f" and by_bdf["0000:00:02.0"]["acs_ctrl"] == "0000"
    )
    assert by_bdf["0000:02:00.0"]["acs_ctrl"] is None and by_bdf["0000:02:00.0"]["acs_known"]
    n = len(devices)
    pairs = doc["pairs"]
    assert len(pairs) == n * n
    assert {(p["provider"], p["client"]) for p in pairs} == {(a, b) for a in by_bdf for b in by_bdf}
    pair = next(
        p for p in pairs if p["provider"] == "0000:03:00.0" and p["client"] == "0000:04:00.0"
    )
    assert pair == {
        "provider": "0000:03:00.0",
        "client": "0000:04:00.0",
        "map_type": "BUS_ADDR",
        "distance": 4,
        "acs_redirect": [],
        "assumed": [],
        "assumptions": [],
        "alternatives": [],
    }


def test_matrix_json_lists_acs_redirects_in_kernel_order(capsys):
    _, out, _ = run(
        capsys, "matrix", MF3, "--json", "--providers", "01:00.0", "--clients", "01:00.1"
    )
    (pair,) = json.loads(out)["pairs"]
    assert pair["map_type"] == "NOT_SUPPORTED" and pair["distance"] == 2
    assert pair["acs_redirect"] == ["0000:00:02.0"]


def test_int_distance_eras_in_json(capsys):
    _, out, _ = run(
        capsys,
        "matrix",
        MF3,
        "--json",
        "--kernel",
        "5.0",
        "--providers",
        "01:00.0",
        "--clients",
        "01:00.1,02:00.0",
    )
    pairs = {p["client"]: p for p in json.loads(out)["pairs"]}
    assert pairs["0000:01:00.1"]["map_type"] is None and pairs["0000:01:00.1"]["distance"] == -2
    assert pairs["0000:02:00.0"]["distance"] == -1


def test_explain_prints_the_kernel_messages(capsys):
    code, out, _ = run(capsys, "explain", MF3, "01:00.0", "01:00.1")
    assert code == 0
    assert (
        "nvme 0000:01:00.1: ACS redirect is set between the client and provider (0000:01:00.0)"
        in out
    )
    assert "pci=disable_acs_redir=0000:00:02.0" in out
    assert "pci 0000:00:00.0: Host bridge not in P2PDMA whitelist: 8086:29c0" in out
    assert "Result: NOT_SUPPORTED, distance 2" in out
    assert "common upstream device" in out


def test_explain_json(capsys):
    _, out, _ = run(capsys, "explain", MF3, "01:00.0", "01:00.1", "--json", "--cpu", "amd:0x17")
    doc = json.loads(out)
    assert (doc["map_type"], doc["distance"], doc["path"]) == (
        "THRU_HOST_BRIDGE",
        2,
        "acs_redirect",
    )
    assert doc["common_upstream"] == "0000:00:02.0"
    assert doc["cpu_supports_p2pdma"] is True
    assert doc["messages"][0]["text"].startswith("ACS redirect is set")


def test_cmdline_override_fixes_the_pair(capsys):
    _, out, _ = run(
        capsys,
        "explain",
        MF3,
        "01:00.0",
        "01:00.1",
        "--cmdline",
        "pci=disable_acs_redir=0000:00:02.0",
        "--kernel",
        "6.15",
    )
    assert "Result: BUS_ADDR, distance 2" in out
    assert "pci 0000:00:02.0: Configured ACS to 0x0000" in out


def test_find_reports_the_provider(capsys):
    code, out, _ = run(capsys, "find", SWITCH, "04:00.0")
    assert code == 0 and "returns 0000:04:00.0 (distance 0)" in out


def test_convert_writes_a_loadable_file(tmp_path, capsys):
    target = tmp_path / "switch.toml"
    assert run(capsys, "convert", SWITCH, "-o", str(target))[0] == 0
    assert target.read_text().startswith("# Written by p2pview")
    code, out, _ = run(
        capsys, "matrix", str(target), "--json", "--providers", "03:00.0", "--clients", "04:00.0"
    )
    assert code == 0 and json.loads(out)["pairs"][0]["map_type"] == "BUS_ADDR"
    # the platform travels with it: the same kernel is modelled
    assert json.loads(out)["kernel"]["version"] == "6.12.117"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["explain", SWITCH, "07:00.0", "03:00.0"], "no PCI function 0000:07:00.0"),
        (
            ["matrix", SWITCH, "--kernel", "3.10"],
            "P2PDMA (drivers/pci/p2pdma.c) was merged in v4.20",
        ),
        (["matrix", SWITCH, "--kernel", "banana"], "not a kernel version: 'banana'"),
        (["matrix", "no-such-thing"], "no-such-thing: no such file or directory"),
        (["matrix", SWITCH, "--providers", "gpu"], "selection term 'gpu' matches no PCI function"),
        (["matrix", SWITCH, "--cpu", "amd"], "--cpu 'amd': expected VENDOR:FAMILY"),
        (["explain", SWITCH, "1b36:0010", "03:00.0"], "ID 1b36:0010 matches 2 functions"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(capsys, args, message):
    code, out, err = run(capsys, *args)
    assert code == 2 and out == ""
    assert err.count("\n") == 1 and err.startswith("p2pview: error: ") and message in err


def test_bad_topology_file_names_file_and_field(tmp_path, capsys):
    bad = tmp_path / "cycle.toml"
    bad.write_text(
        '[[device]]\nbdf = "00:01.0"\nid = "8086:1"\nparent = "01:00.0"\n'
        '[[device]]\nbdf = "01:00.0"\nid = "8086:2"\nparent = "00:01.0"\n'
    )
    code, _, err = run(capsys, "matrix", str(bad))
    assert code == 2 and f"{bad}: line 1: device 0000:00:01.0: parent links form a cycle" in err


def test_capture_kernel_older_than_p2pdma_falls_back_with_a_note(capsys):
    code, out, _ = run(
        capsys,
        "matrix",
        str(DATA / "hwloc/2pa-pcidomain32bits.tar.bz2"),
        "--providers",
        "endpoint",
        "--clients",
        "endpoint",
    )
    assert code == 0
    assert "kernel 6.12 (" in out


def test_profiles_lists_every_era(capsys):
    code, out, _ = run(capsys, "profiles", "--json")
    assert code == 0
    keys = [p["key"] for p in json.loads(out)]
    assert keys == ["4.20", "5.1", "5.4", "5.9", "5.15", "5.18", "5.19", "7.1", "next"]


def test_installed_package_finds_bundled_topologies(tmp_path):
    """Run from another directory, so that only the installed package is visible."""
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    proc = subprocess.run(
        [sys.executable, "-m", "p2pview", "topologies", "--json"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        check=False,
        env=env,
    )
    assert proc.returncode == 0, proc.stderr
    items = json.loads(proc.stdout)
    assert len(items) >= 8
    assert all(Path(item["path"]).is_file() for item in items)
    assert all(item["title"] for item in items)


def test_module_and_script_agree(tmp_path):
    proc = subprocess.run(
        [sys.executable, "-m", "p2pview", "--version"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 0 and proc.stdout.startswith("p2pview ")


def test_iommu_switch_sets_and_clears_acs(capsys):
    _, out, _ = run(capsys, "explain", "switch-nvme", "1a:00.0", "1b:00.0", "--iommu", "on")
    assert "Result: THRU_HOST_BRIDGE, distance 4" in out
    _, out, _ = run(capsys, "explain", "switch-acs-iommu", "1a:00.0", "1b:00.0", "--iommu", "off")
    assert "Result: BUS_ADDR, distance 4" in out


def test_compare_command(capsys):
    base = DATA / "nvidia-smi"
    code, out, _ = run(
        capsys,
        "compare",
        str(base / "k80-3x-supermicro.reconstruction.toml"),
        str(base / "nccl-issue19-supermicro-3xK80.topo.txt"),
        "--json",
    )
    assert code == 0
    doc = json.loads(out)
    pair = next(p for p in doc["pairs"] if (p["a"], p["b"]) == ("GPU0", "GPU1"))
    assert (pair["nvidia"], pair["p2pview_label"], pair["map_type"]) == ("PIX", "PIX", "BUS_ADDR")
    assert doc["summary"]["unexpected"] == 0


def test_a_topo_m_matrix_is_not_a_topology(capsys):
    topo_m = str(DATA / "nvidia-smi/nccl-issue19-supermicro-3xK80.topo.txt")
    code, _, err = run(capsys, "matrix", topo_m)
    assert code == 2 and "p2pview compare SOURCE FILE" in err


def test_format_sysfs_takes_a_directory_or_an_archive_of_one(capsys):
    tarball = str(DATA / "hwloc/40intel64-4n10c+pci-conflicts.tar.bz2")
    code, out, _ = run(capsys, "matrix", "--format", "sysfs", tarball, "--json")
    assert code == 0 and json.loads(out)["devices"]
    code, _, err = run(capsys, "matrix", "--format", "sysfs", str(DATA / "rccl/SOURCES.md"))
    assert code == 2 and "--format sysfs wants a directory" in err


def test_explain_numbers_two_whitelist_checks_5a_and_5b(capsys):
    # Across two host bridges: one host_bridge_whitelist() call, two checks.
    code, out, _ = run(capsys, "explain", "switch-nvme", "1a:00.0", "01:00.0")
    assert code == 0
    numbers = [line.split(" ", 1)[0] for line in out.splitlines() if line[:1].isdigit()]
    assert numbers[-2:] == ["5a.", "5b."] and "5." not in numbers
