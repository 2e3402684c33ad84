"""Moved to :mod:`stegonode.errors` (the one exception hierarchy); kept so older imports work."""

from stegonode.errors import *  # noqa: F403
from stegonode.errors import __all__  # noqa: F401
