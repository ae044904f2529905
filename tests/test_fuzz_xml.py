"""Fuzz the hwloc XML, lstopo text and NCCL XML readers with mutated real files.

Each example takes a real file, applies one to three mutations (delete,
duplicate or swap lines, truncate, change characters, replace an attribute
value with garbage, insert a hostile line) and parses the result. The only
exception allowed out is SourceError, and its message must start with the
path given and name a line.
"""

from __future__ import annotations

import re
from collections.abc import Callable

import pytest
from conftest import DATA
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from p2pview.model import Topology
from p2pview.sources import SourceError
from p2pview.sources.hwloc import (
    parse_hwloc_xml,
    parse_lstopo_console,
    sniff_hwloc_xml,
    sniff_lstopo_console,
)
from p2pview.sources.nccl import parse_nccl_xml, sniff_nccl_xml

pytestmark = pytest.mark.slow

#: Small real seeds: hwloc formats 2.0 (devel09), 3.0 and 1.x; the RCCL dump; lstopo text.
HWLOC_SEEDS = [
    (DATA / "hwloc/xml/devel09-pci.xml").read_text(),
    (DATA / "hwloc/xml/24em64t-2n6c2t-pci.xml").read_text(),
    (DATA / "hwloc/xml-v1-format/24em64t-2n6c2t-pci.xml").read_text(),
]
NCCL_SEEDS = [(DATA / "rccl/hygon-dcu-8x-pex88096.rccl-topo.xml").read_text()]
CONSOLE_SEEDS = [
    (DATA / "hwloc/lstopo-console/2pa-pcidomain32bits.console").read_text(),
    (DATA / "hwloc/lstopo-console/40intel64-4n10c+pci-conflicts.console").read_text(),
]

ATTRIBUTES = [
    "pci_busid",
    "pci_type",
    "bridge_pci",
    "bridge_type",
    "pci_link_speed",
    "nodeset",
    "type",
    "os_index",
    "busid",
    "class",
    "vendor",
    "device",
    "link_width",
    "link_speed",
    "numaid",
    "familyid",
    "dev",
    "version",
    "buses",
    "id",
    "link",
]
GARBAGE = [
    "zz",
    "",
    " ",
    "-1",
    "0x",
    "0xzz",
    "ffff:ff:1f.7",
    "ffffffff:ff:1f.7",
    "0000:00:00.8",
    "0000:[zz-00]",
    "0000:[ff-00]",
    "99999999999999999999",
    "1e999",
    "nan",
    "inf",
    "1-9",
    "0-0",
    "0604 [zzzz:0000] [0000:0000] 00",
    "0604 [8086:1521]",
    "Bridge",
    "PCIDev",
    "HostBridge",
    "NUMANode",
    "\u0663",  # an Arabic-Indic digit: str.isdigit() is True, int() of it is not ASCII
    "\u00b2",  # superscript two: isdigit() is True, int() fails
    "0xf...f,0x1",
    "&amp;&lt;",
    "x" * 300,
]
INSERTS = [
    '<!ENTITY lol "lol">',
    '<!DOCTYPE topology [<!ENTITY a "b">]>',
    "&undefined;",
    "<![CDATA[ <object> ]]>",
    "<!-- -->",
    "]]>",
    '<object type="PCIDev" pci_busid="0000:00:00.0" pci_type="0200 [8086:1521] [0:0] 01"/>',
    '<object type="Bridge" bridge_type="1-1" pci_busid="0001:05:00.0"'
    ' pci_type="0604 [1:2] [3:4] 5">',
    '<object type="Bridge" bridge_type="0-1" bridge_pci="0000:[00-00]"/>',
    '<pci busid="0000:31:00.0" class="0x020000"><pci busid="0000:33:00.0"/></pci>',
    '<pci busid="0000:37:00.0"/>',
    '<cpu numaid="x">',
    "</object>",
    "</pci>",
    "    PCI L#9 (busid=0000:00:01.1 id=8086:7010 class=0101(IDE))",
    "      3 x { PCI L#3-5 (busid=0b:00.1-3 id=1137:00cf class=0200(Ethernet)) }",
    "  HostBridge L#9 (buses=0000:[zz-00])",
    "\x00",
    "\ud800",
]
#: Most structural edits break the XML before the reader sees it, so attribute
#: garbage, which reaches the reader's own checks, is drawn more often.
OPERATIONS = ["delete", "duplicate", "swap", "truncate", "flip"] + ["attr"] * 5 + ["insert"] * 2
CHARS = st.sampled_from([*'<>"/=&;:.[]-x0 \n\t\x00é\ud800', "\u0663"])


def replace_attribute(line: str, name: str, value: str) -> str:
    """Give the first ``name=`` on the line another value, quoted as the original was."""

    def swap(m: re.Match[str]) -> str:
        return f'{name}="{value}"' if m[1].startswith('"') else f"{name}={value}"

    return re.sub(rf'(?<![\w]){name}=("[^"]*"|\S*)', swap, line, count=1)


@st.composite
def mutated(draw: st.DrawFn, seeds: list[str]) -> str:
    text = draw(st.sampled_from(seeds))
    for _ in range(draw(st.integers(1, 3))):
        lines = text.split("\n")
        op = draw(st.sampled_from(OPERATIONS))
        i = draw(st.integers(0, max(0, len(lines) - 1)))
        if op == "delete":
            del lines[i]
        elif op == "duplicate":
            lines.insert(i, lines[i])
        elif op == "swap":
            j = draw(st.integers(0, max(0, len(lines) - 1)))
            lines[i], lines[j] = lines[j], lines[i]
        elif op == "insert":
            lines.insert(i, draw(st.sampled_from(INSERTS)))
        elif op == "attr":
            name = draw(st.sampled_from(ATTRIBUTES))
            value = draw(st.sampled_from(GARBAGE))
            hits = [k for k, line in enumerate(lines) if f"{name}=" in line]
            if hits:
                k = draw(st.sampled_from(hits))
                lines[k] = replace_attribute(lines[k], name, value)
        text = "\n".join(lines)
        if op == "truncate":
            text = text[: draw(st.integers(0, len(text)))]
        elif op == "flip" and text:
            k = draw(st.integers(0, len(text) - 1))
            text = text[:k] + draw(CHARS) + text[k + 1 :]
    return text


def check(parse: Callable[[str, str], Topology], text: str, path: str) -> None:
    for sniff in (sniff_hwloc_xml, sniff_nccl_xml, sniff_lstopo_console):
        assert sniff(text) in (True, False)
    try:
        parse(text, path)
    except SourceError as exc:
        message = str(exc)
        assert message.startswith(f"{path}: "), message
        assert "line " in message, message
        event("rejected: " + ("XML syntax" if "well-formed" in message else "content"))
    else:
        event("accepted")


FUZZ = settings(
    max_examples=2000,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


@FUZZ
@given(mutated(HWLOC_SEEDS))
def test_fuzz_hwloc_xml(text: str) -> None:
    check(parse_hwloc_xml, text, "fuzz/hwloc.xml")


@FUZZ
@given(mutated(NCCL_SEEDS))
def test_fuzz_nccl_xml(text: str) -> None:
    check(parse_nccl_xml, text, "fuzz/nccl-topo.xml")


@FUZZ
@given(mutated(CONSOLE_SEEDS))
def test_fuzz_lstopo_console(text: str) -> None:
    check(parse_lstopo_console, text, "fuzz/lstopo.console")


def test_seeds_parse_unmutated() -> None:
    for text in HWLOC_SEEDS:
        assert len(parse_hwloc_xml(text, "seed")) > 0
    for text in NCCL_SEEDS:
        assert len(parse_nccl_xml(text, "seed")) > 0
    for text in CONSOLE_SEEDS:
        assert len(parse_lstopo_console(text, "seed")) > 0
