"""Fuzzing the readers this module owns: topology files, config space, sysfs trees.

Seeds are real inputs (the bundled topologies, the captures' config files, a
generated sysfs tree), mutated. The rule: a reader either returns a topology
or raises SourceError naming the file and a line (text) or offset (binary);
nothing else escapes.
"""

from __future__ import annotations

import os
import tarfile
import tempfile
from pathlib import Path

from conftest import DATA
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from mutations import mutated_lines

from p2pview.sources import SourceError, bundled_topologies, load_source, parse_topology_text
from p2pview.sources.configspace import ConfigError, decode
from p2pview.sources.synthetic import generate, write_sysfs_tree
from p2pview.sources.topowrite import to_json

SEEDS = [item.path.read_text() for item in bundled_topologies()[:4]]
SEEDS.append(to_json(load_source("multifunction-acs").topology))
FUZZ = settings(max_examples=2000, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@FUZZ
@given(mutated_lines(SEEDS))
def test_topology_files(text):
    try:
        parse_topology_text(text, "fuzz.toml")
    except SourceError as exc:
        message = str(exc)
        assert message.startswith("fuzz.toml: "), message
        assert "line " in message or message.startswith("fuzz.toml: device: "), message


def _configs(archive: Path) -> list[bytes]:
    with tarfile.open(archive) as tar:
        members = sorted((m for m in tar if m.name.endswith("/config")), key=lambda m: m.name)
        return [tar.extractfile(m).read() for m in members]  # type: ignore[union-attr]


CONFIGS = _configs(DATA / "qemu-guest-captures/switch-qemu64.tar.gz")


@FUZZ
@given(st.sampled_from(CONFIGS), st.data())
def test_config_space(cfg, data):
    raw = bytearray(cfg[: data.draw(st.integers(0, len(cfg)))])
    for _ in range(data.draw(st.integers(0, 8))):
        if raw:
            raw[data.draw(st.integers(0, len(raw) - 1))] = data.draw(st.integers(0, 255))
    try:
        decode(bytes(raw))
    except ConfigError as exc:
        assert "bytes" in str(exc)


_ROOT = Path(tempfile.mkdtemp(prefix="p2pview-fuzz-"))
write_sysfs_tree(generate(12, seed=5), _ROOT)
_FILES = sorted(str(p.relative_to(_ROOT)) for p in _ROOT.rglob("*") if p.is_file())
_LINKS = sorted(str(p.relative_to(_ROOT)) for p in _ROOT.rglob("*") if p.is_symlink())


def _save(target: Path) -> tuple[Path, str | None, bytes | None]:
    if target.is_symlink():
        return target, os.readlink(target), None
    return target, None, target.read_bytes()


def _restore(saved: list[tuple[Path, str | None, bytes | None]]) -> None:
    for target, link, payload in reversed(saved):
        if os.path.lexists(target):
            target.unlink()
        if link is not None:
            os.symlink(link, target)
        else:
            assert payload is not None
            target.write_bytes(payload)


@settings(max_examples=2000, deadline=None, suppress_health_check=list(HealthCheck))
@given(st.data())
def test_sysfs_trees(data):
    """One tree, mutated and put back after each example (copying it each time is too slow)."""
    saved: list[tuple[Path, str | None, bytes | None]] = []
    try:
        for _ in range(data.draw(st.integers(1, 6))):
            target = _ROOT / data.draw(st.sampled_from(_FILES + _LINKS))
            if not os.path.lexists(target):
                continue
            saved.append(_save(target))
            action = data.draw(st.sampled_from(["delete", "truncate", "garbage", "dangle"]))
            if action == "delete" or (action != "dangle" and target.is_symlink()):
                target.unlink()
            elif action == "truncate":
                target.write_bytes(target.read_bytes()[: data.draw(st.integers(0, 70))])
            elif action == "garbage":
                target.write_bytes(data.draw(st.binary(max_size=80)))
            else:
                target.unlink()
                os.symlink("../nowhere", target)
        try:
            loaded = load_source(str(_ROOT))
        except SourceError as exc:
            assert str(exc).startswith(str(_ROOT))
        else:
            assert len(loaded.topology) <= 12
    finally:
        _restore(saved)
