"""The full-kernel tier from the host: the VM image is built (or reused from the cache) and boots
under qemu with a test of the suite inside; the same image as a Vagrant box runs the whole
failover suite with WAN delay through `vagrant up --provider=libvirt` and `vagrant ssh`, and
`vagrant destroy -f` leaves nothing behind; a VM that does not boot or hangs ends with a clear
error and leaves no qemu behind (as root)."""
from __future__ import annotations

import os
import shutil
import xml.etree.ElementTree as ET

import pytest

from egovlab.vm import image, runner, vagrant
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


def _suite_ran(junit, tests: int, log: str) -> None:
    suite = ET.parse(junit).getroot().find("testsuite")
    # every in-VM test ran: none was skipped for want of netem or the OVS module
    assert (int(suite.get("tests")), int(suite.get("skipped")), int(suite.get("failures"))) == (tests, 0, 0), log[-2000:]


def test_the_vm_boots_under_qemu_and_a_test_of_the_suite_finds_netem_and_the_kernel_datapath(img, tmp_path):
    res = runner.run(img, ["tests/test_fullkernel.py", "-v", "-k", "wan_delays"], timeout_s=1500, out=tmp_path,
                     progress=lambda *_: None)
    log = (tmp_path / "pytest.log").read_text() if (tmp_path / "pytest.log").exists() else res.log.read_text()
    assert res.exit_code == 0, log[-3000:]
    _suite_ran(tmp_path / "junit.xml", 1, log)
    fig = res.figures
    assert fig["datapath"] == "kernel"
    assert abs(fig["rtt_ms"] - fig["expected_rtt_ms"]) <= 0.1 * fig["expected_rtt_ms"]
    assert res.boot_s is not None and res.accel in ("kvm", "tcg")


NOTHING = {"domains": [], "networks": [], "volumes": [], "daemons": [], "chains": []}


@pytest.mark.skipif(shutil.which("vagrant") is None or shutil.which("libvirtd") is None,
                    reason="vagrant, vagrant-libvirt and libvirt are missing (scripts/setup.sh installs them)")
def test_the_failover_suite_runs_in_the_vagrant_box_and_destroy_leaves_nothing(img, tmp_path):
    """`vagrant up --provider=libvirt` of the box `egovlab vm box` makes, the whole in-VM suite over
    `vagrant ssh` (kernel datapath, netem delays, a cut uplink under the 1 ms probe), its JUnit and
    figures back on the host, `vagrant destroy -f`: no domain, network, volume, daemon or firewall
    chain left."""
    assert vagrant.leftovers() == NOTHING
    res = vagrant.run(img, ["tests/test_fullkernel.py", "-v"], out=tmp_path, timeout_s=1500, progress=lambda *_: None)
    log = (tmp_path / "pytest.log").read_text() if (tmp_path / "pytest.log").exists() else res.log
    assert res.exit_code == 0, log[-3000:]
    _suite_ran(res.junit, 2, log)
    fig = res.figures
    assert fig["datapath"] == "kernel"
    assert abs(fig["rtt_ms"] - fig["expected_rtt_ms"]) <= 0.1 * fig["expected_rtt_ms"]
    assert abs(fig["rtt_after_cut_ms"] - fig["expected_rtt_after_cut_ms"]) <= 0.1 * fig["expected_rtt_after_cut_ms"]
    assert fig["outage_ms"] >= 0 and fig["sent"] > 0
    assert set(res.seconds) == {"box", "up", "suite", "destroy"} and res.driver in ("kvm", "qemu")
    assert vagrant.leftovers() == NOTHING


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
