"""The training pipeline end to end on a small simulated data set, and DDP with two CPU processes."""

from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from scipy import stats

from sidecar.features import P
from sidecar.model.checkpoint import CheckpointError, load_checkpoint, save_checkpoint
from sidecar.training.dataset import Horizons, examples_of, load_examples, save_examples, split_of
from sidecar.training.evaluate import (
    SessionWeightedAUC,
    auc,
    calibration,
    evaluate,
    markdown,
    predict_sessions,
)
from sim.offline import OfflineConfig, run_offline
from sim.populations import load_population


@pytest.fixture(scope="module")
def small_data(tmp_path_factory: pytest.TempPathFactory, tiny_checkpoint: object) -> Path:
    root = tmp_path_factory.mktemp("data")
    cfg = OfflineConfig(
        sessions=16,
        max_seconds=150.0,
        seed=5,
        policies=["random_walk", "rubber_band", "piecewise", "static"],
        random_static_levels=True,
        random_tactics=True,
        record_dir=str(root / "recs"),
        npc_hints=False,
    )
    run_offline(load_population("novice=1,expert=1", 5), cfg, tiny_checkpoint)  # type: ignore[arg-type]
    # A value horizon shorter than the sessions, so that outcomes are known for the value surface.
    sessions = examples_of(sorted((root / "recs").glob("*.mbrec")), Horizons(value_s=60.0))
    save_examples(root / "data.npz", sessions)
    return root / "data.npz"


def test_labels_come_from_the_future(small_data: Path) -> None:
    sessions = load_examples(small_data)
    assert len(sessions) == 16
    s = max(sessions, key=lambda x: x.fail.sum())
    deaths = np.nonzero(s.players[:, 15] > 0)[0]  # the "deaths" column
    assert deaths.size
    d = deaths[0]
    # The frames in the 10 s (50 frames at 5 Hz) before a death are labelled fail; the death frame itself is past.
    assert s.fail[max(d - 45, 0) : d].all()
    quit_sessions = [x for x in sessions if x.quit.any()]
    for x in quit_sessions:
        assert x.quit[-1] == 1.0 and (x.quit[:-302] == 0).all()  # only the last 60 s (300 frames)
    assert all(((x.npc_tactic >= -1) & (x.npc_tactic < 6)).all() for x in sessions)
    # Splits are by session and reproducible.
    assert split_of("a", 0, 0.1, 0.1) == split_of("a", 0, 0.1, 0.1)


def test_a_studios_perturbed_sessions_teach_the_value_surface(tmp_path: Path, tiny_checkpoint: object) -> None:
    """`serve --policy perturbed` (the designer's level with logged random offsets) is how a studio's own
    players refit the value surface: its sessions' levels are set at random, so their frames count."""
    cfg = OfflineConfig(sessions=2, max_seconds=150.0, seed=6, policies=["perturbed"], record_dir=str(tmp_path))
    run_offline(load_population("novice=1", 6), cfg, tiny_checkpoint)  # type: ignore[arg-type]
    sessions = examples_of(sorted(tmp_path.glob("*.mbrec")), Horizons(value_s=60.0))
    assert len(sessions) == 2
    for s in sessions:
        assert s.value_mask.any() and (s.value_mask == s.played_known).all()
        assert np.ptp(s.players[:, P["difficulty"]]) > 0.05  # the offsets were redrawn within the session


def test_metrics() -> None:
    y = np.array([0, 0, 1, 1])
    assert auc(y, np.array([0.1, 0.2, 0.8, 0.9])) == 1.0
    assert auc(y, np.array([0.9, 0.8, 0.2, 0.1])) == 0.0
    assert auc(y, np.array([0.5, 0.5, 0.5, 0.5])) == 0.5
    ece, _ = calibration(np.array([0.0, 1.0] * 50), np.full(100, 0.5))
    assert ece == pytest.approx(0.0)


def test_evaluate_bounds_the_risk_heads_auc_by_resampling_sessions(small_data: Path) -> None:
    """With --bootstrap the sessions' predictions are kept apart and resampled whole: an interval around
    each risk head's AUC, in the JSON and the markdown."""
    plain = evaluate(None, str(small_data), split="all")
    boot = evaluate(None, str(small_data), split="all", bootstrap=50)
    for head in ("p_fail", "p_quit"):
        m = boot["heads"][head]
        assert m["auc"] == pytest.approx(plain["heads"][head]["auc"], abs=1e-5)
        assert m["ece"] == pytest.approx(plain["heads"][head]["ece"], abs=1e-5)
        assert m["auc_low"] < m["auc"] < m["auc_high"] and m["resamples"] == 50
        assert "auc_low" not in plain["heads"][head]
    assert boot["frames"] == plain["frames"] and "auc_low" not in boot["heads"]["npc_tactic_hit"]
    assert "95% interval over 50 resamples of the sessions: p_fail" in markdown(boot)
    assert "interval" not in markdown(plain)


def test_a_resamples_auc_is_the_auc_of_the_sessions_repeated_as_drawn() -> None:
    """The bootstrap counts a session drawn k times k times, without concatenating the copies: the
    Mann-Whitney statistic (ties ranked by their average) of the frames repeated so."""
    rng = np.random.default_rng(3)
    labels = [rng.random(n) < 0.3 for n in (40, 1, 75, 12, 60)]
    probs = [np.round(rng.random(len(y)), 1) for y in labels]  # coarse: many ties, within and across sessions
    weighted = SessionWeightedAUC((labels, probs))
    for counts in ([1, 1, 1, 1, 1], [0, 2, 1, 0, 3], [5, 0, 0, 1, 0]):
        idx = np.repeat(np.arange(5), counts)
        y, p = np.concatenate([labels[i] for i in idx]), np.concatenate([probs[i] for i in idx])
        n_pos, n_neg = int(y.sum()), int((~y).sum())
        pooled = (stats.rankdata(p)[y].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg)
        assert weighted(np.array(counts)) == pytest.approx(pooled, abs=1e-12)
        assert auc(y, p) == pytest.approx(pooled, abs=1e-12)
    assert np.isnan(weighted(np.array([0, 1, 0, 0, 0])))  # one frame: one class only


def test_sessions_predicted_together_get_what_each_gets_alone(small_data: Path) -> None:
    """The batched rollout packs several sessions into a lane: split back by session, each session's
    frames are the ones, in order, and with the figures, that a rollout of it alone gives."""
    model = load_checkpoint(None).model
    sessions = load_examples(small_data)
    together = predict_sessions(model, sessions, chunk=16, lanes=3)  # more sessions than lanes
    assert len(together) == len(sessions)
    for s, got in zip(sessions, together, strict=True):
        alone = predict_sessions(model, [s])[0]
        assert len(got.fail[0]) == len(s)
        for mine, its in ((got.fail, alone.fail), (got.quit, alone.quit), (got.npc, alone.npc)):
            np.testing.assert_array_equal(mine[0], its[0])
            np.testing.assert_allclose(mine[1], its[1], atol=1e-5)
        np.testing.assert_array_equal(got.quit[0], s.quit)
        for name, (y, p) in got.states.items():
            np.testing.assert_allclose(p, alone.states[name][1], atol=1e-5)
            np.testing.assert_array_equal(y, alone.states[name][0])


def test_evaluate_paired_with_the_same_players_elsewhere(small_data: Path, tmp_path: Path) -> None:
    """--paired-with: the AUC differences against another dataset of the same sessions, matched by
    name, with an interval over resampled pairs. Against itself the difference and its interval are
    nothing; against the sessions under each other's names the whole difference is still nothing (the
    same frames) but a resample's is not; only the sessions both hold are compared."""
    sessions = load_examples(small_data)
    same = evaluate(None, str(small_data), split="all", bootstrap=40, paired_with=str(small_data))
    for head in ("p_fail", "p_quit"):
        assert same["paired"][head] == {"auc_diff": 0.0, "diff_low": 0.0, "diff_high": 0.0}
    assert same["paired"]["resamples"] == 40 and same["sessions"] == len(sessions)
    swapped = tmp_path / "swapped.npz"
    names = [s.name for s in sessions]
    save_examples(
        swapped, [dataclasses.replace(s, name=n) for s, n in zip(sessions, names[1:] + names[:1], strict=True)]
    )
    crossed = evaluate(None, str(small_data), split="all", paired_with=str(swapped))
    for head in ("p_fail", "p_quit"):
        pair = crossed["paired"][head]
        assert pair["auc_diff"] == pytest.approx(0.0, abs=1e-9) and pair["diff_low"] < 0 < pair["diff_high"]
    assert crossed["paired"]["resamples"] == 200
    assert f"sessions' in {swapped}, 95% interval over 200 resamples of the pairs: p_fail" in markdown(crossed)
    part = tmp_path / "part.npz"
    save_examples(part, sessions[:6])
    some = evaluate(None, str(small_data), split="all", bootstrap=20, paired_with=str(part))
    assert some["sessions"] == 6 and some["paired"]["p_quit"]["auc_diff"] == 0.0
    assert "paired" not in evaluate(None, str(small_data), split="all", bootstrap=20)


def test_train_then_evaluate_then_serve(small_data: Path, tmp_path: Path) -> None:
    out = tmp_path / "m.pt"
    report = tmp_path / "r.json"
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
    cmd = [
        sys.executable,
        "-m",
        "sidecar.cli",
        "train",
        "--data",
        str(small_data),
        "--out",
        str(out),
        "--epochs",
        "2",
        "--hidden",
        "32",
        "--lanes",
        "8",
        "--chunk",
        "16",
        "--report",
        str(report),
        "--threads",
        "1",
    ]
    subprocess.run(cmd, check=True, env=env, capture_output=True, timeout=300)
    history = json.loads(report.read_text())["history"]
    assert len(history) >= 1 and np.isfinite(history[-1]["val"]["loss"])
    ckpt = load_checkpoint(out)
    assert ckpt.trained and "trained" in ckpt.version and ckpt.model.cfg.hidden == 32
    # The value surface was fitted from the sessions whose level was set at random.
    assert json.loads(report.read_text())["value_fit"]["points"] > 0
    surface = ckpt.model.value_surface
    assert surface.shape[0] == 20 and torch.isfinite(surface).all() and surface.abs().sum() > 0
    # Adapting to recordings: the network stays as it is, only the surface is refitted.
    tuned = tmp_path / "tuned.pt"
    subprocess.run(
        [*cmd[:3], "train", "--data", str(small_data), "--out", str(tuned), "--init", str(out), "--trainable", "none"],
        check=True,
        env=env,
        capture_output=True,
        timeout=300,
    )
    after = load_checkpoint(tuned).model.state_dict()
    for name, weight in ckpt.model.state_dict().items():
        if name != "value_surface":
            assert torch.equal(weight, after[name]), name
    # A checkpoint from before the value surface (the bundled one was) gets one fitted from scratch.
    bare = load_checkpoint(out)
    bare.model.reset_value_surface(0)
    save_checkpoint(tmp_path / "bare.pt", bare.model, "bare", trained=True)
    refit, bare_ckpt = tmp_path / "refit.pt", str(tmp_path / "bare.pt")
    subprocess.run(
        [*cmd[:3], "train", "--data", str(small_data), "--out", str(refit), "--init", bare_ckpt, "--trainable", "none"],
        check=True,
        env=env,
        capture_output=True,
        timeout=300,
    )
    fitted = load_checkpoint(refit).model
    assert fitted.cfg.value_members == 20 and fitted.value_surface.abs().sum() > 0
    ev = subprocess.run(
        [
            sys.executable,
            "-m",
            "sidecar.cli",
            "evaluate",
            "--checkpoint",
            str(out),
            "--data",
            str(small_data),
            "--split",
            "all",
            "--json",
            str(tmp_path / "e.json"),
            "--png",
            str(tmp_path / "rel.png"),
        ],
        check=True,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert "| p_fail |" in ev.stdout
    figures = json.loads((tmp_path / "e.json").read_text())
    assert 0.0 <= figures["heads"]["p_fail"]["auc"] <= 1.0 and (tmp_path / "rel.png").stat().st_size > 1000


def test_checkpoint_layout_mismatch_is_refused(tmp_path: Path) -> None:
    import torch

    blob = torch.load(load_checkpoint.__globals__["DEFAULT_CHECKPOINT"], weights_only=True)
    blob["feature_layout_hash"] = "0000"
    torch.save(blob, tmp_path / "old.pt")
    with pytest.raises(CheckpointError, match="feature layout 0000"):
        load_checkpoint(tmp_path / "old.pt")


def test_ddp_two_cpu_ranks_agree(small_data: Path, tmp_path: Path) -> None:
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1]), "OMP_NUM_THREADS": "1"}
    digest = tmp_path / "digest"
    cmd = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--standalone",
        "--nproc_per_node",
        "2",
        "-m",
        "sidecar.cli",
        "train",
        "--data",
        str(small_data),
        "--out",
        str(tmp_path / "ddp.pt"),
        "--epochs",
        "1",
        "--max-steps",
        "4",
        "--hidden",
        "16",
        "--lanes",
        "4",
        "--chunk",
        "8",
        "--rank-digest",
        str(digest),
    ]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    r0, r1 = (Path(f"{digest}.rank{i}").read_text() for i in (0, 1))
    assert r0 == r1
    assert load_checkpoint(tmp_path / "ddp.pt").extra["train"]["world_size"] == 2
