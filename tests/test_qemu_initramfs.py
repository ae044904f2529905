"""The guest's initramfs cache holds up when ``verify --jobs N`` fills it from N threads.

A cold CI run (an empty ``$P2PVIEW_CACHE``) once died here: two guests of
``verify --io`` built the same initramfs at once through one temporary name,
and the second rename found the file gone (FileNotFoundError).
"""

from __future__ import annotations

import gzip
import threading
from pathlib import Path

import pytest

from p2pview.qemu import initramfs


@pytest.fixture
def empty_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    tools = tmp_path / "tools"
    tools.mkdir()
    (tools / "busybox").write_bytes(b"\x7fELF busybox" * 1000)
    (tools / "p2pvhelp").write_bytes(b"\x7fELF helper" * 1000)
    monkeypatch.setenv("P2PVIEW_CACHE", str(tmp_path / "cache"))
    monkeypatch.setattr(initramfs, "find_busybox", lambda: tools / "busybox")
    monkeypatch.setattr(initramfs, "build_helper", lambda: tools / "p2pvhelp")
    return tmp_path / "cache"


def build_at_once(io_list: bytes, threads: int) -> tuple[list[Path], list[BaseException]]:
    """``build_initramfs(None, io_list)`` from ``threads`` threads released together."""
    start = threading.Barrier(threads)
    results: list[Path] = []
    errors: list[BaseException] = []

    def build() -> None:
        start.wait()
        try:
            results.append(initramfs.build_initramfs(None, io_list))
        except BaseException as exc:  # the test reports it
            errors.append(exc)

    workers = [threading.Thread(target=build) for _ in range(threads)]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    return results, errors


def test_guests_building_one_initramfs_at_once_all_get_it_whole(empty_cache: Path) -> None:
    for round_ in range(10):
        io_list = f"scenario-{round_}\n".encode()
        results, errors = build_at_once(io_list, threads=8)
        assert not errors, errors
        assert len(set(results)) == 1
        assert io_list in gzip.decompress(results[0].read_bytes())
    leftovers = [p.name for p in (empty_cache / "guest").iterdir() if p.suffix != ".gz"]
    assert not leftovers
