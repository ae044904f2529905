"""``p2pview trace`` and the bundled scenarios, as a user runs them."""

from __future__ import annotations

import dataclasses
import json

import pytest

from p2pview.cli import main
from p2pview.iosim.datapath import DataPathKernel
from p2pview.session import EngineConfig
from p2pview.sources.bundled import bundled_scenarios

EXPECTED = {
    "cmb-read-bus-addr": ("ok", None, 131072),
    "thru-iommu": ("ok", None, 65536),
    "eremoteio-dma-map": ("error", "EREMOTEIO", 0),
    "eremoteio-gup": ("error", "EREMOTEIO", 0),
    "readv-mixed": ("ok", None, 16384),
    "adjacent-cmbs": ("ok", None, 16384),
    "v5-series-nvme-mmap": ("ok", None, 131072),
    "swiotlb-hang": ("hang", None, 0),
}


#: The exit status of each outcome (README "p2pview trace", 'p2pview trace --help').
STATUS = {"ok": 0, "error": 1, "short": 1, "hang": 1, "wrong address": 1}


def trace_json(capsys, *args, status=0):
    assert main(["trace", *args, "--json"]) == status
    return json.loads(capsys.readouterr().out)


def test_at_least_six_bundled_scenarios():
    names = {name for name, _ in bundled_scenarios()}
    assert len(names) >= 6 and set(EXPECTED) <= names


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_bundled_scenario_outcomes(capsys, name):
    outcome, errno, nbytes = EXPECTED[name]
    doc = trace_json(capsys, name, status=STATUS[outcome])
    assert doc["result"] == {
        "errno": errno,
        "stage": doc["result"]["stage"],
        "bytes": nbytes,
        "outcome": outcome,
    }


def test_trace_json_shape(capsys):
    doc = trace_json(capsys, "readv-mixed")
    assert set(doc) >= {"scenario", "providers", "steps", "events", "result", "final_sg"}
    assert [s["stage"] for s in doc["steps"]][:3] == ["mmap", "ptes", "gup"]
    entry = doc["final_sg"][0]
    assert set(entry) >= {
        "page_pfn",
        "offset",
        "length",
        "dma_address",
        "dma_length",
        "bus_address",
        "provider",
    }
    assert [e["bus_address"] for e in doc["final_sg"]] == [True, False, False]
    assert (
        doc["final_sg"][0]["provider"] == "0000:1a:00.0" and doc["final_sg"][1]["provider"] is None
    )
    maps = [s for s in doc["steps"] if s["stage"] in ("map_sg", "dma_map")]
    assert len(maps) == 2 and all("scatterlists" in s for s in maps)
    assert all({"function", "text", "touched", "confidence"} <= set(e) for e in doc["events"])


def test_trace_quick_form(capsys):
    doc = trace_json(
        capsys,
        "switch-nvme",
        "--provider",
        "1a:00.0",
        "--client",
        "1b:00.0",
        "--size",
        "128K",
        "--kernel",
        "6.2",
    )
    assert doc["result"]["bytes"] == 131072
    assert doc["final_sg"][0]["dma_address"] == 0x383FE0000000
    assert doc["providers"]["0000:1a:00.0"]["map_type"] == "BUS_ADDR"


def test_trace_iommu_flag_turns_acs_on(capsys):
    doc = trace_json(
        capsys,
        "switch-nvme",
        "--provider",
        "1a:00.0",
        "--client",
        "1b:00.0",
        "--size",
        "64K",
        "--iommu",
    )
    assert doc["providers"]["0000:1a:00.0"]["map_type"] == "THRU_HOST_BRIDGE"
    assert doc["final_sg"][0]["bus_address"] is False


def test_trace_table_output(capsys):
    assert main(["trace", "cmb-read-bus-addr"]) == 0
    out = capsys.readouterr().out
    assert "final scatterlist" in out and "SG_DMA_BUS_ADDRESS" in out
    assert "Result: pread returns 131072" in out


QUICK = ["trace", "switch-nvme", "--provider", "1a:00.0", "--client", "1b:00.0"]


def test_a_buffer_bigger_than_the_pool_never_reaches_pread(capsys):
    # The mmap of p2pmem/allocate fails (gen_pool_alloc_owner() finds no chunk):
    # the application sees mmap() fail, not pread returning -1; exit status 3.
    assert main([*QUICK, "--size", "1G"]) == 3
    out = capsys.readouterr().out
    result = out[out.index("Result:") :]
    assert "pread returns" not in result and "pread is never called" in result
    assert (
        "mmap of 0000:1a:00.0's p2pmem/allocate fails with ENOMEM: the pool is"
        " 268,435,456 bytes (256 MiB), 268,435,456 bytes (256 MiB) of it available, and the"
        " buffer needs 1,073,741,824 bytes (1 GiB)"
    ) in result
    doc = trace_json(capsys, *QUICK[1:], "--size", "1G", status=3)
    assert doc["result"] == {"errno": "ENOMEM", "stage": "mmap", "bytes": 0, "outcome": "error"}


def test_exit_status_says_how_the_io_ended(capsys):
    assert main([*QUICK, "--size", "128K"]) == 0
    assert main(["trace", "eremoteio-dma-map"]) == 1
    assert main(["trace", "swiotlb-hang"]) == 1
    capsys.readouterr()
    with pytest.raises(SystemExit):
        main(["trace", "--help"])
    help_text = capsys.readouterr().out
    assert "exit status:" in help_text and "3    trace: the I/O never ran" in help_text


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["trace", "no-such-scenario"], "not a scenario file or bundled scenario"),
        (
            ["trace", "switch-nvme", "--provider", "1a:00.0"],
            "needs --provider, --client and --size",
        ),
        (
            [
                "trace",
                "switch-nvme",
                "--provider",
                "1c:00.0",
                "--client",
                "1b:00.0",
                "--size",
                "4K",
            ],
            "has no p2pmem",
        ),
    ],
)
def test_trace_errors(capsys, args, message):
    assert main(args) == 2
    assert message in capsys.readouterr().err


def test_scenarios_listing(capsys):
    assert main(["scenarios"]) == 0
    out = capsys.readouterr().out
    assert "adjacent-cmbs" in out and "switch-nvme" in out


def test_installed_package_finds_bundled_scenarios(tmp_path):
    import os
    import subprocess
    import sys

    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    proc = subprocess.run(
        [sys.executable, "-m", "p2pview", "trace", "readv-mixed", "--json"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        check=False,
        env=env,
    )
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["result"]["bytes"] == 16384


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (
            'topology = "switch-nvme"\n[[buffer]]\nkind = "p2pmem"\nprovider = "1a:00.0"\n'
            'size = "4K"\n'
            "[target]\n",
            "target.client: missing",
        ),
        (
            'topology = "switch-nvme"\n[[buffer]]\nkind = "cmb"\nsize = "4K"\n[target]\n'
            'client = "1b:00.0"\n',
            "buffer[0].kind: one of p2pmem",
        ),
        (
            'topology = "switch-nvme"\n[[buffer]]\nkind = "ram"\nsize = "4K"\ncolour = 1\n'
            '[target]\nclient = "1b:00.0"\n',
            "buffer[0].colour: unknown key",
        ),
        (
            'topology = "switch-nvme"\n[[buffer]]\nkind = "ram"\nsize = "4K"\n[io]\nlength = "8K"\n'
            '[target]\nclient = "1b:00.0"\n',
            "io.length: 8192 exceeds the 4096-byte buffer",
        ),
    ],
)
def test_scenario_file_errors(tmp_path, capsys, body, message):
    path = tmp_path / "bad.toml"
    path.write_text(body)
    assert main(["trace", str(path)]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"p2pview: error: {path}: ") and message in err


def test_trace_prints_the_queue_limits(capsys):
    # As /sys/block/nvme*/queue/* shows them; through the IOMMU on 6.12 nvme caps
    # max_hw_sectors at dma_opt_mapping_size() (Linux 6.12.117 drivers/nvme/host/pci.c,
    # nvme_pci_alloc_dev()).
    assert main(["trace", "thru-iommu"]) == 0
    out = capsys.readouterr().out
    assert (
        "queue limits: max_hw_sectors_kb 128, max_sectors_kb 128, max_segments 33,"
        " max_segment_size 4294967295, virt_boundary_mask 0xfff, dma_opt_mapping_size 131072"
    ) in out
    doc = trace_json(capsys, "cmb-read-bus-addr")
    assert doc["queue_limits"]["max_sectors_kb"] == 1280
    assert doc["queue_limits"]["max_segments"] == 128
    assert (
        trace_json(capsys, "cmb-read-bus-addr", "--kernel", "7.2")["queue_limits"]["max_sectors_kb"]
        == 4096
    )


def test_quick_trace_on_a_translating_iommu_runs_through_it(capsys):
    # epyc-2s: the AMD IOMMU translates; no --iommu given: the topology decides.
    args = ["epyc-2s", "--provider", "01:00.0", "--client", "01:00.0", "--size", "1M"]
    doc = trace_json(capsys, *args)
    assert doc["scenario"]["dma"] == "iommu"
    assert doc["queue_limits"]["max_hw_sectors_kb"] == 128
    requests = next(s for s in doc["steps"] if s["stage"] == "request")
    assert "8 request(s)" in requests["events"][0]["text"]


def test_scenario_contrary_to_the_topology_is_a_what_if(capsys, tmp_path):
    path = tmp_path / "direct.toml"
    path.write_text(
        'topology = "switch-acs-iommu"\nkernel = "6.12"\n'
        '[[buffer]]\nkind = "p2pmem"\nprovider = "0000:1a:00.0"\nsize = "64K"\n'
        '[target]\nclient = "0000:1b:00.0"\n[dma]\nmode = "direct"\n'
    )
    assert main(["trace", str(path)]) == 0
    out = capsys.readouterr().out
    assert (
        "what-if: the topology's IOMMU translates DMA, but this scenario runs as direct"
        " ([dma] mode)\n" in out
    )
    # JSON carries who chose the mode, and the simulator's words name no option of a face.
    doc = trace_json(capsys, str(path))["scenario"]
    assert doc["dma"] == "direct" and doc["dma_chosen_by"] == "scenario"
    assert doc["dma_note"].endswith("but this scenario runs as direct")


def test_a_topology_that_does_not_say_gets_dma_direct_and_the_cli_says_how_to_change_it(
    capsys, tmp_path
):
    from p2pview.sources.bundled import bundled_path

    bundled = bundled_path("switch-nvme")
    assert bundled is not None
    text = bundled.read_text()
    assert 'iommu = "off"\n' in text
    path = tmp_path / "unknown.toml"
    path.write_text(text.replace('iommu = "off"\n', ""))
    args = [str(path), "--provider", "1a:00.0", "--client", "1b:00.0", "--size", "64K"]
    assert main(["trace", *args]) == 0
    assert (
        "the topology does not say whether an IOMMU translates DMA: dma-direct assumed"
        " (set [dma] mode, or --iommu)\n" in capsys.readouterr().out
    )
    doc = trace_json(capsys, *args)["scenario"]
    assert doc["dma"] == "direct" and doc["dma_chosen_by"] == "default"
    assert "[dma]" not in doc["dma_note"] and "--iommu" not in doc["dma_note"]
    # --iommu turns the topology's IOMMU on: the mode is the option's, and no what-if.
    doc = trace_json(capsys, *args, "--iommu")["scenario"]
    assert doc["dma"] == "iommu" and doc["dma_chosen_by"] == "scenario" and not doc["dma_note"]


def test_one_run_has_one_kernel_for_verdicts_and_data_path() -> None:
    from p2pview.iosim import read_scenario, simulate
    from p2pview.session import open_session
    from p2pview.sources.bundled import bundled_scenario_path

    path = bundled_scenario_path("cmb-read-bus-addr")
    assert path is not None
    scenario = read_scenario(path)
    session = open_session(scenario.source, EngineConfig.parse(kernel="7.2"))
    other = dataclasses.replace(scenario, kernel=DataPathKernel.parse("6.12"))
    trace = simulate(other, session.topology, session.state)
    assert trace.context.datapath.version.series == (7, 2)
    assert trace.context.kernel_note is not None
    assert "names kernel 6.12; it runs under 7.2" in trace.context.kernel_note
    same = simulate(
        dataclasses.replace(scenario, kernel=DataPathKernel.parse("7.2.13")),
        session.topology,
        session.state,
    )
    assert same.context.kernel_note is None and str(same.context.datapath.version) == "7.2.13"
