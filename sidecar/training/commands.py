"""Subcommands: `metabrain dataset`, `metabrain train`, `metabrain evaluate`."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from sidecar.serving.worker_pool import report, run_pool

_FILES_PER_JOB = 16  # recordings featurized side by side (featurize_many) in one job


def _build_some(args: tuple[list[str], float, float, float, float]) -> list[Any]:
    from sidecar.training.dataset import Horizons, examples_of

    paths, fail_s, quit_s, npc_s, model_hz = args
    examples = examples_of(paths, Horizons(fail_s, quit_s, npc_s), model_hz)
    report(len(paths))
    return examples


def cmd_dataset(a: argparse.Namespace) -> int:
    """`metabrain dataset build`: recordings -> training examples."""
    from sidecar.operations.recording import recording_files
    from sidecar.training.dataset import save_examples

    files = sorted(map(str, recording_files(a.recordings)))
    if not files:
        print(f"metabrain dataset build: no .mbrec recordings in {' '.join(a.recordings)}", file=sys.stderr)
        return 2
    jobs = [
        (files[i : i + _FILES_PER_JOB], a.fail_horizon, a.quit_horizon, 5.0, a.model_hz)
        for i in range(0, len(files), _FILES_PER_JOB)
    ]
    done = run_pool(_build_some, jobs, a.workers, len(files), "featurizing recordings", "file")
    sessions = [s for result in done for s in result]
    frames = save_examples(a.out, sessions, a.model_hz)
    print(f"wrote {len(sessions)} player sequences, {frames} frames, to {a.out}")
    return 0


def cmd_train(a: argparse.Namespace) -> int:
    from sidecar.training.train import TrainConfig, train

    cfg = TrainConfig(
        data=a.data,
        out=a.out,
        version=a.version,
        hidden=a.hidden,
        layers=a.layers,
        dropout=a.dropout,
        weight_decay=a.weight_decay,
        lr=a.lr,
        schedule=a.schedule,
        epochs=a.epochs,
        patience=a.patience,
        lanes=a.lanes,
        chunk=a.chunk,
        seed=a.seed,
        split_seed=a.split_seed,
        max_steps=a.max_steps,
        threads=a.threads,
        rank_digest=a.rank_digest or "",
        value_members=a.value_members,
        init=a.init or "",
        trainable=a.trainable,
    )
    report = train(cfg)
    if a.report:
        Path(a.report).write_text(json.dumps(report, indent=2, default=str))
    print(f"saved {a.out} (best validation loss {report['best_val_loss']:.4f}, {report['seconds']:.0f} s)")
    return 0


def cmd_evaluate(a: argparse.Namespace) -> int:
    from sidecar.training.evaluate import evaluate, markdown, write_reports

    if a.bootstrap < 0:
        raise SystemExit(f"--bootstrap must be 0 or more resamples (got {a.bootstrap})")
    report = evaluate(a.checkpoint, a.data, a.split, a.threshold, a.split_seed, a.png, a.bootstrap, a.paired_with)
    write_reports(report, a.markdown, a.json)
    print(markdown(report))
    if a.png:
        print(f"reliability diagram: {a.png}")
    return 0


def cmd_calibrate(a: argparse.Namespace) -> int:
    from sidecar.model.checkpoint import load_checkpoint, save_checkpoint
    from sidecar.training.calibrate import calibrate
    from sidecar.training.dataset import load_examples
    from sidecar.training.train import TrainConfig, split_sessions

    ckpt = load_checkpoint(a.checkpoint)
    val = split_sessions(load_examples(a.data), TrainConfig(data=a.data, out="", split_seed=a.split_seed))["val"]
    fitted = calibrate(ckpt.model, val)
    extra = dict(ckpt.extra)
    extra.setdefault("train", {})["calibration"] = fitted
    save_checkpoint(a.out, ckpt.model, ckpt.version, trained=ckpt.trained, metrics=ckpt.metrics, extra=extra)
    print(f"calibrated on {len(val)} validation sessions: {fitted}; wrote {a.out}")
    return 0


def cmd_model_card(a: argparse.Namespace) -> int:
    from sidecar.training.model_card import write_card

    notes = Path(a.notes).read_text() if a.notes else ""
    write_card(a.checkpoint, a.eval, a.directors, a.out, notes)
    print(f"wrote {a.out}")
    return 0


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    ds = sub.add_parser("dataset", help="turn recordings into training examples (or simulate recordings)")
    dsub = ds.add_subparsers(dest="action", required=True)
    # `dataset generate` (simulated recordings) is added by sim/commands.py: the simulator is a dev
    # tool outside the runtime, and this is where it finds the subcommands to join.
    ds.set_defaults(dataset_actions=dsub)
    build = dsub.add_parser("build", help="recordings -> examples (.npz) with the sidecar's featurizer")
    build.add_argument("recordings", nargs="+", help=".mbrec files or directories")
    build.add_argument("--out", required=True, help="output .npz")
    build.add_argument("--fail-horizon", type=float, default=10.0)
    build.add_argument("--quit-horizon", type=float, default=60.0)
    build.add_argument("--workers", type=int, default=2)
    build.add_argument(
        "--model-hz",
        type=float,
        default=5.0,
        help="model steps a second of game time (the sidecar's model clock): recordings at any telemetry rate "
        "give one example per step, the frames between folded in as the sidecar folds them (0: one per frame)",
    )
    build.set_defaults(func=cmd_dataset)

    tr = sub.add_parser("train", help="train the player model (also under torchrun for DDP)")
    tr.add_argument("--data", required=True, help="examples .npz from `metabrain dataset build`")
    tr.add_argument("--out", required=True, help="checkpoint to write")
    tr.add_argument("--version", default="metabrain-gru-s")
    tr.add_argument("--hidden", type=int, default=128)
    tr.add_argument("--layers", type=int, default=1)
    tr.add_argument("--dropout", type=float, default=0.1)
    tr.add_argument("--weight-decay", type=float, default=1e-4)
    tr.add_argument("--lr", type=float, default=3e-3)
    tr.add_argument("--schedule", choices=["cosine", "plateau"], default="cosine")
    tr.add_argument("--epochs", type=int, default=20)
    tr.add_argument("--patience", type=int, default=4)
    tr.add_argument("--lanes", type=int, default=96, help="parallel session lanes per step (batch size)")
    tr.add_argument("--chunk", type=int, default=64, help="truncated-BPTT length in frames")
    tr.add_argument("--seed", type=int, default=0)
    tr.add_argument("--split-seed", type=int, default=0)
    tr.add_argument("--max-steps", type=int, default=0)
    tr.add_argument("--threads", type=int, default=0)
    tr.add_argument("--report", help="write the training history as JSON")
    tr.add_argument("--rank-digest", help="write each rank's final weight digest to PATH.rankN (DDP check)")
    tr.add_argument("--value-members", type=int, default=20, help="bootstrap replicates of the value surface (0: none)")
    tr.add_argument("--init", help="fine-tune: start from this checkpoint (e.g. the bundled model)")
    tr.add_argument(
        "--trainable",
        choices=["all", "heads", "none"],
        default="all",
        help="with --init: what to train (heads: freeze the trunk; none: only refit the value surface, "
        "shrunk toward the checkpoint's: the director adapted to these recordings)",
    )
    tr.set_defaults(func=cmd_train)

    ev = sub.add_parser("evaluate", help="AUC, accuracy, recall, F1 and calibration on held-out sessions")
    ev.add_argument("--checkpoint", help="default: the bundled model")
    ev.add_argument("--data", required=True)
    ev.add_argument("--split", default="test", choices=["train", "val", "test", "all"])
    ev.add_argument("--split-seed", type=int, default=0)
    ev.add_argument("--threshold", type=float, default=0.5)
    ev.add_argument("--markdown", help="write the report as markdown")
    ev.add_argument("--json", help="write the figures as JSON")
    ev.add_argument("--png", help="write the reliability diagram")
    ev.add_argument(
        "--bootstrap",
        type=int,
        default=0,
        help="resamples of the sessions for a 95%% interval on the risk heads' AUC (e.g. 200; 0: none)",
    )
    ev.add_argument(
        "--paired-with",
        metavar="DATA",
        help="another dataset of the same sessions (the same --seed's players at another --telemetry-hz): "
        "the AUC differences against it, with a paired interval (--bootstrap, default 200)",
    )
    ev.set_defaults(func=cmd_evaluate)

    cal = sub.add_parser("calibrate", help="fit Platt scaling of the risk heads on the validation split")
    cal.add_argument("--checkpoint", required=True)
    cal.add_argument("--data", required=True)
    cal.add_argument("--split-seed", type=int, default=0)
    cal.add_argument("--out", required=True)
    cal.set_defaults(func=cmd_calibrate)

    mc = sub.add_parser("model-card", help="write the model card from the evaluation reports")
    mc.add_argument("--checkpoint")
    mc.add_argument("--eval", required=True, help="JSON from `metabrain evaluate`")
    mc.add_argument("--directors", nargs="*", default=[], help="JSON from `metabrain evaluate-directors`")
    mc.add_argument("--notes", help="a markdown file of notes to include")
    mc.add_argument("--out", required=True)
    mc.set_defaults(func=cmd_model_card)
