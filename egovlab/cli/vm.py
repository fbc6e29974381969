"""CLI verbs of the full-kernel tier: build the VM image, run tests inside it, make a Vagrant box."""
from __future__ import annotations

import sys
from pathlib import Path

import click

from egovlab import params

from .common import console

FULLKERNEL_SUITE = ["tests/test_fullkernel.py", "-v"]


@click.group()
def vm() -> None:
    """The full-kernel tier: a Debian VM (qemu; KVM if usable, else TCG) with netem and the OVS
    kernel module, for the failover suite with real WAN delay."""


@vm.command("build")
def vm_build() -> None:
    """Build the VM image from Debian's packages (cached by the hash of its inputs)."""
    from egovlab.vm import image

    img = image.build(progress=console.print)
    console.print(f"image {img.disk} ({'cached' if img.cached else f'built in {img.seconds:.0f} s'})")


@vm.command("test", context_settings={"ignore_unknown_options": True})
@click.option("--timeout", "timeout_s", type=params.VM_TIMEOUT_S.click(), default=900, show_default=True,
              help="Kill the VM after this many seconds.")
@click.option("--accel", type=click.Choice(["kvm", "tcg"]), default=None, help="Default: KVM if it works here.")
@click.option("--out", type=click.Path(file_okay=False), default="out/vm", show_default=True,
              help="Where the console log, JUnit XML and figures land.")
@click.option("--vagrant", "via_vagrant", is_flag=True,
              help="Through Vagrant (libvirt): the image's box up, the suite over `vagrant ssh`, destroyed.")
@click.argument("pytest_args", nargs=-1, type=click.UNPROCESSED)
def vm_test(timeout_s: float, accel: str | None, out: str, via_vagrant: bool, pytest_args: tuple[str, ...]) -> None:
    """Boot the VM and run pytest inside it (default: the full-kernel failover suite)."""
    from egovlab.vm import image, runner, vagrant

    img = image.build(progress=console.print)
    if via_vagrant:
        if accel is not None:
            raise click.UsageError("--accel is the qemu runner's; under --vagrant KVM is used where it works")
        got = vagrant.run(img, list(pytest_args) or FULLKERNEL_SUITE, out=Path(out), timeout_s=timeout_s,
                          progress=console.print)
        console.print(f"Vagrant ({got.driver}): " + ", ".join(f"{k} {v:.0f} s" for k, v in got.seconds.items())
                      + f"; pytest exit {got.exit_code}; results in {out}/")
        for key, value in got.figures.items():
            console.print(f"  {key}: {value}")
        sys.exit(got.exit_code)
    res = runner.run(img, list(pytest_args) or FULLKERNEL_SUITE, timeout_s=timeout_s, out=Path(out), accel=accel,
                     progress=console.print)
    console.print(f"VM ({res.accel}): booted in {res.boot_s or 0:.1f} s, finished in {res.seconds:.0f} s, "
                  f"pytest exit {res.exit_code}; results in {out}/")
    for key, value in res.figures.items():
        console.print(f"  {key}: {value}")
    sys.exit(res.exit_code)


@vm.command("box")
@click.option("-o", "--output", type=click.Path(dir_okay=False), default="out/egovlab.box", show_default=True)
def vm_box(output: str) -> None:
    """A Vagrant box (libvirt) from the image: `vagrant box add egovlab out/egovlab.box`."""
    from egovlab.vm import box, image

    img = image.build(progress=console.print)
    path = box.build_box(img, Path(output))
    console.print(f"wrote {path}; then: vagrant box add --force egovlab {path} && "
                  f"EGOVLAB_BOX=egovlab vagrant up --provider=libvirt")


COMMANDS = [vm]
