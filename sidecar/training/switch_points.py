"""What a randomised level switch says about each level, given what the model knows of the player.

The evidence a value head on the recurrent state would learn from (issue #20, item 1), and a check,
from recordings alone, of whether it could choose better than a fixed level before anything is built.

In a `piecewise` session (sim/offline.py) the level is drawn uniformly at random and held 200-400 s,
then drawn again. Each draw after the first is a randomised experiment at a moment when the model has
already watched the player: the point's *state* is the model's (the normalised GRU output and its
heads) on the step before the switch, its *level* the one the knobs settled at `settle_s` later, and
its outcomes what followed: the rest of the session (with further random switches after the hold,
which do not depend on this level) and the share of the next value horizon played. The first draw
(at the session's start) is a switch point too, with an empty state: it can teach only a level for
everyone. A point's level is independent of its state, so comparing outcomes across levels at similar
states measures what the level does, and a choice of level by state can be scored on held-out
sessions without ever playing it: doubly robust, the fitted outcome at the chosen level plus the
kernel-weighted error of the fit at the level the point actually got (the levels are uniform, so the
kernel over them is the propensity).

The outcome model is deliberately small (a piecewise-linear curve in the level whose values at six
knots are linear in a few features of the state, fitted with a ridge): thousands of switch points, not
millions. Bootstrap members (sessions resampled) give the spread a conservative choice reads: move off
the designer's level only where the gain's lower bound clears a margin. What it found: docs/director-eval-2026-12-01.md.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, fields, replace

import numpy as np
import torch

from sidecar.features import P
from sidecar.model.player_model import PlayerModel
from sidecar.training.batches import forward_session
from sidecar.training.dataset import SessionExamples

__all__ = [
    "LEVELS",
    "OutcomeFit",
    "SwitchPoints",
    "choose",
    "compare_choices",
    "doubly_robust",
    "fit_outcomes",
    "switch_points",
    "switch_steps",
]

LEVELS = np.linspace(0.0, 1.0, 21)  # the candidate levels a choice picks from
_KERNEL_WIDTH = 0.08  # level units: how near a point's level must be to count for a chosen one
_KNOTS = np.linspace(0.0, 1.0, 6)  # the outcome's curve in the level: piecewise linear between these
_OUTPUTS = ("skill", "engagement", "frustration", "p_quit", "p_fail", "level_before")


@dataclass
class SwitchPoints:
    state: np.ndarray  # [N, H] the model's normalised GRU output on the step before the switch (0: first draw)
    outputs: np.ndarray  # [N, 6] the model's skill, engagement, frustration, p_quit, p_fail and the level before
    level: np.ndarray  # [N] the level the switch settled at
    remaining_s: np.ndarray  # [N] the rest of the session from the switch, seconds
    played: np.ndarray  # [N] share of the value horizon played after the switch
    session: np.ndarray  # [N] int: which session (the bootstrap and the folds resample sessions)
    time_s: np.ndarray  # [N] game time of the switch (0: the session's first draw)

    def __len__(self) -> int:
        return len(self.level)

    def subset(self, keep: np.ndarray) -> SwitchPoints:
        return SwitchPoints(**{f.name: getattr(self, f.name)[keep] for f in fields(self)})

    @staticmethod
    def concat(parts: Sequence[SwitchPoints]) -> SwitchPoints:
        """Several sets as one, their sessions numbered apart."""
        offset, renumbered = 0, []
        for p in parts:
            renumbered.append(replace(p, session=p.session + offset))
            offset += int(p.session.max(initial=-1)) + 1
        return SwitchPoints(
            **{f.name: np.concatenate([getattr(p, f.name) for p in renumbered]) for f in fields(SwitchPoints)}
        )

    def save(self, path: str) -> None:
        np.savez_compressed(path, **{f.name: getattr(self, f.name) for f in fields(self)})

    @staticmethod
    def load(path: str) -> SwitchPoints:
        with np.load(path) as d:
            return SwitchPoints(**{f.name: d[f.name] for f in fields(SwitchPoints)})


def switch_steps(levels: np.ndarray, settle: int) -> list[int]:
    """Steps where a held level was drawn: the first, and each where the level starts to move after a
    step that did not (the knobs ease toward a new draw over a few steps), with `settle` steps after it."""
    n = len(levels)
    moving = np.abs(np.diff(levels)) > 1e-3  # [n-1] between step i and i+1
    starts = [0] + [i + 1 for i in range(1, n - 1) if moving[i] and not moving[i - 1]]
    return [t for t in starts if t + settle < n]


def switch_points(
    model: PlayerModel, sessions: Sequence[SessionExamples], model_hz: float, settle_s: float = 20.0
) -> SwitchPoints:
    """The switch points of these sessions (only those whose level was set at random count: `value_mask`;
    `compare_choices` scores only draws uniform on [0, 1], the `piecewise` sessions')."""
    settle = max(round(settle_s * model_hz), 1)
    captured: dict[str, torch.Tensor] = {}
    hook = model.core_norm.register_forward_hook(lambda _m, _i, out: captured.__setitem__("z", out))
    rows: dict[str, list] = {f.name: [] for f in fields(SwitchPoints)}
    model.eval()
    try:
        with torch.inference_mode():
            for g, s in enumerate(sessions):
                level = s.players[:, P["difficulty"]]
                steps = [t for t in switch_steps(level, settle) if s.value_mask[t]]
                if not steps:
                    continue
                last = max(steps) + 1  # the model runs only as far as the last switch
                out = forward_session(model, s, last)
                z = captured["z"][0].numpy()  # [T, H]
                heads = np.stack(
                    [
                        out.skill[0].numpy(),
                        out.engagement[0].numpy(),
                        out.frustration[0].numpy(),
                        torch.sigmoid(out.quit_logits[0, :, 1]).numpy(),  # at the level in force
                        torch.sigmoid(out.fail_logits[0, :, 0]).numpy(),
                        level[:last],
                    ],
                    1,
                )  # [T, 6]
                n = len(s)
                for t in steps:
                    before = t - 1
                    rows["state"].append(z[before] if t > 0 else np.zeros(z.shape[1], np.float32))
                    rows["outputs"].append(heads[before] if t > 0 else np.zeros(len(_OUTPUTS), np.float32))
                    rows["level"].append(level[t + settle])
                    rows["remaining_s"].append((n - t) / model_hz)
                    rows["played"].append(s.played[t])
                    rows["session"].append(g)
                    rows["time_s"].append(t / model_hz)
    finally:
        hook.remove()
    a = {k: np.asarray(v) for k, v in rows.items()}
    if not rows["level"]:
        a["state"], a["outputs"] = np.zeros((0, model.cfg.hidden)), np.zeros((0, len(_OUTPUTS)))
    return SwitchPoints(
        a["state"].astype(np.float32),
        a["outputs"].astype(np.float32),
        a["level"].astype(np.float64),
        a["remaining_s"].astype(np.float64),
        a["played"].astype(np.float64),
        a["session"].astype(int),
        a["time_s"].astype(np.float64),
    )


@dataclass
class OutcomeFit:
    """The outcome (a share in [0, 1]) as a piecewise-linear curve in the level whose values at the knots
    are linear in the state's features (least squares, a ridge on the features' part); `members`
    bootstrap fits, the first on the data itself. Piecewise linear rather than a logistic quadratic:
    a curve that peaks inside [0, 1] and falls toward zero on one side is not a quadratic in the logit
    (such a fit puts the peak at an end of the range, where it is not)."""

    basis: str  # "outputs": the model's heads; "state": the first principal components of the GRU output
    target: str  # "remaining": the rest of the session over `cap_s`; "played": the value horizon's share
    cap_s: float
    coefficients: np.ndarray  # [M, F]
    mean: np.ndarray = field(default_factory=lambda: np.zeros(0))  # the basis's centring
    scale: np.ndarray = field(default_factory=lambda: np.ones(0))
    components: np.ndarray = field(default_factory=lambda: np.zeros((0, 0)))  # [k, H] (state basis)

    def features(self, points: SwitchPoints) -> np.ndarray:
        """[N, k] the state's features; zero at a session's first draw (nothing is known then)."""
        if self.basis == "outputs":
            x = (points.outputs - self.mean) / self.scale
        else:
            x = ((points.state - self.mean) / self.scale) @ self.components.T
        return np.where((points.time_s > 0)[:, None], x, 0.0)

    def design(self, points: SwitchPoints, level: np.ndarray) -> np.ndarray:
        """[N, F]: the level's hat functions (_KNOTS), for a first draw apart and times 1 and each feature."""
        x = self.features(points)
        a = np.broadcast_to(np.asarray(level, np.float64), (len(points),))
        hats = np.clip(1.0 - np.abs(a[:, None] - _KNOTS[None, :]) / (_KNOTS[1] - _KNOTS[0]), 0.0, 1.0)  # [N, J]
        first = (points.time_s <= 0)[:, None]
        later = np.where(first, 0.0, hats)
        cols = [np.where(first, hats, 0.0), later, *(later * x[:, [j]] for j in range(x.shape[1]))]
        return np.concatenate(cols, 1)

    def predict(self, points: SwitchPoints, level: np.ndarray | float) -> np.ndarray:
        """[M, N] the outcome each member predicts at this level (a scalar or one per point)."""
        return np.clip(self.design(points, np.asarray(level, np.float64)) @ self.coefficients.T, 0.0, 1.0).T

    def outcome(self, points: SwitchPoints) -> np.ndarray:
        return np.clip(points.remaining_s / self.cap_s, 0.0, 1.0) if self.target == "remaining" else points.played


def _ridge(x: np.ndarray, y: np.ndarray, weight: np.ndarray, ridge: float) -> np.ndarray:
    """Weighted least squares with a ridge on everything but the level's own curves (the first 2J columns)."""
    penalty = np.full(x.shape[1], ridge)
    penalty[: 2 * len(_KNOTS)] = 1e-6
    xw = x * weight[:, None]
    return np.linalg.solve(xw.T @ x + np.diag(penalty), xw.T @ y)


def fit_outcomes(
    points: SwitchPoints,
    basis: str = "state",
    target: str = "remaining",
    cap_s: float = 900.0,
    members: int = 8,
    components: int = 6,
    ridge: float = 3.0,
    seed: int = 0,
) -> OutcomeFit:
    if basis not in ("state", "outputs") or target not in ("remaining", "played"):
        raise ValueError(f"basis must be 'state' or 'outputs', target 'remaining' or 'played' (got {basis}, {target})")
    if len(points) == 0:
        raise ValueError("no switch points to fit (sessions whose level was drawn at random: `piecewise`)")
    known = points.time_s > 0
    fit = OutcomeFit(basis, target, cap_s, np.zeros((0, 0)))
    raw = points.outputs if basis == "outputs" else points.state
    src = raw[known] if known.any() else raw  # a first draw's state is empty: centre on the others
    fit.mean, fit.scale = src.mean(0), src.std(0) + 1e-6
    if basis == "state":
        _, _, vt = np.linalg.svd((src - fit.mean) / fit.scale, full_matrices=False)
        fit.components = vt[:components]
    x, y = fit.design(points, points.level), fit.outcome(points)
    rng = np.random.default_rng(seed)
    n_sessions = int(points.session.max()) + 1
    coefs = []
    for m in range(members):
        w = np.ones(len(points)) if m == 0 else rng.poisson(1.0, n_sessions)[points.session].astype(np.float64)
        coefs.append(_ridge(x, y, w, ridge))
    fit.coefficients = np.stack(coefs)
    return fit


def choose(
    fit: OutcomeFit, points: SwitchPoints, designer: float, confidence: float = 0.0, margin: float = 0.01
) -> np.ndarray:
    """[N] a level per point: the best predicted (confidence 0), or the one whose gain over the designer's
    level has the best lower bound (mean - confidence x the members' spread), the designer's where none
    is above `margin` (in the outcome's units: 0.01 of a 900 s cap is 9 s). The margin stands for what
    eight members' spread misses: the best of 21 levels' noisy gains is biased upward."""
    pred = np.stack([fit.predict(points, c) for c in LEVELS], 2)  # [M, N, L]
    if confidence <= 0:
        return LEVELS[pred[0].argmax(1)]
    home = fit.predict(points, designer)[:, :, None]  # [M, N, 1]
    gain = pred - home
    lower = gain.mean(0) - confidence * gain.std(0, ddof=1)  # [N, L]
    best = lower.argmax(1)
    positive = lower[np.arange(len(points)), best] > margin
    return np.where(positive, LEVELS[best], designer)


def doubly_robust(fit: OutcomeFit, points: SwitchPoints, choice: np.ndarray) -> np.ndarray:
    """[N] per point, the estimated outcome had it got `choice` (the levels drawn uniformly on [0, 1])."""
    at_choice = fit.predict(points, choice)[0]
    at_level = fit.predict(points, points.level)[0]
    kernel = np.exp(-0.5 * ((points.level - choice) / _KERNEL_WIDTH) ** 2)
    # The kernel's mass over the uniform levels around each choice (less at the ends of [0, 1]).
    mass = np.exp(-0.5 * ((LEVELS[None, :] - np.asarray(choice)[:, None]) / _KERNEL_WIDTH) ** 2).mean(1)
    return at_choice + kernel / mass * (fit.outcome(points) - at_level)


def compare_choices(
    train: SwitchPoints,
    test: SwitchPoints,
    designer: float = 0.5,
    basis: str = "state",
    target: str = "remaining",
    cap_s: float = 900.0,
    boot: int = 300,
    seed: int = 0,
) -> dict[str, dict[str, float]]:
    """Each way of choosing a level, fitted on `train`, scored on `test`'s switch points after a session's
    first draw: its mean outcome (doubly robust, by `test`'s own fit), its ratio to the designer's level
    with a 95% interval over `test`'s sessions, and where it put the level."""
    pts = test.subset(test.time_s > 0)
    shares = np.histogram(pts.level, bins=5, range=(0.0, 1.0))[0] / max(len(pts), 1)
    if len(pts) < 50 or shares.min() < 0.1:
        # The score weighs each point's level as drawn uniformly (piecewise sessions); logs of directors
        # that draw near one level (static, perturbed) need their own propensities.
        raise ValueError(
            f"the test set's switch points must have levels drawn uniformly on [0, 1] (at least 50; got {len(pts)} "
            f"with shares by fifth of the range {np.round(shares, 2).tolist()}): record `piecewise` sessions"
        )
    fit = fit_outcomes(train, basis, target, cap_s, seed=seed)
    later = train.subset(train.time_s > 0)
    fixed = {float(c): float(doubly_robust(fit, later, np.full(len(later), c)).mean()) for c in LEVELS}
    best_fixed = max(fixed, key=lambda c: fixed[c])
    judge = fit_outcomes(test, basis, target, cap_s, members=1, seed=seed)  # scores with test's own outcomes
    n = len(pts)
    choices = {
        "designer": np.full(n, designer),
        "best fixed level on train": np.full(n, best_fixed),
        "by state": choose(fit, pts, designer),
        "by state, lower bound 1 sd": choose(fit, pts, designer, 1.0),
        "by state, lower bound 2 sd": choose(fit, pts, designer, 2.0),
    }
    values = {k: doubly_robust(judge, pts, c) for k, c in choices.items()}
    rng = np.random.default_rng(seed)
    sessions = np.unique(pts.session)
    where = {s: np.nonzero(pts.session == s)[0] for s in sessions}
    ratios: dict[str, list[float]] = {k: [] for k in values}
    for _ in range(boot):
        pick = np.concatenate([where[s] for s in rng.choice(sessions, len(sessions))])
        home = values["designer"][pick].mean()
        for k, v in values.items():
            ratios[k].append(float(v[pick].mean() / home))
    out: dict[str, dict[str, float]] = {}
    for k, v in values.items():
        lo, hi = np.percentile(ratios[k], [2.5, 97.5])
        c = choices[k]
        out[k] = {
            "mean": float(v.mean()),
            "vs_designer": float(v.mean() / values["designer"].mean()),
            "low": float(lo),
            "high": float(hi),
            "level_mean": float(c.mean()),
            "level_sd": float(c.std()),
            "moved": float(np.mean(np.abs(c - designer) > 1e-9)),
        }
    out["best fixed level on train"]["level"] = best_fixed
    out["_points"] = {"test": float(n), "test_sessions": float(len(sessions)), "train": float(len(later))}
    return out


def _main(argv: Sequence[str] | None = None) -> None:
    import argparse
    import json

    from sidecar.model.checkpoint import load_checkpoint
    from sidecar.training.dataset import load_examples

    p = argparse.ArgumentParser(
        prog="python -m sidecar.training.switch_points",
        description="Switch points of piecewise sessions, and choices of level by state scored on them.",
        allow_abbrev=False,  # options by their whole names, as `metabrain`'s (cli.py)
    )
    sub = p.add_subparsers(dest="cmd", required=True)
    pts = sub.add_parser(
        "points", allow_abbrev=False, help="examples (.npz from `metabrain dataset build`) -> switch points (.npz)"
    )
    pts.add_argument("examples")
    pts.add_argument("--out", required=True)
    pts.add_argument("--checkpoint", default=None, help="the model whose state is read (default: the bundled one)")
    pts.add_argument("--model-hz", type=float, default=5.0)
    cmp = sub.add_parser(
        "compare",
        allow_abbrev=False,
        help="fit on --train, score on --test (files comma-separated; the same for both: two folds by session)",
    )
    cmp.add_argument("--train", required=True)
    cmp.add_argument("--test", required=True)
    cmp.add_argument("--designer", type=float, default=0.5)
    cmp.add_argument("--basis", choices=["state", "outputs"], default="state")
    cmp.add_argument("--target", choices=["remaining", "played"], default="remaining")
    cmp.add_argument("--cap-s", type=float, default=900.0)
    a = p.parse_args(argv)
    if a.cmd == "points":
        model = load_checkpoint(a.checkpoint).model.float()
        switch_points(model, load_examples(a.examples), a.model_hz).save(a.out)
        return

    def read(paths: str) -> SwitchPoints:
        return SwitchPoints.concat([SwitchPoints.load(x) for x in paths.split(",")])

    how = (a.designer, a.basis, a.target, a.cap_s)
    if a.train != a.test:
        print(json.dumps(compare_choices(read(a.train), read(a.test), *how), indent=1))
        return
    points = read(a.train)
    order = np.random.default_rng(1).permutation(np.unique(points.session))
    folds = []
    for fold in range(2):
        held = np.isin(points.session, order[fold::2])
        folds.append(compare_choices(points.subset(~held), points.subset(held), *how))
    print(json.dumps(folds, indent=1))


if __name__ == "__main__":
    _main()
