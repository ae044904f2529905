"""`p2pview verify` against the five oracle kernels booted under QEMU (marker: kernel).

Opt-in: these boot real guests (about 10-20 s each under TCG), so they run only
when asked for, with `pytest -m kernel` (or P2PVIEW_KERNEL_TESTS=1), and then
skip with the reason when QEMU or a release's cached kernel
(tools/oracle-kernel/build.sh RELEASE) is missing. Each release runs the same
checks; the era comes from the image. The default `pytest` run stays fast even
on a machine that has the kernels cached.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from p2pview.kernel import KernelTarget
from p2pview.qemu.initramfs import build_initramfs, build_module, cache_dir
from p2pview.qemu.verify import Job, VerifyResult, run_jobs

pytestmark = pytest.mark.kernel

#: The releases tools/oracle-kernel/build.sh builds.
RELEASES = ["5.10", "6.1", "6.12", "7.2", "7.3"]


def _oracle(config: pytest.Config, release: str) -> Path:
    asked = "kernel" in (config.getoption("markexpr") or "")
    if not asked and os.environ.get("P2PVIEW_KERNEL_TESTS") != "1":
        pytest.skip("boots QEMU guests: run with `pytest -m kernel` (or P2PVIEW_KERNEL_TESTS=1)")
    if shutil.which("qemu-system-x86_64") is None:
        pytest.skip("qemu-system-x86_64 not installed (apt-get install qemu-system-x86)")
    done = sorted((cache_dir() / "oracle-kernel").glob(f"linux-source-{release}_*/done"))
    if not done:
        pytest.skip(
            f"no cached {release} oracle kernel: run tools/oracle-kernel/build.sh {release}"
            " (~6-10 min on 2 cores)"
        )
    return done[-1].parent


def _disagreements(result: VerifyResult) -> list[tuple[object, ...]]:
    return [
        (str(p.provider), str(p.client), p.kernel_map, p.kernel_dist, p.engine, p.dio, p.bar)
        for p in result.disagreements
    ]


@pytest.mark.parametrize("release", RELEASES)
@pytest.mark.parametrize(
    ("source", "cpu"),
    [
        ("switch-nvme", "qemu64"),  # a switch, two host bridges
        ("multifunction-acs", "qemu64"),  # multi-function under an ACS root port (config_acs)
        ("multifunction-acs", "EPYC"),  # the same, THRU_HOST_BRIDGE through cpu_supports_p2pdma
    ],
)
def test_every_pair_agrees_with_the_kernel(release, source, cpu, request):
    oracle = _oracle(request.config, release)
    initrd = build_initramfs(build_module(oracle / "build"))
    (result,) = run_jobs([Job(source, cpu)], oracle / "bzImage", initrd, timeout=600)
    assert isinstance(result, VerifyResult), result
    # the era comes from the image: the release this package builds
    assert result.release.startswith(release + ".")
    assert result.profile == KernelTarget.parse(release).profile.title
    assert result.pairs and all(p.kernel_map is not None for p in result.pairs)
    assert not result.disagreements, _disagreements(result)
    outcomes = {(d.way, d.outcome) for p in result.pairs for d in p.dio_checks}
    if release in ("5.10", "6.1"):
        # no p2pmem/allocate before v6.2, and the BAR's sysfs mmap has no struct pages
        assert outcomes == {("allocate", "ENOENT"), ("bar", "EFAULT")}
        files = next(iter(result.p2pmem_files.values()))
        assert "allocate" not in files and "size" in files
    else:
        assert ("allocate", "ok") in outcomes and ("bar", "EFAULT") in outcomes


def _patched_qemu() -> Path:
    found = sorted((cache_dir() / "qemu-acs").glob("*/install/bin/qemu-system-x86_64"))
    found = [q for q in found if (q.parents[2] / "done").is_file()]
    if not found:
        pytest.skip("no cached QEMU with downstream-port ACS: run tools/qemu-acs/build.sh (~3 min)")
    return found[-1]


@pytest.mark.parametrize("release", RELEASES)
@pytest.mark.parametrize(
    ("source", "cpu"),
    [
        ("switch-nvme-acs", "qemu64"),  # ACS RR/CR on the switch's downstream ports
        ("switch-nvme-acs", "EPYC"),  # the same, redirected through the host bridge
    ],
)
def test_switch_downstream_port_acs_agrees_with_the_kernel(release, source, cpu, request):
    oracle = _oracle(request.config, release)
    qemu = _patched_qemu()
    initrd = build_initramfs(build_module(oracle / "build"))
    (result,) = run_jobs(
        [Job(source, cpu)], oracle / "bzImage", initrd, str(qemu), timeout=600, dsp_acs=True
    )
    assert isinstance(result, VerifyResult), result
    assert not result.disagreements, _disagreements(result)
    # the kernel saw the redirect: two NVMe below one switch are not BUS_ADDR
    siblings = [p for p in result.pairs if p.engine[1] == 4 and p.dio is not None]
    assert siblings and all(p.kernel_map != "BUS_ADDR" for p in siblings)
    assert "ACS redirect is set between the client and provider" in result.console
