"""`metabrain model-card`: the bundled model's card, written from the reports the commands produced."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from sidecar.model.checkpoint import load_checkpoint
from sidecar.model.player_model import parameter_count
from sidecar.training.director_report import figure, figure_name
from sidecar.training.director_report import markdown as directors_markdown
from sidecar.training.evaluate import markdown as eval_markdown

REPRODUCE = """```bash
metabrain dataset generate --out recs1/ --sessions 800 --seed 1
metabrain dataset generate --out recs2/ --sessions 1200 --seed 2
metabrain dataset build recs1/ recs2/ --out data.npz
metabrain train --data data.npz --out model.pt --version "metabrain-gru-s 2026.11.29" --epochs 6 --patience 2 \\
    --lanes 128 --chunk 32 --lr 1e-3 --weight-decay 1e-2 --dropout 0.2 --hidden 96 --threads 2 --report train.json
metabrain evaluate --checkpoint model.pt --data data.npz --split test --json eval.json --png reliability.png
metabrain evaluate-directors --checkpoint model.pt --players 1000 --json directors_default.json \\
    --policies "static:0.25,static:0.4,static:0.5,rubber_band,predictive,portfolio"
metabrain evaluate-directors --checkpoint model.pt --players 1000 --population holdout --seed 99 \\
    --policies "static:0.25,static:0.4,static:0.5,rubber_band,predictive,predictive:nohints,portfolio" \\
    --json directors_holdout.json
{surface}metabrain model-card --checkpoint model.pt --eval eval.json --directors directors_default.json \\
    directors_holdout.json --notes MODEL_CARD_NOTES.md --out MODEL_CARD.md
```

Every step is seeded; `train` calibrates the risk heads on the validation split at its end."""

# The value surface the `learned` director reads, when the checkpoint carries one.
SURFACE_STEPS = """metabrain dataset generate --out recs3/ --sessions 1200 --seed 21  # levels held at random
metabrain dataset generate --out recs4/ --sessions 1200 --seed 22 --population varied
metabrain dataset build recs3/ recs4/ --out data2.npz
metabrain train --data data2.npz --init model.pt --trainable none --value-members 20 --out model.pt  # the surface
"""


def write_card(checkpoint: str | None, eval_json: str, directors: list[str], out: str, notes: str = "") -> None:
    ckpt = load_checkpoint(checkpoint)
    ev: dict[str, Any] = json.loads(Path(eval_json).read_text())
    train = ckpt.extra.get("train", {})
    cfg = ckpt.model.cfg
    tcfg = train.get("config", {})
    n_sessions = sum(train.get("sessions", {}).values())
    rate = float(ckpt.extra.get("model_rate_hz", 5.0))
    lines = [
        f"# Model card — {ckpt.version}",
        "",
        "The player model `metabrain serve` and `metabrain demo` load by default "
        "(`sidecar/checkpoints/default.pt`, float16 weights).",
        "",
        "## What it is",
        f"- A GRU player model ({parameter_count(ckpt.model):,} parameters: hidden {cfg.hidden}, {cfg.layers} layer, "
        f"NPC embedding {cfg.npc_embed}), one step per telemetry frame, state per player.",
        f"- Heads: p_fail (dies within {cfg.fail_horizon_s:g} s) and p_quit (quits within {cfg.quit_horizon_s:g} s), "
        "both conditioned on a difficulty level; frustration, engagement and skill (proxies, see below); and for each "
        f"nearby NPC the chance it lands damage within {cfg.npc_horizon_s:g} s under each tactic.",
        f"- Trained on telemetry at {rate:g} frames/s (the simulator's default). The sidecar's model clock steps it at "
        "that rate whatever rate the game sends (frames between steps are folded in and answered from the latest "
        "prediction), so a 60 Hz stream gives the predictions of the same game sent at 5 Hz at its step times "
        "(`tests/test_model_clock.py`); those sit on a grid shifted per session by a share of a period, so "
        "sessions that start together step in different ticks.",
        "",
        *_value_surface_lines(ckpt.extra.get("value_fit"), cfg.value_members, cfg.value_grid),
        "## Data",
        f"- {n_sessions} simulated sessions of the `default` population (archetypes novice, casual, core, "
        "expert), recorded through the same protobuf frames a game sends, with difficulty driven by a mix of "
        "random-walk, static (random level), rubber-band and intensity directors and NPC tactics randomised, so "
        "the data covers every difficulty and every tactic. Split by session (never by frame), seed 0: "
        f"{train.get('sessions', {})}.",
        "- Labels come from each session's future: a death within the horizon, a quit within the horizon; "
        "frustration = deaths in [t−60 s, t+30 s] / 3; engagement = mean future activity over 30 s (scaled "
        "down when the player quits within it); skill = kills / (kills + 4 deaths + 5) over the session.",
        "",
        "## Training",
        f"- Truncated BPTT over {tcfg.get('lanes')} lanes × {tcfg.get('chunk')} frames, AdamW (weight decay "
        f"{tcfg.get('weight_decay')}), one-cycle cosine schedule peaking at {tcfg.get('lr')}, dropout "
        f"{tcfg.get('dropout')}, early stopping on validation loss (best "
        f"{train.get('best_val_loss', float('nan')):.4f}), {train.get('seconds', 0):.0f} s on 2 CPU cores.",
        "",
        "## Evaluation on held-out sessions",
        "",
        eval_markdown(ev).split("\n", 2)[2],
        "![reliability](reliability.png)",
        "",
        "## Director evaluation",
        "",
    ]
    for d in directors:
        report = json.loads(Path(d).read_text())
        # Drawn from the report each time the card is written, so the figure is as new as its table.
        drawn = figure(report, Path(out).parent / figure_name(report))
        lines += [directors_markdown(report), f"![directors on {report['population']}]({drawn.name})", ""]
    if notes:
        lines += ["## Notes", "", notes, ""]
    surface = SURFACE_STEPS if ckpt.extra.get("value_fit") else ""
    lines += ["## Reproduce", "", REPRODUCE.replace("{surface}", surface), ""]
    Path(out).write_text("\n".join(lines))


def _value_surface_lines(fit: dict[str, float] | None, members: int, grid: int) -> list[str]:
    """What the `learned` director reads, when the checkpoint has it."""
    if not members:
        return []
    how = (
        f" Fitted from {fit['points']:.0f} points in {fit['sessions']:.0f} sessions (mean share played "
        f"{fit['mean_played']:.2f}; {fit['cells_with_support']:.0%} of the cells with data)."
        if fit
        else ""
    )
    return [
        "## The learned director's value surface",
        f"- A table beside the network, {grid} × {grid} over (the model's skill estimate, difficulty level held), of "
        "the share of the next 300 s a player goes on playing, in "
        f"{members} bootstrap replicates (resampled by session): the `learned` director's objective, its spread the "
        "director's confidence." + how,
        "- Read only from sessions whose level was set at random and held 200-400 s (the `piecewise` data "
        "policy), every 30 s from t ≥ 30 s: the level there does not follow the player, so the table measures "
        "what a level does rather than what a director reacting to a struggling player was seeing. "
        "Kernel-smoothed and shrunk toward each skill row's mean where data is thin.",
        "- `metabrain train --init default.pt --trainable none --data <your recordings>` refits only this table "
        "(the network untouched), shrunk toward the shipped one: how a studio adapts the director to its players.",
        "",
    ]
