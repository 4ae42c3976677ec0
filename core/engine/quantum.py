"""The seed's scalar API: ``QuantumState`` and ``calculate_interference``.

Kept exactly as the seed defines them (same attributes, defaults and in-place
``evolve``), plus the optional model parameters (docs/architecture.md, section 3) whose
defaults reproduce the seed bit for bit. For many gems use :class:`core.engine.lattice.Lattice`,
which vectorizes the same arithmetic.
"""
from __future__ import annotations

import numpy as np


class QuantumState:
    """State of one gem: energy, phase (radians, unwrapped), coherence, uncertainty.

    Parameters
    ----------
    lambda_ : decay scale (1/time unit); default 1.0 gives the seed's ``exp(-dt/E)``.
    f : frequency scale (rad/time unit); default 1.0 gives the seed's ``phase += E*dt``.
    u_rate : uncertainty growth per time unit; default 0.1 gives the seed's ``dt/10``.
    """

    def __init__(self, lambda_: float = 1.0, f: float = 1.0, u_rate: float = 0.1):
        self.energy = 1.0
        self.phase = 0.0
        self.coherence = 1.0
        self.uncertainty = 0.1
        self.lambda_ = lambda_
        self.f = f
        self.u_rate = u_rate

    def evolve(self, dt):
        """Time evolution of quantum state (in place)."""
        # Each expression reduces to the seed's exactly at the defaults:
        # 1.0*dt == dt, and dt/(1.0/0.1) == dt/10 (1.0/0.1 rounds to 10.0).
        self.coherence *= np.exp(-(self.lambda_ * dt) / self.energy)
        self.phase += self.energy * (self.f * dt)
        growth = dt / (1.0 / self.u_rate) if self.u_rate else 0.0
        self.uncertainty = min(1.0, self.uncertainty + growth)

    def __repr__(self) -> str:
        return (f"QuantumState(energy={self.energy!r}, phase={self.phase!r}, "
                f"coherence={self.coherence!r}, uncertainty={self.uncertainty!r})")


def calculate_interference(state1, state2):
    """Calculate quantum interference between states: cos(phi1 - phi2) * c1 * c2."""
    phase_diff = state1.phase - state2.phase
    return np.cos(phase_diff) * state1.coherence * state2.coherence
