"""One reading of how a recorded session went, shared by the experiment report, off-policy evaluation
and the portfolio's import: its length, its player and whether the player quit."""

from __future__ import annotations

from pathlib import Path

from sidecar.operations.experiment_report import read_outcomes
from sidecar.operations.portfolio_store import evidence_from_recordings
from sidecar.operations.recording import RecordingWriter
from sidecar.operations.session_outcomes import read_session
from sidecar.training.offpolicy import read_logged
from sidecar.wire.schema import pb


def _record(path: Path, goodbye: pb.Goodbye | None, player: str = "", header_player: str = "") -> Path:
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
    w.close()
    return path


def test_a_goodbye_not_cut_short_is_a_quit_and_every_reader_agrees(tmp_path: Path) -> None:
    quit_ = _record(tmp_path / "a.mbrec", pb.Goodbye(reason="game stopped"), player="ph_1")
    capped = _record(tmp_path / "b.mbrec", pb.Goodbye(reason="match over", cut_short=True), header_player="ph_2")
    lost = _record(tmp_path / "c.mbrec", None)  # no goodbye: still running, or the sidecar stopped
    a, b, c = (read_session(p) for p in (quit_, capped, lost))
    assert (a.quit, b.quit, c.quit) == (True, False, False)
    assert a.end == 30.0 and a.played_s == 28.0 and a.deaths == 1 and a.arm == "harder"
    assert (a.player, b.player, c.player) == ("ph_1", "ph_2", "c")  # hello's id, header's, else the session
    paths = [quit_, capped, lost]
    assert [o.quit for o in read_outcomes(paths)] == [True, False, False]
    assert [s.quit for s in read_logged(paths)] == [True, False, False]
    assert [o.seconds for o in read_outcomes(paths)] == [30.0, 30.0, 30.0]
    evidence = evidence_from_recordings(paths)["g"]["harder"]
    assert (evidence.quits, evidence.finished, evidence.seconds) == (1, 3, 84.0)
