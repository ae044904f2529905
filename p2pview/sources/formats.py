"""The file formats p2pview reads, and detection from content.

Detection never trusts the file name: each format has a ``sniff`` test on the
head of the text, tried in the order of :data:`FORMATS` (the most specific
first). ``--format NAME`` skips detection.

Dumps pasted from a terminal or a bug report often carry what is around the
output: the command line and its prompt (``$ lspci -tv``, ``user@host:~$
lstopo -v``, ``# lspci -vvv``), sudo's password prompt, blank lines, Markdown
fences. :func:`unwrap` blanks such lines at the head and the tail (so the
readers' line numbers still match the file) before any format looks at the
text; it looks at a bounded number of lines only. When no format accepts the
text, :func:`refusals` says, for each, what it looked for.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from importlib import import_module
from typing import Any

from p2pview.model import Topology
from p2pview.sources.checks import SourceError, cut, quote
from p2pview.sources.sniff import (
    sniff_hwloc_xml,
    sniff_lstopo_console,
    sniff_nccl_xml,
    xml_root_tag,
)
from p2pview.sources.topofile import looks_like_topology, parse_topology_text


def _lazy(module: str, name: str) -> Callable[..., Any]:
    """``module.name``, imported on its first call.

    Detection stops at the first format that accepts a text, and a reader is
    needed only for the format chosen: a topology file is detected and read
    without the dump readers (an XML parser, the PCI name table, the sysfs
    reader), whose tests come after its own or live in
    :mod:`p2pview.sources.sniff`.
    """

    def call(*args: Any) -> Any:
        return getattr(import_module(f"p2pview.sources.{module}"), name)(*args)

    call.__name__ = call.__qualname__ = name
    return call


@dataclass(frozen=True, slots=True)
class Format:
    """A readable file format.

    ``parse`` is ``None`` for formats that are not topologies (an
    ``nvidia-smi topo -m`` matrix is a labelling, read by ``p2pview compare``).
    """

    name: str
    description: str
    sniff: Callable[[str], bool]
    parse: Callable[[str, str], Topology] | None
    #: For formats without ``parse``: what to do with such a file instead.
    not_a_topology: str = ""
    #: What the sniff test looks for, said when it refuses a text ("Each format wants: ...").
    wants: str = ""
    #: A more precise refusal for a given head of text (``None``: say ``wants``).
    why_not: Callable[[str], str | None] = field(default=lambda _head: None)
    #: Output of a command run several times in one terminal (``lspci -vvv -s X``
    #: once per device): prompts and command lines between the outputs are blanked too.
    sessions: bool = False

    def refusal(self, head: str) -> str:
        """Why this format's sniff test refuses ``head``, in a few words."""
        return self.why_not(head) or self.wants

    def prepare(self, text: str) -> str:
        """The text this format's reader gets (see :attr:`sessions`)."""
        return blank_commands(text).text if self.sessions else text


def _xml_root(wanted: str) -> Callable[[str], str | None]:
    def why(head: str) -> str | None:
        tag = xml_root_tag(head)
        if tag is None:
            return f"XML with root <{wanted}> (no XML here)"
        return f"XML with root <{wanted}>, not <{tag[:20]}>"

    return why


FORMATS: tuple[Format, ...] = (
    Format(
        "hwloc-xml",
        "hwloc XML (lstopo --of xml), formats 1.x, 2.x, 3.x: tree, IDs, link bandwidth,"
        " NUMA; no ACS",
        sniff_hwloc_xml,
        _lazy("hwloc", "parse_hwloc_xml"),
        why_not=_xml_root("topology"),
    ),
    Format(
        "nccl-xml",
        "NCCL/RCCL topology dump (NCCL_TOPO_DUMP_FILE): the PCI tree as NCCL saw it",
        sniff_nccl_xml,
        _lazy("nccl", "parse_nccl_xml"),
        why_not=_xml_root("system"),
    ),
    Format(
        "lstopo",
        "lstopo -v text: tree, IDs, link bandwidth; no ACS",
        sniff_lstopo_console,
        _lazy("hwloc", "parse_lstopo_console"),
        wants="a 'Machine' line first, PCI lines with busid=",
    ),
    Format(
        "topology",
        "p2pview topology file (TOML, or JSON with the same schema)",
        looks_like_topology,
        parse_topology_text,
        wants="a [[device]] table or the format tag",
    ),
    Format(
        "nvidia-smi",
        "'nvidia-smi topo -m' matrix (a labelling of GPU/NIC pairs, not a topology)",
        _lazy("nvsmi", "sniff_nvsmi_topo"),
        None,
        not_a_topology="compare it with a topology of the same machine:"
        " p2pview compare SOURCE FILE",
        wants="a 'GPU0 GPU1 ...' header, then 'GPU0  X ...'",
    ),
    # hex before verbose: a -vvxxxx dump passes both tests.
    Format(
        "lspci-hex",
        "lspci -xxx/-xxxx/-vvxxxx dump (what lspci -F reads): config space, ACS, tree",
        _lazy("lspci", "sniff_lspci_hex"),
        _lazy("lspci", "parse_lspci_hex"),
        wants="'BB:DD.F' lines, then '00: xx xx ...' hex",
        sessions=True,
    ),
    Format(
        "lspci-tree",
        "lspci -tv/-tvnn tree: names and parent links only (ACS unknown)",
        _lazy("lspci", "sniff_lspci_tree"),
        _lazy("lspci", "parse_lspci_tree"),
        wants="a first line like '-[0000:00]-+-00.0'",
        sessions=True,
    ),
    Format(
        "lspci-verbose",
        "lspci -vvv/-vvvnn text: Bus: lines, PCIe port types, ACSCap/ACSCtl",
        _lazy("lspci", "sniff_lspci_verbose"),
        _lazy("lspci", "parse_lspci_verbose"),
        wants="'BB:DD.F class: name', then indented lines",
        sessions=True,
    ),
)


def by_name(name: str) -> Format | None:
    """The format called ``name``."""
    return next((f for f in FORMATS if f.name == name), None)


#: How much of a text detection looks at (sniff tests and :func:`unwrap`).
HEAD_CHARS = 65536
#: How many lines at the head, and at the tail, :func:`unwrap` may blank.
WRAP_LINES = 64

_FENCE_RE = re.compile(r"^\s*(?:```|~~~)[\w.+-]*\s*$")
#: A shell prompt: an optional ``(venv)``, then ``[user@host dir]`` or
#: ``user@host:~`` (no spaces, not starting an XML tag), then ``$ # % >``.
_PROMPT_RE = re.compile(
    r"^\s*(?:\([^)\n]{0,80}\)\s*)?(?P<who>\[[^\]\n]{0,200}\]|[^\s$#%><\[(]{0,200})"
    r"(?P<sign>[$#%>\u276f])(?:\s+(?P<cmd>.*))?$"
)
#: Commands whose output p2pview reads (a bare command line, or one after ``#``).
_COMMANDS_RE = re.compile(
    r"^(?:sudo\s+(?:-\S+\s+)*)?(?:\S*/)?(?:lspci|lstopo(?:-no-graphics)?|hwloc-ls"
    r"|hwloc-gather-topology|nvidia-smi|rocm-smi|cat|p2pview|python3?)\b"
)
_OTHER_NOISE_RE = re.compile(
    r"^\s*(?:\[sudo\] password for [^:\n]{0,80}:.*|Password:\s*|Script (?:started|done) on .*)$"
)


def _noise(line: str) -> str | None:
    """What a wrapping line is (``"a shell command line"`` ...), ``None`` for content."""
    if not line.strip():
        return "blank"
    if _FENCE_RE.match(line):
        return "a Markdown fence"
    if _OTHER_NOISE_RE.match(line):
        return "a password prompt" if "assword" in line else "a script(1) banner"
    if _COMMANDS_RE.match(line.strip()):
        return "a command line"
    m = _PROMPT_RE.match(line)
    if m is None:
        return None
    cmd = (m["cmd"] or "").strip()
    if m["sign"] == "#" and not m["who"] and cmd and not _COMMANDS_RE.match(cmd):
        return None  # "# text": a comment (topology files start with them), not a root prompt
    return "a shell prompt" if not cmd else "a shell command line"


@dataclass(frozen=True, slots=True)
class Unwrapped:
    """A text with the lines around the dump blanked.

    ``text`` has as many lines as the original (an XML declaration moves to
    the first line, where XML needs it); ``skipped`` says which lines were
    blanked and what they were, e.g. ``"line 1: a shell command line"``.
    """

    text: str
    skipped: tuple[str, ...] = ()


def unwrap(text: str) -> Unwrapped:
    """Blank prompts, command lines, fences and blank lines around a dump.

    Looks at no more than :data:`WRAP_LINES` lines at each end; a text that
    is nothing but such lines is returned as it is.
    """
    lines = text.split("\n")
    lead = 0
    while lead < min(len(lines), WRAP_LINES) and _noise(lines[lead]) is not None:
        lead += 1
    if lead == len(lines) or (lead < len(lines) and _noise(lines[lead]) is not None):
        return Unwrapped(text)  # all wrapping, or more than it looks at: not a dump
    tail = len(lines)
    while tail > max(lead, len(lines) - WRAP_LINES) and _noise(lines[tail - 1]) is not None:
        tail -= 1
    blanked = [n for n in (*range(lead), *range(tail, len(lines))) if lines[n].strip()]
    if not blanked:
        return Unwrapped(text)
    skipped = tuple(f"line {n + 1}: {_noise(lines[n])}" for n in blanked)
    body = lines[lead:tail]
    decl = ""
    if body and body[0].lstrip().startswith("<?xml") and "?>" in body[0]:
        # XML allows nothing before its declaration: move it up, keep the line count
        first = body[0].lstrip()
        end = first.index("?>") + 2
        decl, body[0] = first[:end], first[end:]
    out = [""] * lead + body + [""] * (len(lines) - tail)
    out[0] = decl + out[0] if decl else out[0]
    return Unwrapped("\n".join(out), skipped)


def blank_commands(text: str) -> Unwrapped:
    """Blank prompts and command lines anywhere in ``text`` (blank lines stay as they are).

    For line-oriented lspci output pasted from a terminal session: several
    ``lspci -vvv -s X`` runs, each after its command line. Indented lines
    (the outputs' details and tree continuations) are never looked at.
    """
    lines = text.split("\n")
    skipped: list[str] = []
    for n, line in enumerate(lines):
        if not line.strip() or line[0] in " \t":
            continue
        what = _noise(line)
        if what is not None:
            lines[n] = ""
            skipped.append(f"line {n + 1}: {what}")
    if not skipped:
        return Unwrapped(text)
    return Unwrapped("\n".join(lines), tuple(skipped))


def detect(text: str) -> Format | None:
    """The first format whose sniff test accepts ``text`` (its head, unwrapped)."""
    head = unwrap(text[:HEAD_CHARS]).text
    for fmt in FORMATS:
        if fmt.sniff(head):
            return fmt
    return None


def refusals(text: str) -> list[tuple[str, str]]:
    """For each format, in the order tried, why its sniff test refuses ``text``."""
    head = unwrap(text[:HEAD_CHARS]).text
    return [(fmt.name, fmt.refusal(head)) for fmt in FORMATS if not fmt.sniff(head)]


def first_content_line(text: str) -> tuple[int, str] | None:
    """The first line that is not wrapping (1-based number and text), for error messages."""
    for n, line in enumerate(unwrap(text[:HEAD_CHARS]).text.split("\n")[: WRAP_LINES * 4], 1):
        if line.strip():
            return n, line.strip()
    return None


#: A first line that topology files start with: a table, a key, a JSON object.
_TOMLISH_RE = re.compile(r'^(?:\[|\{|[A-Za-z_][\w-]*\s*=|"[^"]*"\s*:)')


def not_recognised(path: str, text: str) -> str:
    """The error for a text no format accepts: where it starts, and each format's refusal."""
    first = first_content_line(text)
    if first is None:
        start = "it holds no text"
    else:
        number, line = first
        start = f"line {number} is {quote(line)}"
    found = refusals(text)
    if first is not None and _TOMLISH_RE.match(first[1]):
        # it reads like a (broken) topology file: its parser names the line at fault
        try:
            parse_topology_text(text, path)
        except SourceError as exc:
            why = str(exc).removeprefix(f"{path}: ")
            others = ", ".join(name for name, _ in found if name != "topology")
            found = [("topology", cut(why, 160)), ("others", f"{others}: not these either")]
    tried = "".join(f"\n  {name}: {why}" for name, why in found)
    # one short line per format: the whole message stays within MAX_MESSAGE
    return (
        f"{path}: not a format p2pview reads ({start}; --format NAME forces one)."
        f" Each format wants:{tried}"
    )


def names() -> list[str]:
    """Every format name, for ``--format`` choices."""
    return [f.name for f in FORMATS]
