"""Boot the VM image with qemu and run a pytest selection inside it.

KVM where it works (probed once with a timeout: here /dev/kvm exists but a guest can hang),
TCG otherwise. No network device, a serial console, the working tree shared read-only (9p)
and copied in at boot, a second share for the results (exit code, JUnit XML, the tests' JSON
figures). The guest powers itself off; a guest that does not is killed after the timeout, with
a clear message, and no qemu process is ever left behind.
"""
from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from .image import ROOT, Image, VMError

QEMU = "qemu-system-x86_64"
MARKER = "egovlab-vm"  # qemu's -name: how cleanup finds a guest
PROBE = Path("/run/egovlab/kvm-usable")


@dataclass
class VMResult:
    exit_code: int
    accel: str
    seconds: float
    boot_s: float | None
    log: Path
    results: Path
    junit: Path | None = None
    figures: dict = field(default_factory=dict)


def kvm_usable(image: Image, timeout_s: float = 20) -> bool:
    """Boot the guest's kernel without a root disk under KVM: it panics at once and qemu exits
    (-no-reboot). A KVM that hangs instead is not usable. The answer is kept until reboot."""
    if PROBE.exists():
        return PROBE.read_text().strip() == "yes"
    ok = False
    if os.access("/dev/kvm", os.R_OK | os.W_OK):
        proc = subprocess.Popen([QEMU, "-name", MARKER, "-accel", "kvm", "-m", "256", "-display", "none",
                                 "-serial", "null", "-monitor", "none", "-no-reboot", "-kernel", str(image.kernel),
                                 "-append", "panic=-1 root=/dev/egovlab-none"],
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
        try:
            ok = proc.wait(timeout=timeout_s) == 0
        except subprocess.TimeoutExpired:
            _kill(proc)
    PROBE.parent.mkdir(parents=True, exist_ok=True)
    PROBE.write_text("yes\n" if ok else "no\n")
    return ok


def _kill(proc: subprocess.Popen) -> None:
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    proc.wait()


def command(image: Image, results: Path, accel: str, *, memory_mb: int = 3072, cpus: int = 2,
            init: str = "/opt/egovlab/init") -> list[str]:
    return [QEMU, "-name", MARKER, "-accel", "kvm" if accel == "kvm" else "tcg,thread=multi",
            "-cpu", "host" if accel == "kvm" else "max", "-m", str(memory_mb), "-smp", str(cpus),
            "-nographic", "-no-reboot", "-nic", "none", "-monitor", "none", "-serial", "stdio",
            "-kernel", str(image.kernel), "-initrd", str(image.initrd),
            "-append", f"root=/dev/vda rw console=ttyS0 init={init} panic=1 quiet loglevel=3",
            "-drive", f"file={image.disk},if=virtio,format=raw,snapshot=on",
            "-virtfs", f"local,path={ROOT},mount_tag=repo,security_model=none,readonly=on",
            "-virtfs", f"local,path={results},mount_tag=results,security_model=none"]


def run(image: Image, pytest_args: list[str], *, timeout_s: float = 900, out: Path | None = None,
        accel: str | None = None, init: str = "/opt/egovlab/init", progress=print) -> VMResult:
    """Boot, run `pytest pytest_args` in the guest, power off; results land in `out`."""
    if shutil.which(QEMU) is None:
        raise VMError(f"{QEMU} is missing (scripts/setup.sh installs it)")
    accel = accel or ("kvm" if kvm_usable(image) else "tcg")
    results = Path(tempfile.mkdtemp(prefix="egovlab-vm-"))
    os.chmod(results, 0o777)
    (results / "pytest-args").write_text(" ".join(pytest_args) + "\n")
    log = results / "console.log"
    progress(f"booting the VM ({accel}), timeout {timeout_s:.0f} s, console {log}")
    t0 = time.monotonic()
    with log.open("w") as console:
        proc = subprocess.Popen(command(image, results, accel, init=init), stdout=console, stderr=subprocess.STDOUT,
                                stdin=subprocess.DEVNULL, start_new_session=True)
        try:
            code = proc.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            _kill(proc)
            tail = log.read_text(errors="replace").strip().splitlines()[-5:]
            raise VMError(f"the VM did not finish within {timeout_s:.0f} s and was killed; console {log}:\n"
                          + "\n".join(tail))
        finally:
            if proc.poll() is None:
                _kill(proc)
    seconds = time.monotonic() - t0
    text = log.read_text(errors="replace")
    exit_file = results / "exit"
    if code != 0 or not exit_file.exists():
        tail = "\n".join(text.strip().splitlines()[-8:])
        raise VMError(f"the VM ended without running the tests (qemu exit {code}); console {log}:\n{tail}")
    boot = re.search(r"egovlab-vm: booted in ([\d.]+) s", text)
    result = VMResult(int(exit_file.read_text().strip() or 1), accel, seconds,
                      float(boot.group(1)) if boot else None, log, results)
    if (results / "junit.xml").exists():
        result.junit = results / "junit.xml"
    figures = results / "fullkernel.json"
    if figures.exists():
        import json

        result.figures = json.loads(figures.read_text())
    if out is not None:  # the results move to `out`; the scratch share goes
        out.mkdir(parents=True, exist_ok=True)
        for f in results.iterdir():
            if f.is_file():
                shutil.copy(f, out / f.name)
        shutil.rmtree(results, ignore_errors=True)
        result.log, result.results = out / log.name, out
        result.junit = out / "junit.xml" if result.junit else None
    return result


def leftovers() -> list[int]:
    """qemu processes of egovlab's VMs still running."""
    r = subprocess.run(["pgrep", "-f", f"-name {MARKER}"], capture_output=True, text=True)
    return [int(p) for p in r.stdout.split()]
