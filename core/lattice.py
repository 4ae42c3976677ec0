"""``Lattice`` at its contract path (``from core.lattice import Lattice``; docs/architecture.md, section 1).

The implementation lives in :mod:`core.engine.lattice`. Project code imports
``core.engine``; only that promise imports this module.
"""
from core.engine.lattice import Lattice

__all__ = ["Lattice"]
