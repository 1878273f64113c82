"""sdsen: rotation-equivariant single-image rain removal (SDSEN, ICIP 2019) in PyTorch.

Subpackages: :mod:`sdsen.gconv` (p4 / p4m group convolutions), :mod:`sdsen.models`,
:mod:`sdsen.rain`, :mod:`sdsen.data`, :mod:`sdsen.metrics`, :mod:`sdsen.train`,
:mod:`sdsen.evaluate`, :mod:`sdsen.pretrained`, :mod:`sdsen.viz`. The shipped weights are one
call away:

>>> import sdsen
>>> "sdsen" in sdsen.list_pretrained()
True
"""

from ._version import __version__
from .pretrained import list_pretrained, load_pretrained, model_card

__all__ = ["__version__", "list_pretrained", "load_pretrained", "model_card"]
