"""One reading of how a recorded session went, shared by the experiment report, off-policy evaluation
and the portfolio's import: its length, its player and whether the player quit."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path

import grpc
import numpy as np
import pytest

from sidecar.columns import MAX_PLAY_GAP_S
from sidecar.limits import Limits
from sidecar.model.checkpoint import Checkpoint
from sidecar.operations.experiment_report import read_outcomes
from sidecar.operations.portfolio_store import evidence_from_recordings
from sidecar.operations.recording import RecordingWriter, read_recording
from sidecar.operations.session_outcomes import read_session
from sidecar.training.offpolicy import read_logged
from sidecar.wire.frames import to_tables
from sidecar.wire.hello import spec_of
from sidecar.wire.schema import SERVICE_NAME, pb
from sim.game import hello
from tests.conftest import make_sidecar


def _record(
    path: Path, goodbye: pb.Goodbye | None, player: str = "", header_player: str = "", closed: str = ""
) -> Path:
    header = {
        "game_id": "g",
        "session_id": path.stem,
        "experiment": "portfolio",
        "arm": "harder",
        "assignment_propensity": 0.5,
        "player": header_player,
    }
    w = RecordingWriter(path, header)
    w.write(0.0, "in", pb.SessionRequest(hello=pb.Hello(game_id="g", player_id=player)).SerializeToString())
    for seq, t in enumerate((2.0, 2.5, 30.0), start=1):
        frame = pb.Frame(sequence=seq, game_time=t)
        if seq == 2:
            frame.events.add(type=pb.EVENT_TYPE_DEATH)
        w.write(t, "in", pb.SessionRequest(frame=frame).SerializeToString())
    if goodbye is not None:
        w.write(31.0, "in", pb.SessionRequest(goodbye=goodbye).SerializeToString())
    if closed:  # the sidecar's own record of why the session ended (SessionRecorder.on_close)
        w.write(32.0, "close", closed.encode())
    w.close()
    return path


def test_a_goodbye_not_cut_short_is_a_quit_and_every_reader_agrees(tmp_path: Path) -> None:
    quit_ = _record(tmp_path / "a.mbrec", pb.Goodbye(reason="game stopped"), player="ph_1")
    capped = _record(tmp_path / "b.mbrec", pb.Goodbye(reason="match over", cut_short=True), header_player="ph_2")
    lost = _record(tmp_path / "c.mbrec", None)  # no goodbye: still running, or the sidecar stopped
    a, b, c = (read_session(p) for p in (quit_, capped, lost))
    assert (a.quit, b.quit, c.quit) == (True, False, False)
    # 27.5 s without a frame (a pause, a loading screen, a clock that jumped) counts MAX_PLAY_GAP_S of play
    assert a.end == 30.0 and a.played_s == 0.5 + MAX_PLAY_GAP_S and a.deaths == 1 and a.arm == "harder"
    assert (a.player, b.player, c.player) == ("ph_1", "ph_2", "c")  # hello's id, header's, else the session
    paths = [quit_, capped, lost]
    assert [o.quit for o in read_outcomes(paths)] == [True, False, False]
    assert [s.quit for s in read_logged(paths)] == [True, False, False]
    assert [o.seconds for o in read_outcomes(paths)] == [30.0, 30.0, 30.0]
    evidence = evidence_from_recordings(paths).games["g"]["harder"]
    assert (evidence.quits, evidence.finished, evidence.seconds) == (1, 3, 3 * (0.5 + MAX_PLAY_GAP_S))


def test_a_player_who_went_away_is_a_quit_and_a_stopped_sidecar_says_nothing(tmp_path: Path) -> None:
    """As the live portfolio counts them: a stream lost until its resume window closed, or a session
    gone idle, is the player leaving; a recording closed because the sidecar stopped is censored."""
    left = _record(tmp_path / "left.mbrec", None, closed="resume window closed")
    idle = _record(tmp_path / "idle.mbrec", None, closed="idle timeout")
    stopped = _record(tmp_path / "stopped.mbrec", None, closed="the sidecar stopped")
    capped = _record(tmp_path / "capped.mbrec", pb.Goodbye(reason="over", cut_short=True), closed="over")
    assert [read_session(p).quit for p in (left, idle, stopped, capped)] == [True, True, False, False]


def test_a_session_gone_idle_ends_its_recording_with_why(tiny_checkpoint: Checkpoint, tmp_path: Path) -> None:
    """The sidecar closes an idle session's recording when it closes the session (it stayed open until
    shutdown before), saying why, and the readers count it as the player leaving."""
    sc = make_sidecar(
        tiny_checkpoint,
        record_dir=str(tmp_path / "recs"),
        limits=Limits(idle_timeout_s=1.0, max_frames_per_second=1e6),
        sweep_interval_s=0.2,
    )
    try:
        channel = grpc.insecure_channel(sc.grpc_address)
        quiet = threading.Event()

        def requests() -> Iterator[bytes]:
            yield pb.SessionRequest(hello=hello(consent=True)).SerializeToString()
            frame = to_tables(pb.Frame(sequence=1, game_time=0.2, players=[pb.PlayerState(player_id="p1")]))
            yield pb.SessionRequest(frame=frame).SerializeToString()
            quiet.wait(10.0)  # then nothing: the session goes idle

        call = channel.stream_stream(f"/{SERVICE_NAME}/Session")(requests(), timeout=10)
        with pytest.raises(grpc.RpcError):
            for _ in call:
                pass
        quiet.set()
        channel.close()
        (path,) = sorted((tmp_path / "recs").glob("*.mbrec"))
        deadline = time.monotonic() + 5.0
        while read_recording(path).close_reason is None and time.monotonic() < deadline:
            time.sleep(0.05)
        assert read_recording(path).close_reason == "idle timeout"
        assert read_session(path).quit
    finally:
        sc.stop()


def test_the_designer_level_comes_from_the_hello_and_only_an_arm_names_a_candidate(tmp_path: Path) -> None:
    """The hello's knob defaults set where a director's offsets start: at a designer's level of 0.6, an
    experiment's `static:0.8` is the portfolio's "harder+0.2". A recording with a policy and no
    experiment arm counts for no candidate (`static` with a `level` parameter is not the designer's)."""
    h = hello()
    for k in h.knobs:  # every default 0.6 of the way from the easiest value to the hardest
        easy, hard = (k.max_value, k.min_value) if k.higher_is_easier else (k.min_value, k.max_value)
        k.default_value = easy + 0.6 * (hard - easy)

    def record(name: str, header: dict[str, object]) -> Path:
        path = tmp_path / f"{name}.mbrec"
        w = RecordingWriter(path, {"game_id": "g", "session_id": name, **header})
        w.write(0.0, "in", pb.SessionRequest(hello=h).SerializeToString())
        for seq, t in enumerate(np.arange(1.0, 42.0), start=1):  # a frame a second, 40 s of play
            w.write(t, "in", pb.SessionRequest(frame=pb.Frame(sequence=seq, game_time=t)).SerializeToString())
        w.write(42.0, "in", pb.SessionRequest(goodbye=pb.Goodbye(reason="quit")).SerializeToString())
        w.close()
        return path

    arm = record("arm", {"experiment": "explore", "arm": "static:0.8", "assignment_propensity": 0.25})
    bare = record("bare", {"policy": "static"})
    assert read_session(arm).designer_level == pytest.approx(0.6, abs=1e-5)
    found = evidence_from_recordings([arm, bare])
    e = found.games["g"]["harder+0.2"]
    assert (e.quits, e.finished, e.seconds) == (1, 1, 40.0)
    assert list(found.games["g"]) == ["harder+0.2"]
    assert found.skipped == {"static (no experiment arm)": 1} and found.adaptive == 0


@pytest.mark.parametrize(
    "labels",
    [
        {"experiment": "contextual"},  # served as the sidecar's default
        {"experiment": "contextual", "arm": "contextual"},  # `metabrain sim --policy contextual`
        {"experiment": "retention", "arm": "contextual", "assignment_propensity": 0.5},  # an experiment's arm
    ],
)
def test_a_contextual_session_counts_for_its_share_from_its_draw(tmp_path: Path, labels: dict[str, object]) -> None:
    """A contextual director names its draw in the guidance ("skill2of3/rubber_band"): its recording
    counts for that share's candidate from the frame that draw answered, as the share counted it live;
    a session that ended before its draw counts for none. However the recording labels the director."""

    def record(name: str, times: list[float], drawn_from: int | None) -> Path:
        path = tmp_path / f"{name}.mbrec"
        header = {"game_id": "g", "session_id": name, "policy": "contextual", **labels}
        w = RecordingWriter(path, header)
        w.write(0.0, "in", pb.SessionRequest(hello=hello()).SerializeToString())
        for seq, t in enumerate(times, start=1):
            w.write(t, "in", pb.SessionRequest(frame=pb.Frame(sequence=seq, game_time=t)).SerializeToString())
            resp = pb.SessionResponse()
            resp.guidance.sequence = seq
            if drawn_from is not None and seq >= drawn_from:
                resp.guidance.director.candidate = "skill2of3/rubber_band"
            elif seq > 1:
                resp.guidance.director.candidate = "first minute/predictive"
            w.write(t, "out", resp.SerializeToString())
        w.write(times[-1], "in", pb.SessionRequest(goodbye=pb.Goodbye(reason="quit")).SerializeToString())
        w.close()
        return path

    every_second = [float(t) for t in range(1, 201)]
    drawn = record("drawn", every_second, drawn_from=61)
    early = record("early", every_second[:45], drawn_from=None)
    found = evidence_from_recordings([drawn, early])
    e = found.games["g#skill2of3"]["rubber_band"]
    assert (e.quits, e.finished, e.seconds) == (1, 1, 139.0)  # from 61 s, the frame the draw answered
    assert list(found.games) == ["g#skill2of3"] and found.adaptive == 1
    assert found.skipped == {"contextual (ended before its draw)": 1}


def test_where_a_session_ended_counts_what_a_retreat_held_back_of_its_candidates_move(tmp_path: Path) -> None:
    """The `adaptive` start follows where its sessions ended: the knob values sent last, plus what a retreat
    had taken back of the candidate's move (the director note's level_taken_back; 0 in a recording made
    before there was one), so that a player who disengaged before leaving does not drag the start home."""
    h = hello()
    knobs = spec_of(h).knobs

    def record(name: str, back: float | None) -> Path:
        path = tmp_path / f"{name}.mbrec"
        w = RecordingWriter(path, {"game_id": "g", "session_id": name, "experiment": "portfolio", "arm": "adaptive"})
        w.write(0.0, "in", pb.SessionRequest(hello=h).SerializeToString())
        for seq, t in enumerate((1.0, 2.0), start=1):
            w.write(t, "in", pb.SessionRequest(frame=pb.Frame(sequence=seq, game_time=t)).SerializeToString())
            resp = pb.SessionResponse()
            g = resp.guidance
            g.sequence = seq
            for name_, v in zip(knobs.names, knobs.to_values(0.55).tolist(), strict=True):
                g.knobs.add(name=name_, value=v)
            if back is not None:
                g.director.target_level, g.director.level_taken_back = 0.55, back if seq == 2 else 0.0
            w.write(t, "out", resp.SerializeToString())
        w.close()
        return path

    assert read_session(record("held", 0.25)).end_level() == pytest.approx(0.8, abs=1e-4)
    assert read_session(record("plain", 0.0)).end_level() == pytest.approx(0.55, abs=1e-4)
    assert read_session(record("old", None)).end_level() == pytest.approx(0.55, abs=1e-4)  # no note at all
    assert read_session(record("nan", float("nan"))).end_level() == pytest.approx(0.55, abs=1e-4)
