"""The seed's ``QuantumState`` and ``calculate_interference`` at their contract path.

The design contract (docs/architecture.md, section 1) promises
``from core.quantum import QuantumState, calculate_interference`` to other code and checks; the
implementation lives in :mod:`core.engine.quantum`. Project code imports ``core.engine``; only that promise imports this module.
"""
from core.engine.quantum import QuantumState, calculate_interference

__all__ = ["QuantumState", "calculate_interference"]
