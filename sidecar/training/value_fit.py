"""The value surface: for a player of a given skill (as the model estimates it) and a level held, the
share of the next value_horizon_s they go on playing. What the learned director maximises.

Fitted after the network, from sessions whose level was set at random, independently of the player (a
piecewise session's levels, a static session's): in those, which level a player got says nothing
about the player, so comparing outcomes across levels at the same skill estimate measures the level's
effect. Points every `every_s` seconds of each such session (from `min_t_s` on, once the skill estimate
has seen some play), smoothed over the (skill, level) grid by a Gaussian kernel, and shrunk toward a
prior where the data are thin: the skill's mean over all levels (no effect of the level: a director
reading it stays at the designer's level), or, when adapting a shipped model to a game's own players,
the shipped surface. Bootstrap replicates (players resampled) give the spread the director's lower
confidence bound uses.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from sidecar.model.player_model import PlayerModel
from sidecar.training.batches import forward_session
from sidecar.training.dataset import SessionExamples

__all__ = ["ValuePoints", "fit_surface", "fit_value_surface", "value_points"]


@dataclass
class ValuePoints:
    skill: np.ndarray  # [N] the model's skill estimate at the point
    level: np.ndarray  # [N] the mean level over the value horizon after it
    played: np.ndarray  # [N] share of the horizon played after it
    group: np.ndarray  # [N] int: the session it comes from (the bootstrap resamples sessions)

    def __len__(self) -> int:
        return len(self.skill)


def value_points(
    model: PlayerModel, sessions: list[SessionExamples], model_hz: float, every_s: float = 30.0, min_t_s: float = 30.0
) -> ValuePoints:
    """Points from the sessions whose level was set at random (`value_mask` marks them), where the outcome
    is known."""
    skill: list[np.ndarray] = []
    level: list[np.ndarray] = []
    played: list[np.ndarray] = []
    group: list[np.ndarray] = []
    step = max(round(every_s * model_hz), 1)
    first = round(min_t_s * model_hz)
    model.eval()
    with torch.inference_mode():
        for g, s in enumerate(sessions):
            if not s.value_mask.any():
                continue
            out = forward_session(model, s)
            est = out.skill[0].numpy()
            at = np.arange(first, len(s), step)
            at = at[s.played_known[at]]
            skill.append(est[at])
            level.append(s.level_value[at])
            played.append(s.played[at])
            group.append(np.full(len(at), g))
    if not skill:
        empty = np.zeros(0)
        return ValuePoints(empty, empty, empty, np.zeros(0, int))
    cat = np.concatenate
    return ValuePoints(cat(skill), cat(level), cat(played), cat(group).astype(int))


def fit_surface(
    points: ValuePoints,
    grid: int,
    members: int,
    seed: int = 0,
    bandwidth: tuple[float, float] = (0.06, 0.06),
    prior: np.ndarray | None = None,
    prior_weight: float = 8.0,
) -> tuple[np.ndarray, np.ndarray]:
    """([M, G, G] share played by (skill, level) per bootstrap replicate, [G, G] kernel weight of the
    data behind each point). prior: [G, G] the surface to shrink toward (default: each skill row's mean)."""
    axis = np.linspace(0.0, 1.0, grid)
    ks = np.exp(-0.5 * ((points.skill[:, None] - axis[None, :]) / bandwidth[0]) ** 2)  # [N, G]
    kl = np.exp(-0.5 * ((points.level[:, None] - axis[None, :]) / bandwidth[1]) ** 2)  # [N, G]
    rng = np.random.default_rng(seed)
    n_groups = int(points.group.max(initial=-1)) + 1
    out = np.empty((members, grid, grid))
    for m in range(members):
        # Replicate 0 is the data itself; the others resample sessions (Poisson(1) counts).
        w = np.ones(len(points)) if m == 0 else rng.poisson(1.0, n_groups)[points.group].astype(float)
        wk = ks * w[:, None]  # [N, G]
        weight = wk.T @ kl  # [G, G]
        total = wk.T @ (kl * points.played[:, None])  # [G, G]
        if prior is None:  # each skill's mean over all levels (the overall mean where a skill has no data)
            overall = float(np.average(points.played, weights=w)) if w.sum() else 0.5
            row = ((wk * points.played[:, None]).sum(0) + overall) / (wk.sum(0) + 1.0)  # [G]
            base = np.broadcast_to(row[:, None], (grid, grid))
        else:
            base = prior
        out[m] = (total + prior_weight * base) / (weight + prior_weight)
    support = ks.T @ kl
    return out, support


def fit_value_surface(
    model: PlayerModel,
    sessions: list[SessionExamples],
    model_hz: float,
    seed: int = 0,
    shrink_to_model: bool = False,
) -> dict[str, float]:
    """Fit the model's value surface in place from these sessions; returns a summary for the report.
    shrink_to_model: shrink toward the surface the model has (adapting it to new players' recordings)."""
    members, grid = model.value_surface.shape[0], model.value_surface.shape[1]
    if members == 0:
        return {"points": 0.0}
    points = value_points(model, sessions, model_hz)
    prior = None
    if shrink_to_model:
        prior = torch.sigmoid(model.value_surface[0]).numpy().astype(np.float64)
    surface, support = fit_surface(points, grid, members, seed, prior=prior)
    p = np.clip(surface, 1e-4, 1 - 1e-4)
    model.value_surface.copy_(torch.from_numpy(np.log(p / (1 - p))).float())
    return {
        "points": float(len(points)),
        "sessions": float(len(np.unique(points.group))),
        "mean_played": float(points.played.mean()) if len(points) else 0.0,
        "cells_with_support": float((support >= 1.0).mean()),
    }
