"""A simulated trajectory prepared for the Evolution page's player: frames, the followed gems,
the thinned series for the charts, and the play/scrub arithmetic (no widgets here)."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np
import pandas as pd

from core.engine import Trajectory
from ui.compute import frames, thin_times

PLAY_TICKS = 60  # a full play-through takes about this many ticks
TICK_S = 0.5  # the player's timer (st.fragment run_every)
SPEEDS = {"10 s": 10.0, "30 s": 30.0, "1 min": 60.0, "2 min": 120.0}  # wall time of a full play-through
DEFAULT_SPEED = "30 s"


@dataclass
class Playback:
    series: pd.DataFrame  # Trajectory.series: one row per time point
    times: np.ndarray  # lattice time of each frame
    ids: list  # the gems recorded individually
    titles: list  # their titles
    phase: np.ndarray  # phase[frame, recorded gem], radians
    coherence: np.ndarray  # coherence[frame, recorded gem], 0-1
    highlight: list[int]  # positions of the followed gems among the recorded ones
    drawn: pd.DataFrame  # the series thinned for the charts (MAX_CHART_POINTS)
    drawn_gems: pd.DataFrame  # the followed gems' series, thinned alike

    @classmethod
    def of(cls, traj: Trajectory, titles: dict, chosen: Sequence) -> Playback:
        """Frames of ``traj``; ``chosen`` are the followed gem ids (drawn as lines, ringed on the phasors)."""
        series = traj.series
        ids, phase, coherence = frames(traj)
        position = {g: k for k, g in enumerate(ids)}
        # The charts get at most MAX_CHART_POINTS time points (the followed gems only); the phasors use every frame.
        drawn, drawn_gems = thin_times(series, traj.gems[traj.gems["gem"].isin(chosen)])
        return cls(series, series["time"].to_numpy(), ids, [titles.get(g, g) for g in ids], phase, coherence,
                   [position[g] for g in chosen if g in position], drawn, drawn_gems)

    @property
    def n_frames(self) -> int:
        return len(self.times)

    @property
    def stride(self) -> int:
        """Frames per tick of the player."""
        return max(1, self.n_frames // PLAY_TICKS)

    def frame_at(self, t: float) -> int:
        """The frame shown at time ``t`` (the first at or after it, within the trajectory)."""
        return int(np.clip(np.searchsorted(self.times, t - 1e-9), 0, self.n_frames - 1))

    def next_frame(self, t: float) -> int:
        """The frame one tick after time ``t`` (at most the last)."""
        k = int(np.searchsorted(self.times, t - 1e-9))
        return min(k + self.stride, self.n_frames - 1)

    def frame_at_wall(self, t_start: float, elapsed_s: float, duration_s: float) -> int:
        """The frame to show ``elapsed_s`` seconds of wall time after playing from ``t_start``,
        a full play-through taking ``duration_s``: tied to the clock, not to the ticks, so a
        slow tick skips frames instead of stretching the play (the end is the last frame)."""
        span = float(self.times[-1] - self.times[0])
        t = float(t_start) + span * max(0.0, float(elapsed_s)) / max(float(duration_s), 1e-9)
        if t >= self.times[-1] - 1e-9:
            return self.n_frames - 1
        return self.frame_at(t)

    def order_parameter(self, k: int) -> complex:
        """``R e^{i psi}`` of frame ``k``."""
        return self.series["R"].iloc[k] * np.exp(1j * self.series["psi"].iloc[k])
