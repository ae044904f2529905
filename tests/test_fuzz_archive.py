"""Property fuzzing of the archive reader, the tree's link resolution, scenarios and shape checks.

The rules: a reader returns or raises SourceError naming the input; it never
writes anything (a canary directory beside the archive stays as it was); link
resolution inside a tree agrees with the kernel's own path walk wherever that
walk stays inside the tree; the shape checks let through exactly the
documents that the standard parsers read without recursing too deep.
"""

from __future__ import annotations

import json
import os
import tempfile
import tomllib
from pathlib import Path

from hostile import M, compressed, good_capture, tar_bytes, write_tree
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from mutations import mutated_lines

from p2pview.iosim.scenario import scenario_from_mapping
from p2pview.sources import SourceError, load_source
from p2pview.sources.archive import ArchiveTree, _Builder, _Node, _Skipped
from p2pview.sources.bundled import bundled_scenarios
from p2pview.sources.checks import MAX_NESTING, check_json_shape, check_toml_shape
from p2pview.sources.readfile import load_toml
from p2pview.sources.tree import Dangling, DiskTree, NodeType

FUZZ = settings(
    max_examples=int(os.environ.get("P2PVIEW_FUZZ_EXAMPLES", "200")),
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)

NVME = "sys/devices/pci0000:00/0000:00:01.0/0000:01:00.0"
NAMES = [
    "sys/bus/pci/devices/a",
    "sys/bus/pci/devices/a/x",
    "sys/bus/pci/devices/a/x/pwned",
    "sys/bus/pci/devices/0000:02:00.0",
    "sys/bus/pci/devices/0000:01:00.0",
    f"{NVME}/config",
    f"{NVME}/vendor",
    f"{NVME}/p2pmem",
    f"{NVME}/p2pmem/size",
    f"{NVME}/resource",
    "sys/devices/pci0000:00/0000:00:01.0",
    "proc/cpuinfo",
    "proc/cmdline",
    "p2pview-capture.json",
    "/sys/bus/pci/devices/0000:03:00.0",
    "../sys/bus/pci/devices/0000:04:00.0",
    "m/sys/devices/pci0000:00/0000:00:02.0/vendor",
]
TARGETS = [
    "../../..",
    "../../../..",
    "../../../../../../../../etc",
    "/",
    "/proc/self",
    "/dev/zero",
    "a",
    "x",
    "0000:01:00.0",
    "../../../devices/pci0000:00/0000:00:01.0/0000:01:00.0",
    "/sys/devices/pci0000:00/0000:00:01.0",
    f"/{NVME}/vendor",
    "",
]
member = st.builds(
    M,
    name=st.sampled_from(NAMES),
    kind=st.sampled_from("fffllhdpc"),
    data=st.sampled_from([b"", b"0x144d\n", b"-1\n", b"\xff" * 64, b"0x" + b"f" * 100]),
    link=st.sampled_from(TARGETS),
)


def _listing(path: Path) -> list[str]:
    return sorted(str(p.relative_to(path)) for p in path.rglob("*"))


@FUZZ
@given(
    st.lists(member, max_size=12),
    st.booleans(),
    st.sampled_from(["gz", "tar", "bz2", "xz"]),
)
def test_archives_from_random_members_read_or_fail_in_one_line(extra, with_good, how):
    members = [*(good_capture() if with_good else []), *extra]
    with tempfile.TemporaryDirectory() as tmp:
        base = Path(tmp)
        canary = base / "canary"
        canary.mkdir()
        (canary / "keep").write_text("canary")
        archive = base / f"fuzz.tar.{how}"
        archive.write_bytes(compressed(tar_bytes(members), how))
        before = _listing(base)
        try:
            loaded = load_source(str(archive))
        except SourceError as exc:
            assert str(exc).startswith(str(archive)), exc
        else:
            assert len(loaded.topology) <= 5
        assert _listing(base) == before


RAW = tar_bytes(good_capture())


@FUZZ
@given(st.data(), st.sampled_from(["tar", "gz"]))
def test_damaged_archives_read_or_fail_in_one_line(data, how):
    raw = bytearray(compressed(RAW, how))
    for _ in range(data.draw(st.integers(1, 4))):
        action = data.draw(st.sampled_from(["flip", "cut", "zero", "insert"]))
        at = data.draw(st.integers(0, max(len(raw) - 1, 0)))
        if action == "flip" and raw:
            raw[at] ^= data.draw(st.integers(1, 255))
        elif action == "cut":
            del raw[at:]
        elif action == "zero":
            raw[at : at + 512] = bytes(len(raw[at : at + 512]))
        else:
            raw[at:at] = data.draw(st.binary(min_size=1, max_size=600))
    with tempfile.TemporaryDirectory() as tmp:
        archive = Path(tmp) / f"fuzz.tar.{how}"
        archive.write_bytes(bytes(raw))
        try:
            loaded = load_source(str(archive))
        except SourceError as exc:
            assert str(exc).startswith(str(archive)), exc
        else:
            assert len(loaded.topology) <= 3


# -- link resolution ------------------------------------------------------------------

PARTS = ["a", "b", "c", "d"]
layout_entry = st.tuples(
    st.lists(st.sampled_from(PARTS), min_size=1, max_size=3).map("/".join),
    st.sampled_from(["d", "f", "l"]),
    st.lists(st.sampled_from([*PARTS, "..", "."]), min_size=1, max_size=4).map("/".join),
)


def _memory_tree(members: list[M]) -> ArchiveTree:
    """The in-memory tree of these members, as the archive reader builds it."""
    builder = _Builder(_Skipped())
    for m in members:
        if m.kind == "d":
            node = _Node(NodeType.DIR)
        elif m.kind == "f":
            node = _Node(NodeType.FILE, data=m.data, size=len(m.data))
        else:
            node = _Node(NodeType.LINK, target=m.link)
        builder.place(m.name, node)
    return ArchiveTree("memory", builder.top, [])


def _as_tree(layout: list[tuple[str, str, str]]) -> list[M]:
    """The entries that keep the layout a tree: nothing below a file or a link."""
    kinds: dict[str, str] = {}
    for name, kind, _target in layout:
        prefixes = ["/".join(name.split("/")[:i]) for i in range(1, name.count("/") + 1)]
        if name in kinds or any(kinds.get(p, "d") != "d" for p in prefixes):
            continue
        if kind != "d" and any(k.startswith(name + "/") for k in kinds):
            continue
        kinds[name] = kind
    by_name = {name: (kind, target) for name, kind, target in layout}
    return [
        M(name, kind, b"x" if kind == "f" else b"", by_name[name][1])
        for name, kind in kinds.items()
    ]


@FUZZ
@given(st.lists(layout_entry, max_size=10), st.lists(st.sampled_from([*PARTS, ".."]), max_size=5))
def test_resolution_agrees_with_the_kernel_inside_the_tree(layout, path_parts):
    """A tree on disk and the same tree in memory resolve alike; the OS agrees inside."""
    members = _as_tree(layout)
    rel = "/".join(path_parts)
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "root"
        root.mkdir()
        write_tree(root, members)
        outcomes = []
        for tree in (DiskTree(root), _memory_tree(members)):
            try:
                outcomes.append("/".join(tree.resolve(rel)))
            except Dangling as exc:
                outcomes.append(type(exc).__name__)
        assert outcomes[0] == outcomes[1], (rel, outcomes)
        if outcomes[0] not in ("Missing", "Escapes", "Loops"):
            real = os.path.realpath(root / rel) if rel else str(root)
            assert real == str(root / outcomes[0]).rstrip("/"), (rel, real, outcomes)


# -- scenarios and shapes --------------------------------------------------------------

SCENARIO_SEEDS = [path.read_text() for _name, path in bundled_scenarios()]


@FUZZ
@given(mutated_lines(SCENARIO_SEEDS))
def test_scenario_files_read_or_fail_in_one_line(text):
    try:
        scenario_from_mapping(load_toml(text, "fuzz.toml"), "fuzz.toml")
    except SourceError as exc:
        assert str(exc).startswith("fuzz.toml: "), exc


json_value = st.recursive(
    st.one_of(st.integers(), st.text(max_size=5), st.booleans(), st.none()),
    lambda inner: st.one_of(
        st.lists(inner, max_size=2), st.dictionaries(st.text(max_size=3), inner, max_size=2)
    ),
    max_leaves=60,
)


def _depth(value: object) -> int:
    if isinstance(value, list):
        return 1 + max((_depth(v) for v in value), default=0)
    if isinstance(value, dict):
        return 1 + max((_depth(v) for v in value.values()), default=0)
    return 0


@FUZZ
@given(json_value, st.integers(0, 40))
def test_the_json_check_passes_exactly_what_is_shallow_enough(value, wrap):
    for _ in range(wrap):
        value = [value]
    text = json.dumps(value)
    try:
        check_json_shape(text)
    except ValueError:
        assert _depth(value) > MAX_NESTING
    else:
        assert _depth(value) <= MAX_NESTING
        assert json.loads(text) == value


@FUZZ
@given(
    st.integers(0, 40),
    st.sampled_from(["{b = ", "["]),
    st.text(st.characters(exclude_categories=["Cs", "Cc"]), max_size=8),
)
def test_the_toml_check_passes_exactly_what_is_shallow_enough(depth, opener, word):
    closer = "}" if opener.startswith("{") else "]"
    inner = json.dumps(word, ensure_ascii=False)  # a TOML basic string, brackets and all
    text = "a = " + opener * depth + inner + closer * depth + "\n"
    try:
        check_toml_shape(text)
    except ValueError:
        assert depth > MAX_NESTING
    else:
        assert depth <= MAX_NESTING
        tomllib.loads(text)
