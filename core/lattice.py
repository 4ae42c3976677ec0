"""``Lattice`` at its contract path (DESIGN.md section 4: ``from core.lattice import Lattice``).

The implementation lives in :mod:`core.engine.lattice`. Project code imports
``core.engine``; only that promise imports this module.
"""
from core.engine.lattice import Lattice

__all__ = ["Lattice"]
