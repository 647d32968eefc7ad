"""`metabrain evaluate`: the seed's metrics on held-out sessions, per head, with calibration plots.

For the binary heads (p_fail, p_quit, and the NPC tactic head): AUC, accuracy, precision, recall and
F1 at a chosen threshold, and the expected calibration error (ECE, 10 equal-width bins) with a
reliability diagram. For the [0, 1] state heads (frustration, engagement, skill): mean absolute error
and correlation with their proxies.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from sidecar.model.checkpoint import load_checkpoint
from sidecar.model.player_model import PlayerModel
from sidecar.training.batches import rollout
from sidecar.training.dataset import SessionExamples, load_examples
from sidecar.training.train import TrainConfig, split_sessions


def auc(y: np.ndarray, p: np.ndarray) -> float:
    """Area under the ROC curve by the rank statistic (ties averaged); NaN with one class only."""
    return SessionWeightedAUC(([y], [p]))(np.ones(1, np.int64))


def calibration(y: np.ndarray, p: np.ndarray, bins: int = 10) -> tuple[float, list[dict[str, float]]]:
    edges = np.linspace(0.0, 1.0, bins + 1)
    idx = np.clip(np.digitize(p, edges) - 1, 0, bins - 1)
    ece, table = 0.0, []
    for b in range(bins):
        sel = idx == b
        if not sel.any():
            continue
        conf, acc = float(p[sel].mean()), float(y[sel].mean())
        ece += sel.mean() * abs(conf - acc)
        table.append({"bin": b, "count": int(sel.sum()), "predicted": conf, "observed": acc})
    return float(ece), table


def binary_metrics(y: np.ndarray, p: np.ndarray, threshold: float) -> dict[str, Any]:
    pred = p >= threshold
    yb = y >= 0.5
    tp, fp = int((pred & yb).sum()), int((pred & ~yb).sum())
    fn, tn = int((~pred & yb).sum()), int((~pred & ~yb).sum())
    precision = tp / max(tp + fp, 1)
    recall = tp / max(tp + fn, 1)
    ece, table = calibration(yb.astype(np.float64), p)
    return {
        "n": len(y),
        "positive_rate": float(yb.mean()),
        "auc": auc(yb, p),
        "threshold": threshold,
        "accuracy": (tp + tn) / max(len(y), 1),
        "precision": precision,
        "recall": recall,
        "f1": 2 * precision * recall / max(precision + recall, 1e-12),
        "ece": ece,
        "reliability": table,
    }


@dataclass
class Predictions:
    fail: tuple[np.ndarray, np.ndarray]  # (labels, probabilities)
    quit: tuple[np.ndarray, np.ndarray]
    npc: tuple[np.ndarray, np.ndarray]
    states: dict[str, tuple[np.ndarray, np.ndarray]]


_STATES = ("frustration", "engagement", "skill")  # the state heads, scored against their targets


def predict_sessions(
    model: PlayerModel, sessions: list[SessionExamples], chunk: int = 64, lanes: int = 64
) -> list[Predictions]:
    """Each session's predictions (its frames in order), from one batched rollout over all of them:
    a session's lane carries only its own state, so these are the figures it gets alone."""
    acc: list[dict[str, list[np.ndarray]]] = [{} for _ in sessions]
    for b, out in rollout(model, sessions, chunk, lanes):
        v = b.valid
        tactic = b.targets["npc_tactic"]
        seen = (tactic >= 0) & v.unsqueeze(-1)
        npc_logit = out.npc_logits.gather(-1, tactic.clamp_min(0).unsqueeze(-1)).squeeze(-1)
        parts: dict[str, tuple[torch.Tensor, torch.Tensor]] = {  # key: (value [B, T, ...], frames kept [B, T, ...])
            "fail_y": (b.targets["fail"], v),
            "fail_p": (torch.sigmoid(out.fail_logits[..., 0]), v),
            "quit_y": (b.targets["quit"], v),
            "quit_p": (torch.sigmoid(out.quit_logits[..., 1]), v),
            "npc_y": (b.targets["npc_hit"], seen),
            "npc_p": (torch.sigmoid(npc_logit), seen),
        }
        for name in _STATES:
            parts[f"{name}_y"] = (b.targets[name], v)
            parts[f"{name}_p"] = (getattr(out, name), v)
        arrays = {k: (value.float().numpy(), keep.numpy()) for k, (value, keep) in parts.items()}
        for lane, si in enumerate(b.session.tolist()):  # each lane's kept frames to the session it holds
            if si >= 0:
                for k, (value_np, keep_np) in arrays.items():
                    acc[si].setdefault(k, []).append(value_np[lane][keep_np[lane]])
    return [_gathered(a) for a in acc]


def predict(model: PlayerModel, sessions: list[SessionExamples], chunk: int = 64, lanes: int = 64) -> Predictions:
    """Every frame of `sessions`, pooled."""
    return _joined(predict_sessions(model, sessions, chunk, lanes))


def _gathered(acc: dict[str, list[np.ndarray]]) -> Predictions:
    cat = {k: np.concatenate(v) for k, v in acc.items()}

    def pair(name: str) -> tuple[np.ndarray, np.ndarray]:
        return cat.get(f"{name}_y", np.zeros(0, np.float32)), cat.get(f"{name}_p", np.zeros(0, np.float32))

    return Predictions(fail=pair("fail"), quit=pair("quit"), npc=pair("npc"), states={n: pair(n) for n in _STATES})


# The share of resampled AUCs an interval holds (`evaluate --bootstrap`; the markdown names it).
AUC_INTERVAL = 0.95


# The risk heads an interval is given for, and where their (labels, probabilities) sit in Predictions.
_RISK_HEADS: tuple[tuple[str, Callable[[Predictions], tuple[np.ndarray, np.ndarray]]], ...] = (
    ("p_fail", lambda p: p.fail),
    ("p_quit", lambda p: p.quit),
)
_Sessions = tuple[list[np.ndarray], list[np.ndarray]]  # one head's labels and probabilities, per session


class SessionWeightedAUC:
    """One head's AUC over the frames of many sessions pooled, each session counted `counts[i]` times
    (a bootstrap draw's multiplicities): the rank statistic of the frames so repeated (ties count a
    half), from one sort made up front, so a resample costs a pass over the frames instead of a sort of
    them. `auc` is the one-session case."""

    def __init__(self, side: _Sessions) -> None:
        labels, probs = side
        p = np.concatenate(probs) if probs else np.zeros(0)
        order = np.argsort(p, kind="mergesort")
        _, group = np.unique(p[order], return_inverse=True)  # tie group of each sorted frame, ascending
        session = np.repeat(np.arange(len(labels)), [len(y) for y in labels])
        self.sessions = len(labels)
        self._group = group.reshape(-1)
        self._groups = int(self._group.max()) + 1 if len(p) else 0
        self._positive = (np.concatenate(labels) if labels else np.zeros(0)).astype(bool)[order]
        self._session = session[order]

    def __call__(self, counts: np.ndarray) -> float:
        w = counts[self._session].astype(np.float64)  # [frames]: each frame's session's count
        pos = np.bincount(self._group, w * self._positive, self._groups)  # [groups]
        neg = np.bincount(self._group, w * ~self._positive, self._groups)
        n_pos, n_neg = pos.sum(), neg.sum()
        if n_pos == 0 or n_neg == 0:
            return float("nan")
        below = np.cumsum(neg) - neg  # the negatives' weight scored below each tie group
        return float((pos * (below + 0.5 * neg)).sum() / (n_pos * n_neg))


def _auc_or_difference(sides: tuple[SessionWeightedAUC, ...], counts: np.ndarray) -> float:
    """One side's pooled AUC with the sessions counted so, or the first side's minus the second's."""
    first = sides[0](counts)
    return first - sides[1](counts) if len(sides) > 1 else first


def _resampled(sides: tuple[SessionWeightedAUC, ...], resamples: int, rng: np.random.Generator) -> tuple[float, float]:
    """The AUC_INTERVAL percentiles of _auc_or_difference over `resamples` draws of the sessions with
    replacement (a pair's sessions drawn together)."""
    n = sides[0].sessions
    draws = [_auc_or_difference(sides, np.bincount(rng.integers(0, n, n), minlength=n)) for _ in range(resamples)]
    lo, hi = np.percentile(draws, [50 * (1 - AUC_INTERVAL), 50 * (1 + AUC_INTERVAL)])
    return float(lo), float(hi)


def _sessions_of(
    preds: list[Predictions], get: Callable[[Predictions], tuple[np.ndarray, np.ndarray]]
) -> SessionWeightedAUC:
    return SessionWeightedAUC(([get(p)[0] for p in preds], [get(p)[1] for p in preds]))


def session_intervals(per_session: list[Predictions], resamples: int, seed: int = 0) -> dict[str, dict[str, float]]:
    """AUC of p_fail and p_quit with a session-bootstrap interval: sessions drawn with replacement, so
    the interval carries what frames of one session share (a frame bootstrap would be far too narrow).
    Two samples of other sessions differ by about this much though the model is the same."""
    rng = np.random.default_rng(seed)
    out: dict[str, dict[str, float]] = {}
    for head, get in _RISK_HEADS:
        lo, hi = _resampled((_sessions_of(per_session, get),), resamples, rng)
        out[head] = {"auc_low": lo, "auc_high": hi, "resamples": resamples}
    return out


def paired_differences(
    per_session: list[Predictions], baseline: list[Predictions], resamples: int, seed: int = 0
) -> dict[str, dict[str, float]]:
    """Each risk head's AUC minus the baseline's on the same sessions (the same players, e.g. recorded
    again at another telemetry rate), with an interval from resampling the pairs together: what the
    players share drops out of the difference, which an interval per side would count twice."""
    assert len(per_session) == len(baseline)
    rng = np.random.default_rng(seed)
    out: dict[str, dict[str, float]] = {}
    for head, get in _RISK_HEADS:
        pair = (_sessions_of(per_session, get), _sessions_of(baseline, get))
        lo, hi = _resampled(pair, resamples, rng)
        whole = np.ones(len(per_session), np.int64)
        out[head] = {"auc_diff": _auc_or_difference(pair, whole), "diff_low": lo, "diff_high": hi}
    return out


def evaluate(
    checkpoint: str | None,
    data: str,
    split: str = "test",
    threshold: float = 0.5,
    split_seed: int = 0,
    png: str | None = None,
    bootstrap: int = 0,
    paired_with: str | None = None,
) -> dict[str, Any]:
    """bootstrap: resamples of sessions for the risk heads' AUC intervals (0: none). paired_with: another
    dataset of the same sessions by name (the same seeded players at another rate, say): the AUC
    differences against it, with a paired interval over `bootstrap` resamples (200 if none given)."""
    ckpt = load_checkpoint(checkpoint)
    cfg = TrainConfig(data=data, out="", split_seed=split_seed)
    sessions = split_sessions(load_examples(data), cfg)[split] if split != "all" else load_examples(data)
    if not sessions:
        raise ValueError(f"no sessions in split {split!r} of {data}")
    intervals = paired = None
    if paired_with:
        bootstrap = bootstrap or 200
        others = {s.name: s for s in load_examples(paired_with)}
        sessions = [s for s in sessions if s.name in others]
        if not sessions:
            raise ValueError(f"no session of {data} ({split} split) has a namesake in {paired_with}")
    if bootstrap > 0:  # kept per session, to resample them
        per_session = predict_sessions(ckpt.model, sessions)
        intervals = session_intervals(per_session, bootstrap)
        preds = _joined(per_session)
        if paired_with:
            baseline = predict_sessions(ckpt.model, [others[s.name] for s in sessions])
            paired = {
                "data": str(paired_with),
                "resamples": bootstrap,
                **paired_differences(per_session, baseline, bootstrap),
            }
    else:
        preds = predict(ckpt.model, sessions)
    report: dict[str, Any] = {
        "model_version": ckpt.version,
        "data": str(data),
        "split": split,
        "sessions": len(sessions),
        "frames": len(preds.fail[0]),
        "heads": {
            "p_fail": binary_metrics(*preds.fail, threshold),
            "p_quit": binary_metrics(*preds.quit, threshold),
            "npc_tactic_hit": binary_metrics(*preds.npc, threshold),
        },
        "states": {
            name: {
                "mae": float(np.abs(y - p).mean()),
                "corr": float(np.corrcoef(y, p)[0, 1]) if y.std() > 0 else float("nan"),
            }
            for name, (y, p) in preds.states.items()
        },
    }
    if intervals is not None:
        for head, interval in intervals.items():
            report["heads"][head].update(interval)
    if paired is not None:
        report["paired"] = paired
    if png:
        reliability_png(report, png)
    return report


def _joined(parts: list[Predictions]) -> Predictions:
    def cat(get: Any) -> tuple[np.ndarray, np.ndarray]:
        return (np.concatenate([get(p)[0] for p in parts]), np.concatenate([get(p)[1] for p in parts]))

    return Predictions(
        fail=cat(lambda p: p.fail),
        quit=cat(lambda p: p.quit),
        npc=cat(lambda p: p.npc),
        states={n: cat(lambda p, n=n: p.states[n]) for n in _STATES},
    )


def reliability_png(report: dict[str, Any], path: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    heads = report["heads"]
    fig, axes = plt.subplots(1, len(heads), figsize=(4.2 * len(heads), 4))
    for ax, (name, m) in zip(axes, heads.items(), strict=True):
        t = m["reliability"]
        ax.plot([0, 1], [0, 1], "--", color="grey", lw=1)
        ax.plot([r["predicted"] for r in t], [r["observed"] for r in t], "o-", color="C0")
        ax.set_title(f"{name}\nAUC {m['auc']:.3f}  ECE {m['ece']:.3f}")
        ax.set_xlabel("predicted probability")
        ax.set_ylabel("observed frequency")
        ax.set_xlim(0, 1)
        ax.set_ylim(0, 1)
    fig.suptitle(f"Reliability on held-out sessions — {report['model_version']}")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def markdown(report: dict[str, Any]) -> str:
    lines = [
        f"# Evaluation — {report['model_version']}",
        "",
        f"{report['sessions']} held-out sessions ({report['split']} split), {report['frames']} frames.",
        "",
        "| head | AUC | accuracy | precision | recall | F1 | ECE | positives |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for name, m in report["heads"].items():
        lines.append(
            f"| {name} | {m['auc']:.3f} | {m['accuracy']:.3f} | {m['precision']:.3f} | {m['recall']:.3f} | "
            f"{m['f1']:.3f} | {m['ece']:.3f} | {m['positive_rate']:.3f} |"
        )
    bounded = [(n, m) for n, m in report["heads"].items() if "auc_low" in m]
    if bounded:
        spans = ", ".join(f"{n} {m['auc_low']:.3f}-{m['auc_high']:.3f}" for n, m in bounded)
        share, resamples = f"{AUC_INTERVAL:.0%}", bounded[0][1]["resamples"]
        lines += ["", f"AUC, {share} interval over {resamples} resamples of the sessions: {spans}."]
    if "paired" in report:
        pair = report["paired"]
        diffs = ", ".join(
            f"{h} {pair[h]['auc_diff']:+.4f} ({pair[h]['diff_low']:+.4f} to {pair[h]['diff_high']:+.4f})"
            for h in ("p_fail", "p_quit")
        )
        lines += [
            "",
            f"AUC minus the same {report['sessions']} sessions' in {pair['data']}, {AUC_INTERVAL:.0%} interval over "
            f"{pair['resamples']} resamples of the pairs: {diffs}.",
        ]
    lines += [
        "",
        f"Threshold {report['heads']['p_fail']['threshold']}.",
        "",
        "| state | MAE | correlation |",
        "|---|---|---|",
    ]
    for name, m in report["states"].items():
        lines.append(f"| {name} | {m['mae']:.3f} | {m['corr']:.3f} |")
    return "\n".join(lines) + "\n"


def write_reports(report: dict[str, Any], md_path: str | None, json_path: str | None) -> None:
    if md_path:
        Path(md_path).write_text(markdown(report))
    if json_path:
        Path(json_path).write_text(json.dumps(report, indent=2))
