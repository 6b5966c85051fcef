"""Dataset readers for the original on-disk layouts (see :mod:`pretrain.data.readers`).

The synthetic generator is :mod:`pretrain.data.synthetic` (``python -m pretrain.data.synthetic --help``);
it is not imported here so that ``python -m`` runs it without a double import.
"""

from pretrain.data.readers import *  # noqa: F401,F403  (the names in readers.__all__)
from pretrain.data.readers import __all__  # noqa: F401
