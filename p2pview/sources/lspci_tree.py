r"""Read ``lspci -t`` / ``-tv`` / ``-tvn`` / ``-tvnn`` tree drawings.

pciutils' ``ls-tree.c`` draws the tree one line per leaf. The grammar:

* the tree starts with ``-`` and the host bridge's buses: ``[DDDD:BB]-`` when
  there is one, or one ``+-[DDDD:BB]-`` / ``\\-[DDDD:BB]-`` branch per bus;
* a bus with one function continues with ``--`` and the function; a bus
  with several opens one ``+-`` branch per function and ``\\-`` for the last,
  all at the same column; an empty bus ends the line;
* a function is ``DD.F``; a bridge adds ``-[SS]-`` or ``-[SS-UU]-`` (its
  secondary and subordinate bus), then ``-`` and its bus: its secondary bus
  without a label, or (rare) several ``+-[DDDD:BB]-`` labelled buses when
  lspci placed functions on other buses of its range;
* ``-v`` adds two spaces and the name, ``-nn`` appends ``[vvvv:dddd]``, ``-n``
  prints ``vvvv:dddd`` instead of the name;
* later lines repeat the columns of open branches as ``|`` and spaces, and
  start their own content with ``+-`` or ``\\-`` at the column of the branch
  they continue.

So every function's bus follows from the branch it hangs on, and its parent
is the bridge drawn to its left. Quirks handled: lspci always draws bus
``0000:00`` (its host bridge starts there) even when no function is on it;
with ``-s``/``-d`` filters it keeps ``+-`` branches whose later siblings were
filtered out; newer pciutils print ``-tvv`` base-address lines under a
function (skipped) and start filtered sub-trees with ``DDDD:BB:DD.F`` at
column 0 (their top bridge's parent is not shown).

The result has names and parent links only: ACS is unknown, port types are
``None``; functions drawn with a bus range get header type 1.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import PurePath

from p2pview.model import BDF, Acs, AddressError, PciDevice, Topology
from p2pview.sources.checks import SourceError
from p2pview.sources.lspci_verbose import build_topology, lspci_error, multifunction_slots
from p2pview.sources.names import UNKNOWN_ID, with_names

_FUNC_RE = re.compile(r"(?P<dev>[0-9a-fA-F]{2})\.(?P<fn>[0-7])")
_RANGE_RE = re.compile(r"-\[(?P<s>[0-9a-fA-F]{2})(?:-(?P<u>[0-9a-fA-F]{2}))?\]-")
_LABEL_RE = re.compile(r"\[(?P<d>[0-9a-fA-F]{4,8}):(?P<b>[0-9a-fA-F]{2})\]-")
_TOP_RE = re.compile(r"^(?P<d>[0-9a-fA-F]{4,8}):(?P<b>[0-9a-fA-F]{2}):(?=[0-9a-fA-F]{2}\.[0-7])")
_NAME_IDS_RE = re.compile(r"^(?P<name>.*?) ?\[(?P<v>[0-9a-fA-F]{4}):(?P<d>[0-9a-fA-F]{4})\]$")
_NUM_IDS_RE = re.compile(r"^(?:Device )?(?P<v>[0-9a-fA-F]{4}):(?P<d>[0-9a-fA-F]{4})$")
_BASES_RE = re.compile(
    r"^(?:Region \d+: )?(?:\[virtual\] |\[enhanced\] )?"
    r"(?:Memory at|I/O ports at|Expansion ROM at)\b"
)
_NO_IDS = "lspci -t prints no class, and without -nn no IDs"
#: An excerpt that starts with a later bus of a multi-bus drawing: `` +-[0000:80]-``.
_EXCERPT_RE = re.compile(r"^ [+\\]-\[[0-9a-fA-F]{4,8}:[0-9a-fA-F]{2}\]-")
_SNIFF_RE = re.compile(
    r"^(?:-\+?-?\[[0-9a-fA-F]{4,8}:[0-9a-fA-F]{2}\]-"
    r"|[0-9a-fA-F]{4,8}:[0-9a-fA-F]{2}:[0-9a-fA-F]{2}\.[0-7]-\["
    r"| [+\\]-\[[0-9a-fA-F]{4,8}:[0-9a-fA-F]{2}\]-)"
)


@dataclass(frozen=True, slots=True)
class _Bus:
    r"""Where a ``+-``/``\\-`` branch of functions hangs: a bus and its bridge."""

    domain: int
    bus: int
    parent: BDF | None
    #: The parent's secondary bus; functions elsewhere in its range get a note.
    expected: int | None


@dataclass(frozen=True, slots=True)
class _BusList:
    """A branch of labelled buses ``+-[DDDD:BB]-`` below a bridge (or the host)."""

    domain: int | None
    parent: BDF | None
    secondary: int | None


@dataclass(frozen=True, slots=True)
class _Bridge:
    """A bridge drawn with its range: the next bus hangs below it."""

    bdf: BDF
    secondary: int


@dataclass
class _Func:
    bdf: BDF
    line: int
    parent: BDF | None
    bridge: bool = False
    name: str | None = None
    vendor: int | None = None
    device: int | None = None
    notes: list[str] = field(default_factory=list)
    parent_shown: bool = True


def sniff_lspci_tree(text: str) -> bool:
    """Whether ``text`` starts like an ``lspci -t`` drawing."""
    for line in text.splitlines():
        if line.strip():
            return bool(_SNIFF_RE.match(line))
    return False


def parse_lspci_tree(text: str, path: str) -> Topology:
    """Read an ``lspci -t``-style tree into a topology of names and parent links.

    Raises:
        SourceError: naming the file and line of anything that is not a tree drawing.
    """
    parser = _TreeParser(path)
    for n, raw in enumerate(text.splitlines(), 1):
        parser.line(raw.rstrip("\r"), n)
    if not parser.started:
        raise lspci_error(path, 1, "no lspci -t tree found (it starts with '-[' or '-+-[')")
    funcs = parser.funcs
    multi = multifunction_slots(funcs)
    devices = [_device(f, (f.bdf.domain, f.bdf.bus, f.bdf.dev) in multi) for f in funcs.values()]
    lines = {f.bdf: f.line for f in funcs.values()}
    name = PurePath(path).name
    return build_topology(
        path,
        devices,
        lines,
        f"lspci -t tree {name}: {len(devices)} functions (names and tree only; ACS unknown)",
    )


def _device(f: _Func, multifunction: bool) -> PciDevice:
    notes = list(f.notes)
    if not f.parent_shown:
        notes.append("lspci -t: filtered tree; the bridge above this function is not shown")
    dev = PciDevice(
        bdf=f.bdf,
        vendor=UNKNOWN_ID if f.vendor is None else f.vendor,
        device=UNKNOWN_ID if f.device is None else f.device,
        header_type=1 if f.bridge else 0,
        multifunction=multifunction,
        acs=Acs.unknown(),
        parent=f.parent,
        label=f.name,
        notes=tuple(notes),
    )
    # lspci -t prints no class, and without -n no IDs: take them from the names
    source = "lspci -t prints no class" if f.vendor is not None else _NO_IDS
    return with_names(dev, source, ids_given=f.vendor is not None, class_given=False)


#: What to read next on the current line (the grammar is a chain of tail calls;
#: running it as a loop keeps deep drawings off the Python stack).
_Step = tuple[str, int, object]


class _TreeParser:
    """Consumes the drawing line by line, remembering the open branches by column."""

    def __init__(self, path: str) -> None:
        self.path = path
        self.funcs: dict[BDF, _Func] = {}
        self.branches: dict[int, _Bus | _BusList] = {}
        self.started = False
        #: Newer pciutils repeat sub-trees when filtering; only then may a function recur.
        self.filtered = False

    def fail(self, n: int, col: int, problem: str) -> SourceError:
        return lspci_error(self.path, n, f"column {col + 1}: {problem}")

    def line(self, s: str, n: int) -> None:
        if not s.strip():
            return
        step: _Step | None
        if s[0] == "-":
            # A (new) drawing: the host bridge's buses.
            self.started = True
            self.branches.clear()
            step = ("bridge", 1, None)
        elif m := _TOP_RE.match(s):
            # Newer pciutils with -s/-d: a filtered sub-tree from one bridge.
            self.started = True
            self.filtered = True
            self.branches.clear()
            domain, bus = int(m["d"], 16), int(m["b"], 16)
            step = ("hidden", m.end(), _Bus(domain, bus, None, None))
        elif not self.started and _EXCERPT_RE.match(s):
            # A pasted excerpt that starts at a later bus of the host's list of buses.
            self.started = True
            self.branches = {1: _BusList(None, None, None)}
            step = self.continuation(s, n)
        elif not self.started:
            raise self.fail(n, 0, f"not an lspci -t tree line: {s[:60]!r}")
        else:
            step = self.continuation(s, n)
        while step is not None:
            step = self.dispatch(s, n, step)

    def continuation(self, s: str, n: int) -> _Step | None:
        r"""A line below the first: ``|`` and spaces, then ``+-`` or ``\-`` at an open branch."""
        col = 0
        while col < len(s) and s[col] in " |":
            col += 1
        if col == len(s):
            return None
        rest = s[col:]
        if _BASES_RE.match(rest):
            return None  # -tvv base addresses (newer pciutils)
        if not rest.startswith(("+-", "\\-")):
            raise self.fail(
                n, col, f"expected '+-' or '\\-' to continue a branch, got {rest[:20]!r}"
            )
        branch = self.branches.get(col)
        if branch is None:
            raise self.fail(n, col, "no open branch above this column")
        for c in [c for c in self.branches if c > col]:
            del self.branches[c]
        if isinstance(branch, _Bus):
            return ("function", col + 2, branch)
        return ("label", col + 2, branch)

    def dispatch(self, s: str, n: int, step: _Step) -> _Step | None:
        kind, i, a = step
        if kind == "bridge":
            assert a is None or isinstance(a, _Bridge)
            return self.bridge_buses(s, i, a)
        if kind == "label":
            assert isinstance(a, _BusList)
            return self.labelled_bus(s, i, n, a)
        if kind == "bus":
            assert isinstance(a, _Bus)
            return self.bus(s, i, n, a)
        assert isinstance(a, _Bus)
        return self.function(s, i, n, a, shown=kind != "hidden")

    # -- the grammar, one routine per production ---------------------------------------

    def bridge_buses(self, s: str, i: int, bridge: _Bridge | None) -> _Step | None:
        """After a bridge's ``-``: its buses (``bridge`` None: the host bridge)."""
        if s.startswith(("+-[", "\\-["), i):
            if bridge is None:
                branch = _BusList(None, None, None)
            else:
                branch = _BusList(bridge.bdf.domain, bridge.bdf, bridge.secondary)
            self.branches[i] = branch
            return ("label", i + 2, branch)
        if bridge is None:
            return ("label", i, _BusList(None, None, None))
        bus = _Bus(bridge.bdf.domain, bridge.secondary, bridge.bdf, bridge.secondary)
        return ("bus", i, bus)

    def labelled_bus(self, s: str, i: int, n: int, branch: _BusList) -> _Step:
        m = _LABEL_RE.match(s, i)
        if m is None:
            raise self.fail(n, i, f"expected a bus label '[DDDD:BB]-', got {s[i : i + 20]!r}")
        domain, bus = int(m["d"], 16), int(m["b"], 16)
        if branch.domain is not None and domain != branch.domain:
            raise self.fail(
                n, i, f"bus {m.group(0)[:-1]} below a bridge of domain {branch.domain:04x}"
            )
        return ("bus", m.end(), _Bus(domain, bus, branch.parent, branch.secondary))

    def bus(self, s: str, i: int, n: int, bus: _Bus) -> _Step | None:
        if i >= len(s):
            return None  # an empty bus
        two = s[i : i + 2]
        if two == "--":
            return ("function", i + 2, bus)
        if two in ("+-", "\\-"):
            self.branches[i] = bus
            return ("function", i + 2, bus)
        raise self.fail(n, i, f"expected '--', '+-' or '\\-' after a bus, got {two!r}")

    def function(self, s: str, i: int, n: int, bus: _Bus, *, shown: bool) -> _Step | None:
        m = _FUNC_RE.match(s, i)
        if m is None:
            raise self.fail(n, i, f"expected a function 'DD.F', got {s[i : i + 20]!r}")
        try:
            bdf = BDF(bus.domain, bus.bus, int(m["dev"], 16), int(m["fn"]))
        except AddressError as exc:
            raise self.fail(n, i, str(exc)) from None
        f = _Func(bdf, n, bus.parent, parent_shown=shown)
        if bus.parent is not None and bus.expected is not None and bus.bus != bus.expected:
            f.notes.append(
                f"lspci -t draws bus {bus.bus:02x} below {bus.parent}, whose secondary bus is"
                f" {bus.expected:02x}: the bridges between are not in the listing"
            )
        j = m.end()
        rng = _RANGE_RE.match(s, j)
        if rng is not None:
            f.bridge = True
            self.add(f, n, i)
            j = rng.end()
            if not s.startswith("-", j):
                raise self.fail(n, j, "expected '-' after the bridge's bus range")
            return ("bridge", j + 1, _Bridge(bdf, int(rng["s"], 16)))
        rest = s[j:]
        if rest.startswith("  "):
            self.name(f, rest[2:].strip())
        elif rest.strip():
            raise self.fail(n, j, f"unexpected text after function {bdf.short()}: {rest[:20]!r}")
        self.add(f, n, i)
        return None

    @staticmethod
    def name(f: _Func, text: str) -> None:
        if not text:
            return
        if m := _NAME_IDS_RE.match(text):
            f.vendor, f.device = int(m["v"], 16), int(m["d"], 16)
            f.name = m["name"].strip() or None
        elif m := _NUM_IDS_RE.match(text):
            f.vendor, f.device = int(m["v"], 16), int(m["d"], 16)
        else:
            f.name = text

    def add(self, f: _Func, n: int, col: int) -> None:
        old = self.funcs.get(f.bdf)
        if old is None:
            self.funcs[f.bdf] = f
            return
        if not self.filtered:
            raise self.fail(n, col, f"function {f.bdf} drawn twice (first at line {old.line})")
        # Filtered trees of newer pciutils repeat sub-trees: merge what agrees.
        if old.parent_shown and f.parent_shown and old.parent != f.parent:
            raise self.fail(
                n,
                col,
                f"function {f.bdf} drawn twice with different parents"
                f" ({old.parent or 'root bus'} at line {old.line}, {f.parent or 'root bus'})",
            )
        if not old.parent_shown and f.parent_shown:
            old.parent, old.parent_shown, old.line = f.parent, True, f.line
        old.bridge = old.bridge or f.bridge
        old.name = old.name or f.name
        if old.vendor is None:
            old.vendor, old.device = f.vendor, f.device
