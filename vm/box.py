"""A Vagrant box (libvirt provider) from the same VM image: qcow2 disk, metadata, and a box
Vagrantfile that boots the image's own kernel (the image has no boot loader) with systemd."""
from __future__ import annotations

import json
import shutil
import subprocess
import tarfile
from pathlib import Path

from .image import Image, VMError

BOX_VAGRANTFILE = """# egovlab's box: boots the Debian kernel shipped beside the disk (no boot loader in the image).
Vagrant.configure("2") do |config|
  config.vm.provider :libvirt do |lv|
    dir = File.dirname(__FILE__)
    lv.kernel = File.join(dir, "vmlinuz")
    lv.initrd = File.join(dir, "initrd.img")
    lv.cmd_line = "root=/dev/vda rw console=ttyS0 net.ifnames=0"
    lv.disk_bus = "virtio"
  end
end
"""


def build_box(img: Image, out: Path) -> Path:
    """out/egovlab.box: `vagrant box add egovlab out/egovlab.box`."""
    work = img.dir / "box"
    work.mkdir(exist_ok=True)
    r = subprocess.run(["qemu-img", "convert", "-O", "qcow2", str(img.disk), str(work / "box.img")],
                       capture_output=True, text=True)
    if r.returncode:
        raise VMError(f"qemu-img convert failed: {r.stderr.strip()}")
    size_gb = -(-img.disk.stat().st_size // 2**30)
    (work / "metadata.json").write_text(json.dumps({"provider": "libvirt", "format": "qcow2",
                                                    "virtual_size": size_gb}))
    (work / "Vagrantfile").write_text(BOX_VAGRANTFILE)
    out.parent.mkdir(parents=True, exist_ok=True)
    with tarfile.open(out, "w:gz", compresslevel=1) as tar:
        for name in ("metadata.json", "Vagrantfile", "box.img"):
            tar.add(work / name, arcname=name)
        tar.add(img.kernel, arcname="vmlinuz")
        tar.add(img.initrd, arcname="initrd.img")
    shutil.rmtree(work, ignore_errors=True)  # the qcow2 is in the box now: GBs not kept twice
    return out
