"""`p2pview verify --record`: the results file and the README table made from it."""

from __future__ import annotations

import json

import pytest

from p2pview.model import BDF
from p2pview.qemu.record import (
    BEGIN,
    END,
    FORMAT,
    RecordError,
    load,
    machine_entry,
    merge,
    render_table,
    replace_in_readme,
    write,
)
from p2pview.qemu.verify import DioCheck, PairResult, VerifyResult, _first_failure, _parse_dio

P, C = BDF.parse("01:00.0"), BDF.parse("02:00.0")


def result(kernel="6.12.117", cpu="qemu64", name="switch-nvme", agree=True, dsp_acs=False):
    dio = DioCheck("allocate", "read=EREMOTEIO write=EREMOTEIO", "EREMOTEIO", "EREMOTEIO")
    bar = DioCheck("bar", "read=EFAULT write=EFAULT", "EFAULT", "EFAULT")
    engine = ("NOT_SUPPORTED", 4) if agree else ("BUS_ADDR", 4)
    pair = PairResult(P, C, "NOT_SUPPORTED", -1, engine, engine, dio, bar)
    res = VerifyResult(name, cpu, release=kernel, profile="v5.19-v7.0", dsp_acs=dsp_acs)
    res.pairs.append(pair)
    res.p2pmem_files = {"0000:01:00.0": ["allocate", "available", "published", "size"]}
    return res


def test_entry_counts_pairs_and_both_o_direct_ways():
    entry = machine_entry(result(), "linux-source-6.12 6.12.117-1")
    assert entry["pairs"] == {"checked": 1, "agreed": 1}
    assert entry["allocate"] == {"checked": 1, "agreed": 1, "outcomes": {"EREMOTEIO": 1}}
    assert entry["bar"]["outcomes"] == {"EFAULT": 1}
    assert entry["qemu"] == "stock" and entry["disagreements"] == []
    assert "seconds" not in json.dumps(entry)  # the committed file changes only with a result


def test_merge_replaces_the_same_machine_only(tmp_path):
    path = tmp_path / "r.json"
    data = merge(
        load(path), [machine_entry(result(), None), machine_entry(result(cpu="EPYC"), None)]
    )
    again = merge(data, [machine_entry(result(agree=False), None)])
    assert len(again["machines"]) == 2
    write(path, again)
    back = load(path)
    qemu64 = next(m for m in back["machines"] if m["cpu"] == "qemu64")
    assert qemu64["pairs"]["agreed"] == 0 and qemu64["disagreements"]


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("not json", "not JSON"),
        ('{"format": "other"}', "format"),
        (json.dumps({"format": FORMAT, "machines": [{"kernel": 1}]}), r"machines\[0\]\.kernel"),
        (json.dumps({"format": FORMAT, "machines": {}}), "'machines'"),
    ],
)
def test_bad_results_file_is_one_line(tmp_path, content, message):
    path = tmp_path / "r.json"
    path.write_text(content)
    with pytest.raises(RecordError, match=message) as exc:
        load(path)
    assert str(path) in str(exc.value) and "\n" not in str(exc.value)


def test_table_sums_per_kernel_and_cpu():
    data = merge(
        load_empty(),
        [
            machine_entry(result(), "linux-source-6.12 6.12.117-1"),
            machine_entry(
                result(name="switch-nvme-acs", dsp_acs=True), "linux-source-6.12 6.12.117-1"
            ),
            machine_entry(result(kernel="5.10.223"), "linux-source-5.10 5.10.223-1"),
        ],
    )
    table = render_table(data)
    rows = [ln for ln in table.splitlines() if ln.startswith("| linux-source")]
    assert rows[0].startswith("| linux-source-5.10 5.10.223-1 |")  # releases in order
    assert "| 2 (1 + 1 with downstream-port ACS) | 2 / 2 | 0 / 0 |" in rows[1]
    header, rule = table.splitlines()[:2]
    assert header.count("|") == rule.count("|") == rows[1].count("|")
    assert "2 / 2 (EREMOTEIO 2)" in rows[1] and "2 / 2 (EFAULT 2)" in rows[1]
    assert rows[1].endswith("| none |")


def test_a_disagreement_needs_an_explanation():
    data = merge(load_empty(), [machine_entry(result(agree=False), None)])
    with pytest.raises(RecordError, match="without an explanation"):
        render_table(data)
    data["explanations"] = {
        "6.12.117 qemu64 switch-nvme 0000:01:00.0 0000:02:00.0": "QEMU cannot do this."
    }
    table = render_table(data)
    assert "[1]" in table and "QEMU cannot do this." in table


def test_machines_not_booted_are_listed_with_the_reason():
    data = load_empty()
    data["machines"] = [
        {
            "kernel": "6.12.117",
            "cpu": "qemu64",
            "qemu": "stock",
            "topology": "sriov-nic",
            "error": "VFs cannot be made",
            "skipped": True,
        }
    ]
    assert "Not booted: sriov-nic: VFs cannot be made." in render_table(data)


def test_readme_markers():
    readme = f"intro\n{BEGIN}\nold\n{END}\nrest\n"
    assert replace_in_readme(readme, "new\n") == f"intro\n{BEGIN}\nnew\n{END}\nrest\n"
    with pytest.raises(RecordError):
        replace_in_readme("no markers", "x")


def test_guest_o_direct_lines():
    values = {1: "NOT_SUPPORTED", 2: "BUS_ADDR", 3: "THRU_HOST_BRIDGE"}
    lines = [
        "0000:01:00.0 0000:02:00.0 nvme1 dio read=EREMOTEIO write=EREMOTEIO maps=0x1 ",
        "0000:01:00.0 0000:02:00.0 nvme1 bar read=EFAULT write=EFAULT",
        "0000:01:00.0 0000:01:00.0 nvme0 dio read=open:ENOENT write=open:ENOENT maps=",
    ]
    got = _parse_dio(lines, values)
    assert got[(P, C)]["allocate"].kernel_map == "NOT_SUPPORTED"
    assert got[(P, C)]["bar"].seen == "read=EFAULT write=EFAULT"
    assert _first_failure(got[(P, P)]["allocate"].seen) == "ENOENT"
    assert _first_failure("read=ok write=EFAULT") == "EFAULT"
    assert _first_failure("read=ok write=ok") == "ok"


def load_empty():
    return {"format": FORMAT, "qemu": {}, "machines": [], "explanations": {}}


def test_guest_messages_belong_to_the_pair_printed_after_them():
    from p2pview.qemu.verify import _parse_messages

    lines = [
        "[    3.100000] p2pdist: loading out-of-tree module taints kernel.",
        "[    3.200000] p2pdist: 0000:01:00.0 0000:01:00.0 0",
        "[    3.300000] nvme 0000:02:00.0: ACS redirect is set between the client and provider"
        " (0000:01:00.0)",
        "[    3.300001] pci 0000:00:00.0: Host bridge not in P2PDMA whitelist: 8086:29c0",
        "[    3.400000] p2pdist: 0000:01:00.0 0000:02:00.0 -1",
    ]
    got = _parse_messages(lines)
    assert got[(P, P)] == ()
    assert got[(P, C)] == (
        "nvme 0000:02:00.0: ACS redirect is set between the client and provider (0000:01:00.0)",
        "pci 0000:00:00.0: Host bridge not in P2PDMA whitelist: 8086:29c0",
    )
    quiet = PairResult(P, C, "BUS_ADDR", 4, ("BUS_ADDR", 4), None, None, None, (), ("x",))
    assert quiet.agrees and not quiet.messages_agree and not quiet.ok
