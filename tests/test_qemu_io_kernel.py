"""`p2pview verify --io` against the oracle kernels with userspace P2PDMA (marker: kernel).

Opt-in like tests/test_qemu_verify.py: `pytest -m kernel` (or
P2PVIEW_KERNEL_TESTS=1) boots switch-nvme on each cached release and checks every
generated O_DIRECT scenario against QEMU's NVMe trace; a release without a
cached kernel is skipped with the command that builds it.
"""

from __future__ import annotations

import pytest
from test_qemu_verify import _oracle

from p2pview.qemu.iocheck import run_all

pytestmark = pytest.mark.kernel


@pytest.mark.parametrize("release", ["6.12", "7.2", "7.3"])
def test_every_o_direct_scenario_agrees_with_the_kernel(release, request):
    oracle = _oracle(request.config, release)
    (boot,) = run_all(["switch-nvme"], oracle / "bzImage", timeout=600)
    assert boot.error is None, boot.error
    assert boot.release.startswith(release + ".")
    assert len(boot.results) >= 20
    assert not boot.disagreements, [(r.name, r.differences) for r in boot.disagreements]
    # Commands reached the controller, P2P ones included.
    assert sum(r.commands for r in boot.results) > 40
