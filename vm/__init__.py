"""The full-kernel tier: a Debian VM built from Debian packages, booted with qemu, running the suite."""
