"""The emulated network (installed as `egovlab.topology`): the plan of nodes and links (pure), the
Mininet + Open vSwitch builder, faults, probes and the live state of a lab."""
