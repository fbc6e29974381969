"""The full-kernel tier through Vagrant, as a CI runner would use it: the box `egovlab vm box`
makes from the VM image, `vagrant up --provider=libvirt`, the in-VM failover suite over `vagrant
ssh` (vm/run-suite.sh, as the qemu runner's guest runs it), its JUnit XML and figures copied
back, and `vagrant destroy -f`.

libvirt is started for the run where it is not running (virtlogd and libvirtd by hand: these
machines have no systemd), with nothing in its configuration changed: Vagrant's files live under
the image cache (readable by libvirt's qemu user), the management network is isolated (no
forwarding, no NAT: the guest reaches the host and nothing else), and the domain runs under TCG
where KVM does not work (probed as the qemu runner probes it). Afterwards nothing it made is
left: no domain, network, storage volume or pool, and, where this run started libvirtd, no
daemon and none of the LIBVIRT_* firewall chains libvirt adds and never removes.
"""
from __future__ import annotations

import io
import os
import shutil
import signal
import subprocess
import tarfile
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from . import box
from .image import CACHE, ROOT, Image, VMError
from .runner import kvm_usable

VIRSH = ["virsh", "-c", "qemu:///system"]
RESULTS = "/tmp/egovlab-results"  # in the guest
GUEST_TREE = "/work/egovlab"  # the Vagrantfile's synced folder (the image's virtualenv points there)
RUNTIME = Path("/run/egovlab/libvirt")  # what this module started: pid files


@dataclass
class VagrantResult:
    exit_code: int
    driver: str  # kvm | qemu (TCG)
    seconds: dict[str, float] = field(default_factory=dict)  # box, up, suite, destroy
    results: Path | None = None
    junit: Path | None = None
    figures: dict = field(default_factory=dict)
    log: str = ""


def _run(cmd: list[str], what: str, timeout: float = 600, env: dict | None = None, **kw) -> subprocess.CompletedProcess:
    try:
        r = subprocess.run(cmd, capture_output=True, timeout=timeout, env=env, **kw)
    except subprocess.TimeoutExpired:
        raise VMError(f"{what} did not finish within {timeout:.0f} s") from None
    if r.returncode:
        err = (r.stderr or r.stdout or b"").decode(errors="replace").strip()[-1500:]
        raise VMError(f"{what} failed (exit {r.returncode}): {err}")
    return r


def _virsh_ok() -> bool:
    return subprocess.run([*VIRSH, "version"], capture_output=True, timeout=30).returncode == 0


def _names(*args: str) -> list[str]:
    r = subprocess.run([*VIRSH, *args, "--name"], capture_output=True, text=True, timeout=60)
    return [n for n in r.stdout.split() if n] if r.returncode == 0 else []


def _chains() -> list[tuple[str, str, str]]:
    """(command, table, chain) of every LIBVIRT_* chain in iptables and ip6tables."""
    out = []
    for cmd in ("iptables", "ip6tables"):
        for table in ("filter", "nat", "mangle"):
            r = subprocess.run([cmd, "-t", table, "-S"], capture_output=True, text=True)
            out += [(cmd, table, line.split()[1]) for line in r.stdout.splitlines()
                    if line.startswith("-N LIBVIRT_")]
    return out


class Libvirt:
    """libvirtd for the run: the one running, or started here and stopped afterwards."""

    DAEMONS = ("virtlogd", "libvirtd")

    def __enter__(self) -> "Libvirt":
        self.started: list[str] = []
        self.chains_before = set(_chains())
        self.pools_before = set(_names("pool-list", "--all")) if _virsh_ok() else set()
        if not _virsh_ok():
            RUNTIME.mkdir(parents=True, exist_ok=True)
            for daemon in self.DAEMONS:
                _run([daemon, "--daemon", "--pid-file", str(RUNTIME / f"{daemon}.pid")], f"starting {daemon}", 60)
                self.started.append(daemon)
            deadline = time.monotonic() + 30
            while not _virsh_ok():
                if time.monotonic() > deadline:
                    self.__exit__(None, None, None)
                    raise VMError("libvirtd did not answer within 30 s")
                time.sleep(0.2)
            self.pools_before = set(_names("pool-list", "--all"))
        return self

    def __exit__(self, *exc) -> None:
        if _virsh_ok():
            for pool in set(_names("pool-list", "--all")) - self.pools_before:  # vagrant-libvirt's
                subprocess.run([*VIRSH, "pool-destroy", pool], capture_output=True)
                subprocess.run([*VIRSH, "pool-undefine", pool], capture_output=True)
        for daemon in reversed(self.started):
            pidfile = RUNTIME / f"{daemon}.pid"
            try:
                pid = int(pidfile.read_text())
                os.kill(pid, signal.SIGTERM)
                deadline = time.monotonic() + 30
                while Path(f"/proc/{pid}").exists() and time.monotonic() < deadline:
                    time.sleep(0.1)
            except (OSError, ValueError):
                pass
            pidfile.unlink(missing_ok=True)
        if self.started and RUNTIME.is_dir() and not any(RUNTIME.iterdir()):
            RUNTIME.rmdir()  # it sits beside the labs' state: nothing of the run stays there
        if self.started:  # chains libvirt made in this run (it never removes them)
            made = [c for c in _chains() if c not in self.chains_before]
            for cmd, table, chain in made:
                subprocess.run([cmd, "-t", table, "-F", chain], capture_output=True)
            for cmd, table, chain in made:
                for line in subprocess.run([cmd, "-t", table, "-S"], capture_output=True, text=True).stdout.splitlines():
                    if f"-j {chain}" in line and line.startswith("-A "):
                        subprocess.run([cmd, "-t", table, "-D", *line.split()[1:]], capture_output=True)
                subprocess.run([cmd, "-t", table, "-X", chain], capture_output=True)


def leftovers(name: str = "egovlab") -> dict[str, list]:
    """What a Vagrant run could leave: domains, networks and volumes naming `name` or Vagrant's
    network, libvirt daemons this module started, LIBVIRT_* firewall chains, a box volume."""
    out: dict[str, list] = {"domains": [], "networks": [], "volumes": [], "daemons": [], "chains": []}
    if _virsh_ok():
        out["domains"] = [d for d in _names("list", "--all") if name in d or "egovlab" in d]
        out["networks"] = [n for n in _names("net-list", "--all") if n.startswith("vagrant")]
        for pool in _names("pool-list", "--all"):
            r = subprocess.run([*VIRSH, "vol-list", pool], capture_output=True, text=True)
            out["volumes"] += [line.split()[0] for line in r.stdout.splitlines()[2:] if "egovlab" in line]
    out["daemons"] = [p.name for p in RUNTIME.glob("*.pid")] if RUNTIME.exists() else []
    if not _virsh_ok():
        out["chains"] = [c for _, _, c in _chains()]
    return out


def vagrant_home() -> Path:
    """Vagrant's own files (boxes, keys) beside the image cache, where libvirt's qemu user can
    read the box's kernel (under /root it could not)."""
    home = CACHE.parent / "vagrant.d"
    home.mkdir(parents=True, exist_ok=True)
    for d in (CACHE.parent, home):
        d.chmod(0o755)
    return home


def run(img: Image, pytest_args: list[str], *, out: Path, timeout_s: float = 1800, progress=print) -> VagrantResult:
    """Box (cached with the image), up, the suite over `vagrant ssh`, results to `out`, destroy."""
    if shutil.which("vagrant") is None or shutil.which("libvirtd") is None:
        raise VMError("vagrant, vagrant-libvirt and libvirt are missing (scripts/setup.sh installs them)")
    name = f"egovlab-{img.key}"
    result = VagrantResult(1, "kvm" if kvm_usable(img) else "qemu")
    with Libvirt(), tempfile.TemporaryDirectory(prefix="egovlab-vagrant-") as dot:
        env = {**os.environ, "VAGRANT_HOME": str(vagrant_home()), "VAGRANT_DOTFILE_PATH": dot,
               "VAGRANT_DEFAULT_PROVIDER": "libvirt", "VAGRANT_CHECKPOINT_DISABLE": "1", "EGOVLAB_BOX": name,
               "EGOVLAB_LIBVIRT_DRIVER": result.driver, "EGOVLAB_LIBVIRT_NETWORK": "none"}
        vagrant = lambda *args, what, timeout=600: _run(["vagrant", *args], what, timeout, env, cwd=ROOT)  # noqa: E731
        t0 = time.monotonic()
        if name not in vagrant("box", "list", what="vagrant box list").stdout.decode():
            boxfile = img.dir / "egovlab.box"
            if not boxfile.exists():
                progress(f"building the box {boxfile}")
                box.build_box(img, boxfile)
            vagrant("box", "add", "--force", "--name", name, str(boxfile), what="vagrant box add", timeout=900)
        result.seconds["box"] = round(time.monotonic() - t0, 1)
        try:
            t0 = time.monotonic()
            progress(f"vagrant up --provider=libvirt ({result.driver})")
            vagrant("up", "--provider=libvirt", "--no-provision", what="vagrant up", timeout=timeout_s)
            result.seconds["up"] = round(time.monotonic() - t0, 1)
            t0 = time.monotonic()
            progress(f"the suite in the guest: pytest {' '.join(pytest_args)}")
            suite = subprocess.run(["vagrant", "ssh", "-c", f"sudo bash {GUEST_TREE}/vm/run-suite.sh {GUEST_TREE} "
                                    f"{RESULTS} {' '.join(pytest_args)}"], capture_output=True, text=True,
                                   timeout=timeout_s, env=env, cwd=ROOT)
            result.seconds["suite"] = round(time.monotonic() - t0, 1)
            result.log = suite.stdout[-3000:] + suite.stderr[-2000:]
            packed = vagrant("ssh", "-c", f"sudo tar -C {RESULTS} -cf - .", what="collecting the results")
            _unpack(packed.stdout, out)
        finally:
            t0 = time.monotonic()
            subprocess.run(["vagrant", "destroy", "-f"], capture_output=True, timeout=600, env=env, cwd=ROOT)
            result.seconds["destroy"] = round(time.monotonic() - t0, 1)
            _drop_box_volumes(name)
    result.results = out
    exit_file = out / "exit"
    if not exit_file.exists():
        raise VMError(f"the suite did not run in the Vagrant guest:\n{result.log}")
    result.exit_code = int(exit_file.read_text().strip() or 1)
    result.junit = out / "junit.xml" if (out / "junit.xml").exists() else None
    if (out / "fullkernel.json").exists():
        import json

        result.figures = json.loads((out / "fullkernel.json").read_text())
    return result


def _unpack(tar_bytes: bytes, out: Path) -> None:
    """The guest's results (a flat folder of files) into `out`: regular files only, by their
    base name, so nothing the guest sends can land outside it."""
    out.mkdir(parents=True, exist_ok=True)
    with tarfile.open(fileobj=io.BytesIO(tar_bytes)) as tar:
        for member in tar.getmembers():
            name = Path(member.name).name
            if member.isfile() and name not in ("", ".", ".."):
                (out / name).write_bytes(tar.extractfile(member).read())


def _drop_box_volumes(name: str) -> None:
    """vagrant-libvirt uploads the box into a storage pool and leaves it there after destroy."""
    for pool in _names("pool-list", "--all"):
        r = subprocess.run([*VIRSH, "vol-list", pool], capture_output=True, text=True)
        for line in r.stdout.splitlines()[2:]:
            if line.split() and name.replace("-", "_") in line.split()[0].replace("-", "_"):
                subprocess.run([*VIRSH, "vol-delete", "--pool", pool, line.split()[0]], capture_output=True)
