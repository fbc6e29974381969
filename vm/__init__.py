"""The full-kernel tier (installed as `egovlab.vm`): a Debian VM built from Debian packages, booted with qemu, running the suite."""
