"""Platt scaling of the p_fail and p_quit logits on the validation split (two numbers per head).

A sequence model trained to early stopping is often mis-calibrated on new sessions; a scale and a bias
per risk head, fitted on held-out validation sessions, fixes the probabilities without touching the
ranking (AUC is unchanged).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from sidecar.model.player_model import PlayerModel
from sidecar.training.batches import rollout
from sidecar.training.dataset import SessionExamples


@torch.no_grad()
def _raw_logits(model: PlayerModel, sessions: list[SessionExamples], chunk: int) -> tuple[torch.Tensor, ...]:
    model.eval()
    scale, bias = model.risk_scale.clone(), model.risk_bias.clone()
    model.risk_scale.fill_(1.0)
    model.risk_bias.zero_()
    fl, fy, ql, qy = [], [], [], []
    for b, out in rollout(model, sessions, chunk):
        fl.append(out.fail_logits[..., 0][b.valid])
        fy.append(b.targets["fail"][b.valid])
        ql.append(out.quit_logits[..., 1][b.valid])
        qy.append(b.targets["quit"][b.valid])
    model.risk_scale.copy_(scale)
    model.risk_bias.copy_(bias)
    return torch.cat(fl), torch.cat(fy), torch.cat(ql), torch.cat(qy)


def _fit(logits: torch.Tensor, y: torch.Tensor) -> tuple[float, float]:
    a = torch.ones(1, requires_grad=True)
    b = torch.zeros(1, requires_grad=True)
    opt = torch.optim.LBFGS([a, b], lr=0.5, max_iter=200)

    def closure() -> torch.Tensor:
        opt.zero_grad()
        loss = F.binary_cross_entropy_with_logits(logits * a + b, y)
        loss.backward()
        return loss

    opt.step(closure)
    return a.item(), b.item()


def calibrate(model: PlayerModel, val_sessions: list[SessionExamples], chunk: int = 64) -> dict[str, float]:
    fl, fy, ql, qy = _raw_logits(model, val_sessions, chunk)
    fa, fb = _fit(fl, fy)
    qa, qb = _fit(ql, qy)
    with torch.no_grad():
        model.risk_scale.copy_(torch.tensor([fa, qa]))
        model.risk_bias.copy_(torch.tensor([fb, qb]))
    return {"fail_scale": fa, "fail_bias": fb, "quit_scale": qa, "quit_bias": qb}
