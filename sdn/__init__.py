"""The SDN controller (installed as `egovlab.sdn`): the pure compiler and verifier, the controller's
pure core and its thin os-ken adapter, the launcher and its metrics."""
