"""Build the VM image: Debian bookworm from Debian's packages (debootstrap), its own kernel, the
project's system packages and Python dependencies installed in the chroot, as an ext4 disk.

Cached by the hash of its inputs (the package list, pyproject.toml, the guest's init, this
builder): a second build is instant. The project's code is not in the image; the runner copies
the working tree in at boot, so changing code never rebuilds it.
"""
from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import time
import tomllib
from dataclasses import dataclass
from pathlib import Path

from egovlab.topology.state import LabError

ROOT = Path(__file__).resolve().parent.parent
CACHE = Path(os.environ.get("EGOVLAB_VM_CACHE", "/var/cache/egovlab/vm"))
SUITE, MIRROR = "bookworm", "http://deb.debian.org/debian"
PACKAGES = ["linux-image-amd64", "initramfs-tools", "kmod", "udev", "iproute2", "iputils-ping", "procps",
            "openvswitch-switch", "mininet", "python3", "python3-venv", "iperf3", "tcpdump", "ethtool",
            "ca-certificates", "openssh-server", "sudo",
            "systemd-sysv", "ifupdown", "isc-dhcp-client", "rsync"]  # booted normally (the Vagrant box): systemd, DHCP, synced folder
GUEST_DIR = "/work/egovlab"  # where the guest keeps the working tree (the editable install points here)
VENV = "/opt/egovlab/venv"
BUILDER_VERSION = "2"
# PID 1 in the image only mounts the host's share and hands over to the repository's
# vm/guest-init.sh, so changing what the guest does never rebuilds the image.
BOOT_STUB = """#!/bin/sh
export PATH=/usr/sbin:/usr/bin:/sbin:/bin
mount -t proc proc /proc; mount -t sysfs sys /sys; mount -t devtmpfs dev /dev
modprobe 9pnet_virtio; modprobe 9p; mkdir -p /mnt/repo
mount -t 9p -o trans=virtio,version=9p2000.L,ro repo /mnt/repo && exec /bin/bash /mnt/repo/vm/guest-init.sh
echo "egovlab-vm: the repository share did not mount"; echo o > /proc/sysrq-trigger
"""
DISK_SIZE = "6G"


class VMError(LabError):
    """The VM tier failed (build, boot, a hung guest): exit code 1, with what to look at."""


@dataclass
class Image:
    dir: Path
    disk: Path
    kernel: Path
    initrd: Path
    key: str
    seconds: float = 0.0
    cached: bool = True


def inputs_key() -> str:
    """What the image depends on: the packages, the pinned Python dependencies and the package
    layout (the editable install's mapping), the guest's init, this builder."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())
    h = hashlib.sha256()
    for part in (SUITE, MIRROR, " ".join(PACKAGES), GUEST_DIR, VENV, BUILDER_VERSION, DISK_SIZE,
                 json.dumps([project["project"]["dependencies"], project["project"].get("optional-dependencies"),
                             project["tool"]["setuptools"]], sort_keys=True)):
        h.update(part.encode() + b"\0")
    h.update(BOOT_STUB.encode())
    return h.hexdigest()[:16]


def source_folders(setuptools: dict) -> list[str]:
    """The repository's folders the packages come from: mapped ones, and the top folder of the rest."""
    mapped = setuptools.get("package-dir", {})
    return sorted({mapped[p] if p in mapped else p.split(".")[0] for p in setuptools["packages"]})


def _run(cmd: list[str], what: str, **kw) -> None:
    r = subprocess.run(cmd, capture_output=True, text=True, **kw)
    if r.returncode:
        raise VMError(f"{what} failed (exit {r.returncode}): {(r.stderr or r.stdout).strip()[-1500:]}")


def cached(key: str | None = None) -> Image | None:
    d = CACHE / (key or inputs_key())
    if not (d / "done").exists():
        return None
    return Image(d, d / "disk.img", d / "vmlinuz", d / "initrd.img", d.name)


def _vagrant_user(rootfs: Path) -> None:
    """What a Vagrant box needs when booted normally: the `vagrant` user with passwordless sudo
    and Vagrant's well-known insecure key (Vagrant replaces it on first `vagrant up`), DHCP on
    the first NIC. The test runner's boot never uses any of it (no network device, its own init)."""
    keys = sorted(Path("/usr/share/rubygems-integration/all/gems").glob("vagrant-*/keys/vagrant.pub"))
    _run(["chroot", str(rootfs), "useradd", "-m", "-s", "/bin/bash", "vagrant"], "useradd vagrant")
    (rootfs / "etc" / "sudoers.d" / "vagrant").write_text("vagrant ALL=(ALL) NOPASSWD: ALL\n")
    os.chmod(rootfs / "etc" / "sudoers.d" / "vagrant", 0o440)
    ssh = rootfs / "home" / "vagrant" / ".ssh"
    ssh.mkdir(mode=0o700)
    if keys:
        (ssh / "authorized_keys").write_text(keys[-1].read_text())
        os.chmod(ssh / "authorized_keys", 0o600)
    _run(["chroot", str(rootfs), "chown", "-R", "vagrant:vagrant", "/home/vagrant/.ssh"], "chown")
    (rootfs / "etc" / "network" / "interfaces").write_text(
        "auto lo\niface lo inet loopback\nallow-hotplug eth0\niface eth0 inet dhcp\n")


def _mounts_under(path: Path) -> list[str]:
    prefix = str(path.resolve()) + "/"
    with open("/proc/mounts") as f:
        points = [line.split()[1].encode().decode("unicode_escape") for line in f]
    return [p for p in points if p.startswith(prefix)]


def _unmount_under(path: Path) -> None:
    for point in sorted(_mounts_under(path), reverse=True):
        subprocess.run(["umount", "-l", point], capture_output=True)


def _remove(path: Path) -> None:
    """rmtree, but never through a mount: a chroot's bind-mounted /dev or /sys is the host's."""
    _unmount_under(path)
    if _mounts_under(path):
        raise VMError(f"{path}: still has mounts inside ({', '.join(_mounts_under(path))}); not removing it")
    shutil.rmtree(path, ignore_errors=True)


def build(progress=print) -> Image:
    key = inputs_key()
    if (img := cached(key)) is not None:
        return img
    if os.geteuid() != 0:
        raise VMError("building the VM image needs root (debootstrap, chroot)")
    for tool in ("debootstrap", "mke2fs", "qemu-system-x86_64"):
        if shutil.which(tool) is None:
            raise VMError(f"{tool} is missing (scripts/setup.sh installs it)")
    t0 = time.monotonic()
    d = CACHE / key
    _remove(d)
    rootfs = d / "root"
    rootfs.mkdir(parents=True)
    progress(f"debootstrap {SUITE} with the kernel and {len(PACKAGES)} packages")
    _run(["debootstrap", "--variant=minbase", f"--include={','.join(PACKAGES)}", SUITE, str(rootfs), MIRROR],
         "debootstrap", timeout=1800)
    try:
        for fs in ("proc", "sys", "dev"):
            _run(["mount", "--bind", f"/{fs}", str(rootfs / fs)], f"mount {fs}")
        shutil.copy("/etc/resolv.conf", rootfs / "etc" / "resolv.conf")  # the registries, for pip
        host_ca = Path("/etc/ssl/certs/ca-certificates.crt")
        if host_ca.exists():
            shutil.copy(host_ca, rootfs / "etc" / "ssl" / "certs" / "ca-certificates.crt")
        progress("the project's Python dependencies into the guest's virtualenv")
        guest = rootfs / GUEST_DIR.lstrip("/")
        guest.mkdir(parents=True)
        project = tomllib.loads((ROOT / "pyproject.toml").read_text())
        for f in ("pyproject.toml", "README.md"):
            shutil.copy2(ROOT / f, guest / f)
        for folder in source_folders(project["tool"]["setuptools"]):
            shutil.copytree(ROOT / folder, guest / folder, ignore=shutil.ignore_patterns("__pycache__"))
        _run(["chroot", str(rootfs), "python3", "-m", "venv", "--system-site-packages", VENV], "venv")
        _run(["chroot", str(rootfs), f"{VENV}/bin/pip", "install", "-q", "--disable-pip-version-check",
              "--cert", "/etc/ssl/certs/ca-certificates.crt", "-e", f"{GUEST_DIR}[test]"], "pip install", timeout=1800)
        (rootfs / "opt" / "egovlab" / "init").write_text(BOOT_STUB)
        os.chmod(rootfs / "opt" / "egovlab" / "init", 0o755)
        (rootfs / "etc" / "hostname").write_text("egovlab-vm\n")
        _vagrant_user(rootfs)
    finally:
        _unmount_under(rootfs)
    kernel = sorted((rootfs / "boot").glob("vmlinuz-*"))
    initrd = sorted((rootfs / "boot").glob("initrd.img-*"))
    if not kernel or not initrd:
        raise VMError("the guest has no kernel or initrd in /boot")
    shutil.copy(kernel[-1], d / "vmlinuz")
    shutil.copy(initrd[-1], d / "initrd.img")
    progress(f"ext4 disk image ({DISK_SIZE}, sparse)")
    _run(["mke2fs", "-q", "-t", "ext4", "-L", "egovlab", "-d", str(rootfs), str(d / "disk.img"), DISK_SIZE], "mke2fs")
    _remove(rootfs)
    (d / "done").write_text(f"{time.time()}\n")
    for stale in CACHE.iterdir():  # images of older inputs: some GB each
        if stale.is_dir() and stale.name != key:
            _remove(stale)
    img = cached(key)
    img.seconds, img.cached = time.monotonic() - t0, False
    return img
