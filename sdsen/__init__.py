"""sdsen: rotation-equivariant single-image rain removal (SDSEN, ICIP 2019) in PyTorch."""

__version__ = "0.1.0"
