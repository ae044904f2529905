"""Format detection looks past prompts, command lines and fences; refusals say why.

Dumps reach p2pview pasted from terminals and bug reports: ``$ lspci -tv``
above the tree, sudo's password prompt, a Markdown fence around it all.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from p2pview.cli import main
from p2pview.sources import SourceError, load_source
from p2pview.sources.formats import FORMATS, WRAP_LINES, detect, refusals, unwrap

DATA = Path(__file__).parent / "data"
ROOT = Path(__file__).resolve().parents[1]

#: A dump of each text format, and the name detection must give it.
SAMPLES = [
    (DATA / "pciutils" / "golden" / "tree-asus-p6t6.tv", "lspci-tree"),
    (DATA / "pciutils" / "golden" / "tree-asus-p6t6.vvvnn", "lspci-verbose"),
    (DATA / "pciutils" / "cap-aer-root", "lspci-hex"),
    (DATA / "hwloc" / "lstopo-console" / "16intel64-manyVFs.console", "lstopo"),
    (DATA / "hwloc" / "xml" / "nvidiaDGX2.xml", "hwloc-xml"),
    (DATA / "rccl" / "hygon-dcu-8x-pex88096.rccl-topo.xml", "nccl-xml"),
    (ROOT / "topologies" / "hgx-8gpu.toml", "topology"),
]

#: What people paste around a dump: (before, after).
WRAPPINGS = [
    ("$ lspci -tv\n", ""),
    ("# lspci -vvv\n", ""),
    ("user@host:~$ lstopo -v\n", "user@host:~$ \n"),
    ("[alice@gpu01 ~]$ sudo lspci -vvv\n[sudo] password for alice: \n", ""),
    ("(venv) root@node:/tmp# cat dump.txt\n\n\n", "root@node:/tmp# exit\n"),
    ("\n\n```\n", "```\n"),
    ("```text\n$ nvidia-smi topo -m; lspci -tv\n", "\n```\n\n"),
    ("sudo lspci -tv\n", ""),
]


def _shape(path: str) -> list[tuple[str, str | None]]:
    topo = load_source(path).topology
    return [(str(d.bdf), None if d.parent is None else str(d.parent)) for d in topo.devices]


@pytest.mark.parametrize(("sample", "name"), SAMPLES, ids=[n for _, n in SAMPLES])
@pytest.mark.parametrize(("before", "after"), WRAPPINGS)
def test_wrapped_dumps_read_as_the_bare_ones(
    tmp_path: Path, sample: Path, name: str, before: str, after: str
) -> None:
    text = sample.read_text()
    fmt = detect(before + text + after)
    assert fmt is not None and fmt.name == name
    wrapped = tmp_path / "pasted.txt"
    wrapped.write_text(before + text + after)
    assert _shape(str(wrapped)) == _shape(str(sample))


def test_unwrap_blanks_lines_and_keeps_their_count() -> None:
    text = "$ lspci -tv\n-[0000:00]---00.0  Host\n$ \n"
    out = unwrap(text)
    assert out.text == "\n-[0000:00]---00.0  Host\n\n"
    assert out.skipped == ("line 1: a shell command line", "line 3: a shell prompt")
    xml = unwrap('$ lstopo --of xml\n<?xml version="1.0"?>\n<topology>\n</topology>\n')
    # XML wants its declaration first: it moves up, every element keeps its line
    assert xml.text == '<?xml version="1.0"?>\n\n<topology>\n</topology>\n'


def test_line_numbers_survive_unwrapping(tmp_path: Path) -> None:
    broken = tmp_path / "broken.txt"
    broken.write_text("$ lspci -tv\n-[0000:00]-+-00.0  Host\n           +-zz.0  Bad\n")
    with pytest.raises(SourceError, match=r"broken.txt: line 3: "):
        load_source(str(broken))


def test_comments_are_not_prompts() -> None:
    # topology files start with comments; only '# <a command p2pview knows>' is a root prompt
    text = "# my machine\n# lspci said so\n[[device]]\n"
    assert unwrap(text).text == text
    assert unwrap("# lspci -tv\n-[0000:00]-\n").skipped == ("line 1: a shell command line",)


def test_nothing_recognised_lists_every_format_and_why(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    junk = Path("junk.txt")
    junk.write_text("$ lspci -tv\nbash: lspci: command not found\n")
    with pytest.raises(SourceError) as err:
        load_source(str(junk))
    message = str(err.value)
    first, *tried = message.splitlines()
    assert first.startswith(f"{junk}: not a format p2pview reads (line 2 is 'bash: lspci:")
    assert "--format NAME forces one). Each format wants:" in first
    assert [line.split(":")[0].strip() for line in tried] == [f.name for f in FORMATS]
    assert "lspci-tree: a first line like '-[0000:00]-+-00.0'" in message
    assert "more characters" not in message  # every line fits in a bounded message
    xml = refusals("<?xml version='1.0'?>\n<html></html>\n")
    assert dict(xml)["hwloc-xml"] == "XML with root <topology>, not <html>"


def test_a_broken_topology_file_gets_its_parser_error(tmp_path: Path) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text('name = "x"\n[[device]\n')
    with pytest.raises(SourceError) as err:
        load_source(str(bad))
    lines = str(err.value).splitlines()
    assert lines[1].startswith("  topology: line 2: invalid TOML")
    assert (
        lines[2]
        == "  others: "
        + ", ".join(f.name for f in FORMATS if f.name != "topology")
        + ": not these either"
    )


def test_format_option_reads_a_wrapped_dump(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    tree = (DATA / "pciutils" / "golden" / "cap-aer-root.tv").read_text()
    wrapped = tmp_path / "aer.txt"
    wrapped.write_text("user@host:~$ lspci -tv\n" + tree)
    assert main(["matrix", "--format", "lspci-tree", str(wrapped)]) == 0
    assert main(["matrix", str(wrapped)]) == 0
    assert main(["matrix", "--format", "lspci-verbose", str(wrapped)]) == 2
    assert "line 2: expected a device line" in capsys.readouterr().err


def test_detection_is_bounded() -> None:
    # a huge paste: detection reads its head, unwrapping only a few lines at each end
    noise = "$ echo\n" * (WRAP_LINES * 4)
    body = "x" * 80 + "\n"
    text = noise + body * 200_000  # 16 MB
    start = time.perf_counter()
    assert detect(text) is None
    assert not unwrap(text).skipped  # more wrapping than it looks at: left alone
    assert time.perf_counter() - start < 2.0


def test_commands_between_lspci_runs_are_blanked(tmp_path: Path) -> None:
    # one 'lspci -vvv -s X' per device, pasted with the prompts: issue 12's dumps
    vvv = (DATA / "pciutils" / "golden" / "tree-asus-p6t6.vvvnn").read_text()
    blocks = [b for b in vvv.split("\n\n") if b.strip()]
    session = "".join(
        f"user@host:~$ sudo lspci -vvv -s {block.split()[0]}\n{block}\n" for block in blocks[:6]
    )
    pasted = tmp_path / "session.txt"
    pasted.write_text(session)
    topo = load_source(str(pasted)).topology
    assert [d.bdf.short() for d in topo.devices] == [b.split()[0] for b in blocks[:6]]
    # the first prompt is wrapping; the others sit between outputs
    assert len(unwrap(session).skipped) == 1


def test_a_tree_excerpt_from_a_later_bus(tmp_path: Path) -> None:
    # a mail quoting part of a multi-bus drawing starts at ' +-[0000:80]-'
    excerpt = tmp_path / "excerpt.txt"
    excerpt.write_text(
        "admin@node:~$ sudo lspci -t -vvv\n"
        " +-[0000:80]-+-00.0  Advanced Micro Devices, Inc. [AMD] Starship/Matisse Root Complex\n"
        " |           +-01.1-[81]----00.0  Mellanox Technologies MT28908 Family [ConnectX-6]\n"
        " |           \\-03.1-[82]----00.0  Samsung Electronics Co Ltd NVMe SSD Controller"
        " PM9A1/PM9A3/980PRO\n"
    )
    topo = load_source(str(excerpt)).topology
    shape = {d.bdf.short(): d.parent and d.parent.short() for d in topo.devices}
    assert shape == {
        "80:00.0": None,
        "80:01.1": None,
        "80:03.1": None,
        "81:00.0": "80:01.1",
        "82:00.0": "80:03.1",
    }
    assert topo[topo.resolve("82:00.0")].ids == "144d:a80a"
