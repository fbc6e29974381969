"""egovlab: one scenario of a provincial e-government, many engines."""
__version__ = "0.1.0"
