"""Fuzz the three lspci readers with mutated real inputs.

Seeds are the pciutils dumps and lspci 3.9.0's readings of them
(tests/data/pciutils). Each example applies a few random edits: line
deletions, duplications, swaps and truncations, garbage lines, character
flips, hex byte flips aimed at the header and capability areas, and a cut of
the whole text. The only exception a reader may raise is SourceError, and its
message must start with the file name and name a line or an offset.
"""

from __future__ import annotations

import random
import re
from collections.abc import Callable
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from p2pview.model import Topology
from p2pview.sources.checks import SourceError
from p2pview.sources.lspci import parse_lspci_hex, parse_lspci_tree, parse_lspci_verbose

DATA = Path(__file__).parent / "data" / "pciutils"
GOLDEN = DATA / "golden"
PATH = "fuzzed/lspci.txt"

HEX_SEEDS = [
    (DATA / name).read_text()
    for name in (
        "cap-aer-root",
        "cap-dpc",
        "cap-dvsec-cxl",
        "cap-exp-lnkcap2",
        "cap-pcie-1",
        "tree-fsl-p2020",
        "PCI-X-bridges-and-domains",
        "tree-fujitsu-p8010",
        "tree-asus-p6t6",
    )
]
TREE_SEEDS = [p.read_text() for p in sorted(GOLDEN.glob("*.t*"))]
VERBOSE_SEEDS = [p.read_text() for p in sorted(GOLDEN.glob("*.vvv*"))] + [
    (DATA / name).read_text() for name in ("cap-aer-root", "cap-dpc", "cap-exp-lnkcap2")
]

#: Lines that look almost right to one reader or another.
TRICKY_LINES = [
    "",
    " ",
    "\t",
    "00:",
    "00: zz",
    "00: 86 80 05 34 00 00 10 00 12 00 00 06 00 00 00 00 00",
    "ff0: ff ff ff ff ff ff ff ff ff ff ff ff ff ff ff ff ff",
    "1000: 00",
    "00:00.0",
    "00:1f.7 ",
    "00:20.0 PCI bridge: X",
    "10000:00:00.0 Host bridge: X",
    "ffffffff:ff:1f.7 X: Y",
    "\tBus: primary=00, secondary=00, subordinate=00, sec-latency=0",
    "\tBus: primary=00, secondary=ff, subordinate=00, sec-latency=0",
    "\tCapabilities: [100 v1] Access Control Services",
    "\tCapabilities: [zz] Express (v2) Root Port (Slot+), MSI 00",
    "\tCapabilities: [40] Express (v2) Unknown type 15",
    "\tCapabilities: <access denied>",
    "\t\tACSCap:\tSrcValid+ TransBlk+ ReqRedir+ CmpltRedir+ UpstreamFwd+ EgressCtrl+ DirectTrans+",
    "\t\tACSCtl:\tSrcValid-",
    "\t\tACSCtl:\t",
    "\t\tIOVCtl:\tEnable+ Migration-",
    "\t\tInitial VFs: 8, Total VFs: 8, Number of VFs: 65535, Function Dependency Link: 00",
    "\t\tVF offset: 1, stride: 0, Device ID: 1018",
    "\t\tLnkSta:\tSpeed 999GT/s, Width x99",
    "\tRegion 0: Memory at ffffffffffffffff (64-bit, prefetchable) [size=0]",
    "\tRegion 9: I/O ports at zz [size=4T]",
    "\tNUMA node: -1",
    "\tNUMA node: many",
    "\tIOMMU group: ",
    "\tKernel driver in use: ",
    "lspci: Unable to load libkmod resources: error -2",
    "-[0000:00]-",
    "-+-[0000:00]-+-00.0",
    " +-[0001:00]-\\-01.0-[01]--",
    " |           +-1f.0-[00]----00.0",
    " |           \\-1f.0-[05-02]--+-[0001:05]---00.0",
    "             |               \\-[0000:06]---1f.7  name [8086:zzzz]",
    "0000:00:03.0-[02-05]----00.0",
    "           |         Memory at f0000000 (64-bit, non-prefetchable) [size=16K]",
    "|||||||||||||||||",
    "+-",
    "\\-",
]
FLIP_CHARS = "0123456789abcdefxz:.-+|\\[] \t"

_HEX_LINE = re.compile(r"^[0-9a-f]{2,3}: ")
_HOT_HEX = re.compile(r"^(?:00|10|30|40|90|1[0-6]0): ")


def mutate(rnd: random.Random, seed: str) -> str:
    """A few random edits of ``seed``."""
    lines = seed.splitlines()
    for _ in range(rnd.randint(1, 6)):
        if not lines:
            lines = [""]
        i = rnd.randrange(len(lines))
        op = rnd.randrange(10)
        if op == 0:
            del lines[i]
        elif op == 1:
            lines.insert(i, lines[i])
        elif op == 2:
            j = rnd.randrange(len(lines))
            lines[i], lines[j] = lines[j], lines[i]
        elif op == 3:
            lines.insert(i, rnd.choice(TRICKY_LINES))
        elif op == 4:
            garbage = "".join(chr(rnd.randrange(1, 0x3000)) for _ in range(rnd.randrange(40)))
            lines.insert(i, garbage)
        elif op == 5:
            lines[i] = lines[i][: rnd.randint(0, len(lines[i]))]
        elif op == 6 and lines[i]:
            k = rnd.randrange(len(lines[i]))
            lines[i] = lines[i][:k] + rnd.choice(FLIP_CHARS) + lines[i][k + 1 :]
        elif op in (7, 8):
            hot = [k for k, line in enumerate(lines) if _HOT_HEX.match(line)]
            if op == 8 or not hot:
                hot = [k for k, line in enumerate(lines) if _HEX_LINE.match(line)]
            if hot:
                k = rnd.choice(hot)
                head, _, body = lines[k].partition(": ")
                tokens = body.split(" ")
                t = rnd.randrange(len(tokens))
                tokens[t] = rnd.choice(["00", "01", "02", "05", "10", "7f", "80", "ff"])
                if rnd.randrange(10) == 0:
                    tokens[t] = "".join(rnd.choice("0123456789abcdefg ") for _ in range(3))
                lines[k] = f"{head}: {' '.join(tokens)}"
        else:
            # Drop a whole device block (up to the next blank line).
            j = i
            while j < len(lines) and lines[j].strip():
                j += 1
            del lines[i:j]
    text = "\n".join(lines) + "\n"
    if rnd.randrange(8) == 0:
        text = text[: rnd.randint(0, len(text))]
    return text


def mutated(seeds: list[str]) -> st.SearchStrategy[str]:
    """Mutated copies of the seeds; the edits come from a seeded uniform generator."""
    return st.builds(
        lambda rnd, seed: mutate(rnd, seed),
        st.randoms(use_true_random=True),
        st.sampled_from(seeds),
    )


def _check(parser: Callable[[str, str], Topology], text: str) -> None:
    try:
        topo = parser(text, PATH)
    except SourceError as exc:
        message = str(exc)
        assert message.startswith(f"{PATH}: "), message
        assert "line " in message or "offset " in message, message
    else:
        assert isinstance(topo, Topology)
        for dev in topo:
            assert dev.parent is None or dev.parent in topo


FUZZ = settings(
    max_examples=2000,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


@pytest.mark.slow
@FUZZ
@given(mutated(HEX_SEEDS))
def test_fuzz_parse_lspci_hex(text: str) -> None:
    _check(parse_lspci_hex, text)


@pytest.mark.slow
@FUZZ
@given(mutated(TREE_SEEDS))
def test_fuzz_parse_lspci_tree(text: str) -> None:
    _check(parse_lspci_tree, text)


@pytest.mark.slow
@FUZZ
@given(mutated(VERBOSE_SEEDS))
def test_fuzz_parse_lspci_verbose(text: str) -> None:
    _check(parse_lspci_verbose, text)


ODD_INPUTS = [
    "",
    "\n",
    "\x00\xff",
    "\ufeff00:00.0 X\n",
    "-" * 5000,
    "00:00.0 X\n" + "00: 00\n" * 3,
    # Long runs that would make a careless regular expression quadratic.
    "00:00.0 x" + " " * 200_000 + "y (rev 01)\n\tControl: x\n",
    "00:00.0 X (prog-if" + " " * 100_000 + "\n00:" + " 00" * 64 + "\n",
    "-[0000:00]-+-00.0  " + " " * 100_000 + "[8086:1234\n",
    "-[0000:00]-+-00.0\n" + " " * 100_000 + "\\-01.0\n",
    # Numbers longer than int() converts.
    "00:00.0 X: Y\n\tRegion " + "9" * 5000 + ": Memory at 0 [size=1K]\n",
    "00:00.0 X: Y\n\tNUMA node: " + "9" * 5000 + "\n",
    "00:00.0 X: Y\n\tFlags: NUMA node " + "9" * 5000 + "\n",
    # A drawing nested 254 bridges deep (no recursion limit), and one that loops.
    "-[0000:00]---" + "".join(f"{i % 32:02x}.0-[{i + 1:02x}]----" for i in range(254)) + "00.0\n",
    "0000:01:00.0-[01]----00.0\n",
]


@pytest.mark.parametrize("parser", [parse_lspci_hex, parse_lspci_tree, parse_lspci_verbose])
@pytest.mark.parametrize("text", ODD_INPUTS)
def test_odd_inputs(parser: Callable[[str, str], Topology], text: str) -> None:
    _check(parser, text)
