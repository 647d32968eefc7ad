"""`metabrain bench` end to end at toy size: every server starts in its own process, answers, and the
report has the figures and ratios it promises (no speed is asserted here: speeds are in BENCHMARKS.md).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from sidecar.wire.schema import pb
from sidecar.wire.table_reader import compiled_reader_available
from sim.bench.run import BenchConfig, Point, failure_of, halfway, print_report, run_bench, soak, stalled
from sim.bench.servers import EchoCodec
from sim.loadgen import FrameStream, LoadResult, LoadSpec


def test_echo_answers_each_frame_with_its_sequence() -> None:
    echo, frames = EchoCodec(), FrameStream(3)
    assert pb.SessionResponse.FromString(echo.answer(pb.SessionRequest().SerializeToString())).HasField("welcome")
    for t in (0.1, 0.2, 300.0):
        data = frames.next(t)
        g = pb.SessionResponse.FromString(echo.answer(data)).guidance
        assert g.sequence == pb.SessionRequest.FromString(data).frame.sequence and len(g.knobs) == 4


def test_bench_reports_every_server_and_ratio(tmp_path: Path, capsys: object) -> None:
    cfg = BenchConfig(
        transports=("ws",),
        sweep=(4, 8),
        peak_sessions=4,
        duration_s=1.0,
        warmup_s=0.5,
        multiplayer_players=4,
        multiplayer_sessions=2,
        multiplayer_sweep=(2,),
        rounds=2,
        light_seconds=0.5,
        out=str(tmp_path),
    )
    report = run_bench(cfg)
    print_report(report)
    saved = json.loads((tmp_path / "bench.json").read_text())
    # Round after round, every server's peak, then one session on each, in turn.
    rounds = [(p["round"], p["mode"], p["server"]) for p in saved["points"] if p["mode"] in ("peak", "light")]
    kinds = list(cfg.servers)
    assert rounds == [(r, m, k) for r in range(2) for m in ("peak", "light") for k in kinds]
    peak_of: dict[str, list[float]] = {k: [] for k in kinds}
    for p in saved["points"]:
        if p["mode"] == "peak":
            peak_of[p["server"]].append(p["frames_per_s"])
    for kind in kinds:  # a peak is the median of its rounds (of two: the mean)
        assert saved["peak_frames_per_s"][kind]["ws"] == pytest.approx(sum(peak_of[kind]) / 2, abs=0.1)
    for kind in kinds:
        one = saved["light_load"][kind]["ws"]
        assert one["rounds"] == 2 and 0 < one["min"] <= one["median"] <= one["max"] < 1.5
        assert saved["light_load_cores_per_60hz_session"][kind]["ws"] == one["median"]
        assert one["over_echo_median"] > 0
    assert saved["light_load"]["echo"]["ws"]["over_echo_median"] == 1.0
    assert "medians of 2 alternated rounds" in capsys.readouterr().out  # type: ignore[attr-defined]
    assert saved["machine"]["cores"] and (tmp_path / "bench.png").stat().st_size > 10_000
    for kind in ("echo", "naive", "sidecar", "sidecar-every-frame", "sidecar-pure-python"):
        assert saved["peak_frames_per_s"][kind]["ws"] > 0
        # The most sessions held: the sweep's points and the refinement's between its failure and the last
        # held point; none larger was held.
        tried = [
            (p["sessions"], p["held_at_60hz"]) for p in saved["points"] if p["server"] == kind and p["mode"] == "60hz"
        ]
        most = saved["sessions_held_at_60hz"][kind]["ws"]
        assert most == max([n for n, ok in tried if ok], default=0)
        assert all(not ok for n, ok in tried if n > most)
        runs = [p for p in saved["points"] if p["server"] == kind]
        assert all(p["errors"] == 0 and p["guidance"] > 0 and p["server_rss_mb"] > 0 for p in runs)
    r = saved["ratios"]["ws"]
    # Paired within a round: the median (of two: the mean) of each round's ratio, not a ratio of medians.
    side, echo = peak_of["sidecar"], peak_of["echo"]
    assert r["sidecar_over_echo_peak"] == pytest.approx((side[0] / echo[0] + side[1] / echo[1]) / 2, abs=1e-3)
    assert r["sidecar_over_echo_peak"] > 0 and r["sidecar_over_naive_peak"] > 0
    assert r["sidecar_over_every_frame_peak"] > 0 and r["compiled_over_pure_python_peak"] > 0
    assert len(saved["multiplayer"]) == 3
    # The compiled frame reader beside the Python path, in-process (both on every run).
    costs = saved["stage_costs_us_per_frame"]["1_player (tables)"]
    assert costs["between_frame_us"] > 0 and costs["between_frame_pure_python_us"] > 0
    assert costs["between_frame_stream_lane_us"] > 0 and costs["between_frame_stream_python_us"] > 0
    assert costs["compiled_read_us"] > 0 if compiled_reader_available() else "compiled_read_us" not in costs
    for mp in saved["multiplayer"]:
        assert mp["players_per_frame"] == 4 and mp["player_frames_per_s"] == 4 * mp["frames_per_s"] > 0
    # Model steps beside frames: with the model clock a few a second a session, on every frame without it.
    peaks = {p["server"]: p for p in saved["points"] if p["mode"] == "peak"}
    clock, every = peaks["sidecar"], peaks["sidecar-every-frame"]
    assert 0 < clock["model_steps_per_s"] < 0.5 * clock["frames_per_s"]
    assert every["model_steps_per_s"] >= 0.5 * every["frames_per_s"]  # stepped or superseded: latest wins
    assert peaks["echo"]["model_steps_per_s"] is None
    # The ticks beside them: no more ticks than rows stepped, and a share of the core they took.
    assert 0 < clock["ticks_per_s"] <= clock["model_steps_per_s"] and 0 < clock["tick_cores"] < 1.5
    assert peaks["echo"]["ticks_per_s"] is None


def test_a_load_that_got_no_answer_is_reported_failed_not_as_zero(tmp_path: Path, capsys: object) -> None:
    """A sidecar that answers no frame (here: it refuses frames with more NPCs than it allows) measured nothing:
    its peak is reported failed, with the sidecar's first error, not as 0 frames/s beside the others."""
    assert failure_of(LoadResult(LoadSpec("x"), sent=3, guidance=1, measured_s=1.0)) is None
    cfg = BenchConfig(
        servers=("sidecar",),
        transports=("ws",),
        sweep=(1,),
        peak_sessions=2,
        duration_s=0.5,
        warmup_s=0.2,
        multiplayer_players=2,
        multiplayer_sessions=1,
        multiplayer_sweep=(),
        rounds=0,  # a peak before the sweep, whose one-session point stands for the light load (failed too)
        sidecar_args=("--max-npcs", "1"),
        out=str(tmp_path / "bench"),
    )
    report = run_bench(cfg)
    print_report(report)
    assert report["peak_frames_per_s"]["sidecar"]["ws"] is None
    assert report["sessions_held_at_60hz"]["sidecar"]["ws"] == 0
    assert report["light_load"] == {}  # its one-session point failed: no figure, not 0 cores
    peak = next(p for p in report["points"] if p["mode"] == "peak")
    assert peak["failure"].startswith("no frame answered") and "npcs" in peak["failure"]
    out = capsys.readouterr().out  # type: ignore[attr-defined]
    assert "failed" in out and "FAILED: sidecar ws peak" in out


def test_the_sweep_refines_between_its_last_held_load_and_its_first_failure() -> None:
    """Halving the gap until it is at most the given share of the held load (so a held ratio no longer
    jumps by whole sweep steps); nothing to refine below one session's gap, without a held load, or off."""
    plan, held, failed = [], 100, 150
    while (m := halfway(held, failed, 0.1)) is not None:
        plan.append(m)
        held, failed = (m, failed) if m <= 110 else (held, m)  # a server that holds up to 110
    assert plan == [125, 112, 106] and (held, failed) == (106, 112)
    assert halfway(4, 5, 0.1) is None and halfway(4, 6, 0.1) == 5
    assert halfway(0, 10, 0.1) is None and halfway(100, 150, 0.0) is None
    assert halfway(100, 110, 0.1) is None  # a gap of 10% of the held load: done


def test_a_point_late_while_its_server_idled_is_measured_again() -> None:
    """The sweep measures a failed 60 Hz point a second time only when it failed on late frames alone with
    the server's core mostly idle (a stall of the machine); a busy server, errors or frames without
    guidance end the sweep as before."""

    def point(cpu: float, p99: float, errors: int = 0, guidance: int = 360) -> Point:
        summary = {"errors": errors, "p99_ms": p99, "guidance": guidance, "sent": 360}
        return Point("sidecar", "ws", "60hz", summary, cpu)

    assert stalled(point(0.12, 21.0))
    assert not stalled(point(0.12, 9.0))  # held: nothing to retry
    assert not stalled(point(0.9, 21.0))  # late because busy: that is its capacity
    assert not stalled(point(0.12, 21.0, errors=1))
    assert not stalled(point(0.12, 21.0, guidance=300))
    assert point(0.1, 1.0).to_dict()["retry"] is False


def test_soak_samples_memory(tmp_path: Path) -> None:
    report = soak(BenchConfig(warmup_s=0.5, out=str(tmp_path)), seconds=12.0, sessions=3)
    assert len(report["rss_mb"]) >= 2 and report["load"]["guidance"] > 0
    assert (tmp_path / "soak.json").exists()
