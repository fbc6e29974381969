"""The full-kernel tier from the host: the VM image is built (or reused from the cache), boots
under qemu, runs the failover suite with WAN delay inside, and brings the results back; a VM
that does not boot or hangs ends with a clear error and leaves no qemu behind (as root)."""
from __future__ import annotations

import os
import shutil
import xml.etree.ElementTree as ET

import pytest

from egovlab.vm import image, runner
from egovlab.vm.image import VMError

pytestmark = [pytest.mark.vm, pytest.mark.slow,
              pytest.mark.skipif(os.geteuid() != 0, reason="building and booting the VM needs root"),
              pytest.mark.skipif(shutil.which("qemu-system-x86_64") is None, reason="qemu is not installed")]


@pytest.fixture(scope="module")
def img():
    return image.build(progress=lambda *_: None)


@pytest.fixture(autouse=True)
def no_vm_left():
    import glob
    import tempfile

    before = set(glob.glob(f"{tempfile.gettempdir()}/egovlab-vm-*"))
    yield
    assert runner.leftovers() == []
    for kept in set(glob.glob(f"{tempfile.gettempdir()}/egovlab-vm-*")) - before:  # a failed run's console
        shutil.rmtree(kept, ignore_errors=True)


def test_the_failover_suite_runs_inside_the_vm_with_netem_and_the_kernel_datapath(img, tmp_path):
    res = runner.run(img, ["tests/test_fullkernel.py", "-v"], timeout_s=1500, out=tmp_path,
                     progress=lambda *_: None)
    log = (tmp_path / "pytest.log").read_text() if (tmp_path / "pytest.log").exists() else res.log.read_text()
    assert res.exit_code == 0, log[-3000:]
    suite = ET.parse(tmp_path / "junit.xml").getroot().find("testsuite")
    # every in-VM test ran: none was skipped for want of netem or the OVS module
    assert (int(suite.get("tests")), int(suite.get("skipped")), int(suite.get("failures"))) == (2, 0, 0), log[-2000:]
    fig = res.figures
    assert fig["datapath"] == "kernel"
    assert abs(fig["rtt_ms"] - fig["expected_rtt_ms"]) <= 0.1 * fig["expected_rtt_ms"]
    assert abs(fig["rtt_after_cut_ms"] - fig["expected_rtt_after_cut_ms"]) <= 0.1 * fig["expected_rtt_after_cut_ms"]
    assert fig["outage_ms"] >= 0 and fig["sent"] > 0
    assert res.boot_s is not None and res.accel in ("kvm", "tcg")


def test_a_cached_image_is_reused(img):
    again = image.build(progress=lambda *_: None)
    assert again.cached and again.disk == img.disk and again.key == image.inputs_key()


def test_a_hung_vm_is_killed_after_its_timeout_with_a_clear_message(img):
    with pytest.raises(VMError, match="did not finish within 20 s and was killed"):
        runner.run(img, ["--version"], timeout_s=20, accel="tcg", init="/bin/cat", progress=lambda *_: None)


def test_a_vm_that_does_not_boot_ends_with_a_clear_error(img, tmp_path):
    kernel = tmp_path / "vmlinuz"
    kernel.write_bytes(b"not a kernel")
    broken = image.Image(img.dir, img.disk, kernel, img.initrd, "broken")
    with pytest.raises(VMError, match="ended without running the tests"):
        runner.run(broken, ["--version"], timeout_s=60, accel="tcg", progress=lambda *_: None)
