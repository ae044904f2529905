"""`p2pview verify` against the oracle kernel booted under QEMU (marker: kernel).

Opt-in: these boot real guests (about 10-20 s each under TCG), so they run only
when asked for, with `pytest -m kernel` (or P2PVIEW_KERNEL_TESTS=1), and then
skip with the reason when QEMU or the cached kernel
(tools/oracle-kernel/build.sh) is missing. The default `pytest` run stays fast
even on a machine that has the kernel cached.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from p2pview.qemu.initramfs import build_initramfs, build_module, cache_dir
from p2pview.qemu.verify import Job, VerifyResult, run_jobs

pytestmark = pytest.mark.kernel


def _oracle(config: pytest.Config) -> Path:
    asked = "kernel" in (config.getoption("markexpr") or "")
    if not asked and os.environ.get("P2PVIEW_KERNEL_TESTS") != "1":
        pytest.skip("boots QEMU guests: run with `pytest -m kernel` (or P2PVIEW_KERNEL_TESTS=1)")
    if shutil.which("qemu-system-x86_64") is None:
        pytest.skip("qemu-system-x86_64 not installed (apt-get install qemu-system-x86)")
    done = sorted((cache_dir() / "oracle-kernel").glob("*/done"))
    if not done:
        pytest.skip("no cached oracle kernel: run tools/oracle-kernel/build.sh (~8 min)")
    return done[-1].parent


@pytest.mark.parametrize(
    ("source", "cpu"),
    [
        ("switch-nvme", "qemu64"),  # a switch, two host bridges
        ("multifunction-acs", "qemu64"),  # multi-function under an ACS root port (config_acs)
        ("multifunction-acs", "EPYC"),  # the same, THRU_HOST_BRIDGE through cpu_supports_p2pdma
    ],
)
def test_every_pair_agrees_with_the_kernel(source, cpu, request):
    oracle = _oracle(request.config)
    initrd = build_initramfs(build_module(oracle / "build"))
    (result,) = run_jobs([Job(source, cpu)], oracle / "bzImage", initrd, timeout=600)
    assert isinstance(result, VerifyResult), result
    assert result.release.startswith("6.12")
    assert result.pairs
    assert not result.disagreements, [
        (str(p.provider), str(p.client), p.kernel_map, p.kernel_dist, p.engine)
        for p in result.disagreements
    ]


def _patched_qemu() -> Path:
    found = sorted((cache_dir() / "qemu-acs").glob("*/install/bin/qemu-system-x86_64"))
    found = [q for q in found if (q.parents[2] / "done").is_file()]
    if not found:
        pytest.skip("no cached QEMU with downstream-port ACS: run tools/qemu-acs/build.sh (~3 min)")
    return found[-1]


@pytest.mark.parametrize(
    ("source", "cpu"),
    [
        ("switch-nvme-acs", "qemu64"),  # ACS RR/CR on the switch's downstream ports
        ("switch-nvme-acs", "EPYC"),  # the same, redirected through the host bridge
    ],
)
def test_switch_downstream_port_acs_agrees_with_the_kernel(source, cpu, request):
    oracle = _oracle(request.config)
    qemu = _patched_qemu()
    initrd = build_initramfs(build_module(oracle / "build"))
    (result,) = run_jobs(
        [Job(source, cpu)], oracle / "bzImage", initrd, str(qemu), timeout=600, dsp_acs=True
    )
    assert isinstance(result, VerifyResult), result
    assert not result.disagreements, [
        (str(p.provider), str(p.client), p.kernel_map, p.kernel_dist, p.engine)
        for p in result.disagreements
    ]
    # the kernel saw the redirect: two NVMe below one switch are not BUS_ADDR
    siblings = [p for p in result.pairs if p.engine[1] == 4 and p.dio is not None]
    assert siblings and all(p.kernel_map != "BUS_ADDR" for p in siblings)
    assert "ACS redirect is set between the client and provider" in result.console
