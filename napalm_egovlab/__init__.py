"""NAPALM driver for egovlab labs: `napalm.get_network_driver("egovlab")` finds it by this name."""
from .egovlab import EgovlabDriver

__all__ = ["EgovlabDriver"]
