"""Checkpoints: weights + config + feature-layout hash + model version, checked on load."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from sidecar.engine.clock import DEFAULT_MODEL_RATE_HZ
from sidecar.features import FEATURE_LAYOUT_VERSION, layout_hash
from sidecar.model.player_model import ModelConfig, PlayerModel

DEFAULT_CHECKPOINT = Path(__file__).resolve().parent.parent / "checkpoints" / "default.pt"


class CheckpointError(ValueError):
    """A checkpoint that cannot serve: wrong feature layout, missing fields, unreadable file."""


@dataclass
class Checkpoint:
    model: PlayerModel
    version: str
    trained: bool
    metrics: dict[str, Any] = field(default_factory=dict)
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def model_rate_hz(self) -> float:
        """The telemetry rate the model was trained at: the rate its sessions are stepped at. Checkpoints
        from before it was recorded were trained at 5 Hz (the simulator's default)."""
        return float(self.extra.get("model_rate_hz", DEFAULT_MODEL_RATE_HZ))


def save_checkpoint(
    path: str | Path,
    model: PlayerModel,
    version: str,
    *,
    trained: bool,
    metrics: dict[str, Any] | None = None,
    extra: dict[str, Any] | None = None,
) -> None:
    state = {
        k: v.detach().cpu().to(torch.float16 if v.is_floating_point() else v.dtype)
        for k, v in model.state_dict().items()
    }
    torch.save(
        {
            "format": 1,
            "config": model.cfg.to_dict(),
            "feature_layout_version": FEATURE_LAYOUT_VERSION,
            "feature_layout_hash": layout_hash(),
            "model_version": version,
            "trained": trained,
            "metrics": metrics or {},
            "extra": extra or {},
            "state_dict": state,
        },
        path,
    )


def load_checkpoint(path: str | Path | None = None) -> Checkpoint:
    path = Path(path) if path else DEFAULT_CHECKPOINT
    if not path.exists():
        raise CheckpointError(f"checkpoint {path} does not exist")
    try:
        blob = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # a corrupt file must say which file
        raise CheckpointError(f"checkpoint {path} could not be read: {exc}") from exc
    want = layout_hash()
    got = blob.get("feature_layout_hash")
    if got != want:
        raise CheckpointError(
            f"checkpoint {path} was trained on feature layout {got} (v{blob.get('feature_layout_version')}), "
            f"but this sidecar builds layout {want} (v{FEATURE_LAYOUT_VERSION}); retrain it with `metabrain train`"
        )
    config = {k: v for k, v in blob["config"].items() if k != "value_hidden"}  # the value heads' width
    if "value_in.weight" in blob["state_dict"]:
        config["value_members"] = 0  # a checkpoint with value heads has no surface
    cfg = ModelConfig(**config)
    model = PlayerModel(cfg)
    state = {k: v.float() if v.is_floating_point() else v for k, v in blob["state_dict"].items()}
    # Checkpoints from before calibration existed carry none: identity calibration.
    state.setdefault("risk_scale", torch.ones(2))
    state.setdefault("risk_bias", torch.zeros(2))
    # ... and before the value surface, none (the learned director then keeps the designer's level).
    state.setdefault("value_surface", model.value_surface)
    for old in ("value_in.weight", "value_in.bias", "value_out_w", "value_out_b"):  # the value heads it replaced
        state.pop(old, None)
    model.load_state_dict(state)
    model.eval()
    return Checkpoint(
        model, str(blob["model_version"]), bool(blob["trained"]), blob.get("metrics", {}), blob.get("extra", {})
    )
