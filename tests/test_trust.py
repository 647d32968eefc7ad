"""Real games' input, hostile clients and failing disks: each defect found from outside, as a test.

Every test here failed on the code before it was written (issue #18): a count of -1 turning a session's
insights NaN for good, NaN knobs from a policy parameter, streams hanging on an unexpected exception or
on bytes that do not parse, frames lost to a goodbye, slots held by plain HTTP requests, and so on.
"""

from __future__ import annotations

import contextlib
import errno
import math
import time
import urllib.error
import urllib.request
from pathlib import Path

import grpc
import numpy as np
import pytest
from websockets.exceptions import ConnectionClosed, InvalidStatus
from websockets.sync.client import connect

from sidecar import errors
from sidecar.engine.engine import EngineConfig
from sidecar.limits import Limits
from sidecar.model.checkpoint import Checkpoint
from sidecar.operations.metrics import reason_label
from sidecar.operations.recording import Pseudonymizer, RecordingWriter, read_recording
from sidecar.protocol import Connection, ServerInfo
from sidecar.serving.inprocess import RunningSidecar
from sidecar.session import SessionRegistry
from sidecar.wire.frames import to_tables
from sidecar.wire.requests import from_message
from sidecar.wire.schema import SERVICE_NAME, pb
from sim.game import KNOBS
from tests.conftest import make_sidecar
from tests.helpers import GrpcSession, WsSession, frame_req, game_frames, hello_req

FRAMES = game_frames(60, seed=3)
FIGHT = next(f for f in FRAMES if len(f.npcs) >= 2)
INFO = ServerInfo("test-model", "predictive")


def _conn() -> Connection:
    return Connection(SessionRegistry(Limits(max_frames_per_second=1e6)), INFO)


def _open(client: GrpcSession | WsSession, **kw: object) -> pb.Welcome:
    client.send(hello_req(**kw))
    resp = client.recv()
    assert resp.WhichOneof("kind") == "welcome", resp
    return resp.welcome


def _table_frame(frame: pb.Frame, column: str, value: float, table: str = "player_table") -> pb.Frame:
    f = to_tables(frame, [k.name for k in KNOBS])
    t = getattr(f, table)
    from sidecar.wire.frames import NPC_TABLE_COLUMNS, PLAYER_TABLE_COLUMNS

    names = PLAYER_TABLE_COLUMNS if table == "player_table" else NPC_TABLE_COLUMNS
    values = np.frombuffer(t.values, "<f4").copy().reshape(-1, t.columns)
    values[0, names.index(column)] = value
    t.values = values.tobytes()
    return f


# -- a bad counter cannot corrupt a session ---------------------------------------------------------


def test_a_negative_count_is_refused_and_insights_stay_finite(sidecar: RunningSidecar, channel: grpc.Channel) -> None:
    """shots_fired = -1 with shots_hit = 0 was accepted and made every later insight NaN (0/0)."""
    c = GrpcSession(channel)
    _open(c)
    bad = _table_frame(FRAMES[0], "input.shots_fired", -1.0)
    c.send(frame_req(bad))
    err = c.recv().error
    assert err.code == pb.ERROR_CODE_INVALID_ARGUMENT and not err.fatal
    assert err.field == "frame.player_table[0].input.shots_fired" and "whole number in [0" in err.message
    for f in FRAMES[1:20]:
        c.send(frame_req(to_tables(f, [k.name for k in KNOBS])))
        g = c.recv().guidance
        ins = g.insights[0]
        values = [ins.p_fail, ins.p_quit, ins.frustration, ins.engagement, ins.skill, *(k.value for k in g.knobs)]
        assert all(math.isfinite(v) for v in values), g
        assert all(math.isfinite(h.aggression) and 0.0 <= h.aggression <= 1.0 for h in g.npc_hints)
    c.close()


@pytest.mark.parametrize(
    ("table", "column", "value", "words"),
    [
        ("player_table", "input.shots_fired", -1e6, "whole number in [0"),
        ("player_table", "input.dodges", -3.0, "outside [0"),
        ("player_table", "input.dodges", 3.5, "not a whole number"),
        ("player_table", "dead", 0.5, "0 or 1"),
        ("npc_table", "state", 2.5, "not a whole number"),
        ("npc_table", "state", -4.0, "outside [0, 6]"),
        ("npc_table", "tactic", 99.0, "outside [0, 6]"),
    ],
)
def test_nonsense_in_a_table_is_refused_by_name(table: str, column: str, value: float, words: str) -> None:
    c = _conn()
    c.receive(from_message(hello_req()), 0.0)
    with pytest.raises(errors.InvalidArgument) as e:
        c.receive(from_message(pb.SessionRequest(frame=_table_frame(FIGHT, column, value, table))), 0.1)
    assert e.value.field == f"frame.{table}[0].{column}" and words in e.value.message, e.value.message
    assert not e.value.fatal


def test_nonsense_in_rows_and_events_is_refused_by_name() -> None:
    cases: list[tuple[str, object, str]] = []

    def dup_npc(f: pb.Frame) -> None:
        f.npcs[1].npc_id = f.npcs[0].npc_id

    def state(f: pb.Frame) -> None:
        f.npcs[0].state = -4  # type: ignore[assignment]

    def tactic(f: pb.Frame) -> None:
        f.npcs[0].tactic = 99  # type: ignore[assignment]

    def event(f: pb.Frame) -> None:
        f.events.add(type=77, player_id="p1")  # type: ignore[arg-type]

    def game_time(f: pb.Frame) -> None:
        f.game_time = 1e300

    def negative_damage(f: pb.Frame) -> None:
        f.events.add(type=pb.EVENT_TYPE_DAMAGE_TAKEN, player_id="p1", amount=-50.0)

    cases = [
        ("frame.npcs[1].npc_id", dup_npc, "appears twice"),
        ("frame.npcs[0].state", state, "outside [0, 6]"),
        ("frame.npcs[0].tactic", tactic, "outside [0, 6]"),
        ("frame.events[", event, "outside [0, 10]"),
        ("frame.game_time", game_time, "finite number in [0, 1e+09]"),
        ("frame.events[", negative_damage, "amount=-50 is outside [0"),
    ]
    for field, mutate, words in cases:
        c = _conn()
        c.receive(from_message(hello_req()), 0.0)
        f = pb.Frame()
        f.CopyFrom(FIGHT)
        mutate(f)  # type: ignore[operator]
        with pytest.raises(errors.InvalidArgument) as e:
            c.receive(from_message(pb.SessionRequest(frame=f)), 0.1)
        assert e.value.field.startswith(field) and words in e.value.message, (field, e.value.message)


def test_duplicate_npc_ids_and_values_without_ids_are_refused_in_tables() -> None:
    f = to_tables(FIGHT)
    ids = np.frombuffer(f.npc_table.npc_ids, "<u4").copy()
    ids[1] = ids[0]
    f.npc_table.npc_ids = ids.tobytes()
    c = _conn()
    c.receive(from_message(hello_req()), 0.0)
    with pytest.raises(errors.InvalidArgument) as e:
        c.receive(from_message(pb.SessionRequest(frame=f)), 0.1)
    assert e.value.field == "frame.npc_table.npc_ids[1]" and "appears twice" in e.value.message
    g = to_tables(FIGHT)
    g.npc_table.npc_ids = b""
    with pytest.raises(errors.InvalidArgument) as e2:
        c.receive(from_message(pb.SessionRequest(frame=g)), 0.1)
    assert e2.value.field == "frame.npc_table.npc_ids" and "no npc_ids" in e2.value.message


# -- policy parameters --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("policy", "params", "field", "words"),
    [
        ("static", {"level": "nan"}, "hello.policy_params[level]", "must be a finite number"),
        ("static", {"level": "abc"}, "hello.policy_params[level]", "is not a number"),
        ("static", {"level": "1.5"}, "hello.policy_params[level]", "outside [0, 1]"),
        ("static", {"levle": "0.4"}, "hello.policy_params[levle]", "is not a parameter of the static policy"),
        ("predictive", {"smoothing_s": "inf"}, "hello.policy_params[smoothing_s]", "finite"),
        ("predictive", {"band_low": "5", "band_high": "-3"}, "hello.policy_params[band_high]", "outside [0, 1]"),
        ("predictive", {"band_low": "0.5", "band_high": "0.2"}, "hello.policy_params[band_low]", "exceeds band_high"),
        ("rubber_band", {"death_step": "nan"}, "hello.policy_params[death_step]", "finite"),
        ("", {"quit_weight": "-1"}, "hello.policy_params[quit_weight]", "outside [0, 100]"),  # the default policy
        ("static", {"npc_hints": "maybe"}, "hello.policy_params[npc_hints]", "not one of on, off"),
    ],
)
def test_policy_params_are_checked_before_the_welcome(
    policy: str, params: dict[str, str], field: str, words: str
) -> None:
    with pytest.raises(errors.InvalidHello) as e:
        _conn().receive(from_message(hello_req(policy=policy, params=params)), 0.0)
    assert e.value.fatal and e.value.field == field and words in e.value.message, e.value.message


def test_bad_policy_params_end_the_stream_with_a_status_on_both_transports(
    sidecar: RunningSidecar, channel: grpc.Channel
) -> None:
    """{"level": "abc"} used to raise ValueError inside the director: the gRPC stream hung."""
    c = GrpcSession(channel)
    c.send(hello_req(policy="static", params={"level": "abc"}))
    err = c.recv(timeout=5).error
    assert err.field == "hello.policy_params[level]" and err.fatal
    with pytest.raises(grpc.RpcError) as info:
        c.recv(timeout=5)
    assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    w = WsSession(sidecar.ws_url)
    w.send(hello_req(policy="static", params={"level": "nan"}))
    assert w.recv(timeout=5).error.field == "hello.policy_params[level]"
    with pytest.raises(ConnectionClosed) as closed:
        w.recv(timeout=5)
    assert closed.value.rcvd is not None and "policy_params[level]" in closed.value.rcvd.reason


# -- every stream ends with a status ------------------------------------------------------------------


def _raw_stream(channel: grpc.Channel, payload: bytes) -> tuple[list[bytes], grpc.RpcError]:
    """Send raw bytes as one request; returns the raw responses and the status the stream ended with."""
    call = channel.stream_stream(f"/{SERVICE_NAME}/Session")(iter([payload]), timeout=10)
    out: list[bytes] = []
    with pytest.raises(grpc.RpcError) as info:
        for resp in call:
            out.append(resp)
    return out, info.value


def _nested_groups(depth: int) -> bytes:
    return b"\x0b" * depth + b"\x0c" * depth  # field 1, wire type 3 (start group) / 4 (end group)


@pytest.mark.parametrize(
    "payload",
    [
        bytes(range(256)) * 3,  # random bytes
        pb.SessionRequest(frame=FRAMES[0]).SerializeToString()[:-7],  # a truncated frame
        b"\x0a\x04\x12\x02\xff\xfe",  # hello.game_id that is not UTF-8
        _nested_groups(5000),  # deeply nested groups
    ],
    ids=["random", "truncated", "not-utf8", "nested-groups"],
)
def test_bytes_that_do_not_parse_get_malformed_on_grpc(
    sidecar: RunningSidecar, channel: grpc.Channel, payload: bytes
) -> None:
    """gRPC used to refuse these in the library and leave the stream hanging with no status."""
    t0 = time.monotonic()
    out, status = _raw_stream(channel, payload)
    assert time.monotonic() - t0 < 5
    assert status.code() == grpc.StatusCode.INVALID_ARGUMENT
    err = pb.SessionResponse.FromString(out[-1]).error
    assert err.code == pb.ERROR_CODE_MALFORMED and err.fatal


def test_a_non_ascii_resume_token_is_refused_not_hung(channel: grpc.Channel) -> None:
    c = GrpcSession(channel)
    c.send(hello_req(resume_token="sessión.ñ"))
    err = c.recv(timeout=5).error
    assert err.code == pb.ERROR_CODE_RESUME_REJECTED and err.field == "hello.resume_token"


def test_an_unexpected_exception_ends_that_stream_with_internal(
    sidecar: RunningSidecar, channel: grpc.Channel, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A bug while handling one session ends it with INTERNAL (gRPC) / 1011 with a reason (WebSocket);
    the other sessions go on."""
    healthy = GrpcSession(channel)
    _open(healthy)
    engine = sidecar.sidecar.engine
    real_join = engine.join

    def broken(session: object, state_reset: bool = False) -> None:
        if session.spec.game_id == "broken.game":
            raise RuntimeError("a bug")
        real_join(session, state_reset)  # type: ignore[arg-type]

    monkeypatch.setattr(engine, "join", broken)
    c = GrpcSession(channel)
    req = hello_req()
    req.hello.game_id = "broken.game"
    c.send(req)
    err = c.recv(timeout=5).error
    assert err.code == pb.ERROR_CODE_INTERNAL and err.fatal and "RuntimeError" in err.message
    with pytest.raises(grpc.RpcError) as info:
        c.recv(timeout=5)
    assert info.value.code() == grpc.StatusCode.INTERNAL
    w = WsSession(sidecar.ws_url)
    w.send(req)
    assert w.recv(timeout=5).error.code == pb.ERROR_CODE_INTERNAL
    with pytest.raises(ConnectionClosed) as closed:
        w.recv(timeout=5)
    assert closed.value.rcvd is not None and closed.value.rcvd.code == 1011 and closed.value.rcvd.reason
    healthy.send(frame_req(FRAMES[0]))
    assert healthy.recv().guidance.sequence == FRAMES[0].sequence


# -- every accepted frame is answered -----------------------------------------------------------------


@pytest.mark.parametrize("transport", ["grpc", "websocket"])
def test_frames_before_a_goodbye_are_all_answered(
    sidecar: RunningSidecar, channel: grpc.Channel, transport: str
) -> None:
    c: GrpcSession | WsSession = GrpcSession(channel) if transport == "grpc" else WsSession(sidecar.ws_url)
    _open(c)
    for f in FRAMES[:5]:
        c.send(frame_req(f))
    c.send(pb.SessionRequest(goodbye=pb.Goodbye(reason="quit")))
    answered: list[int] = []
    while True:
        resp = c.recv(timeout=5)
        kind = resp.WhichOneof("kind")
        if kind == "goodbye":
            break
        assert kind in ("guidance", "superseded"), resp
        answered.append(resp.guidance.sequence if kind == "guidance" else resp.superseded.sequence)
    assert sorted(answered) == [f.sequence for f in FRAMES[:5]]
    if isinstance(c, WsSession):  # the server closes the WebSocket after acknowledging the goodbye
        with pytest.raises(ConnectionClosed) as closed:
            c.recv(timeout=5)
        assert closed.value.rcvd is not None and closed.value.rcvd.code == 1000
    else:
        with pytest.raises((grpc.RpcError, StopIteration, __import__("queue").Empty)):
            c.recv(timeout=2)


# -- admission ----------------------------------------------------------------------------------------


def _http_get(url: str, headers: dict[str, str] | None = None) -> int:
    req = urllib.request.Request(url, headers=headers or {})
    try:
        with urllib.request.urlopen(req, timeout=5) as r:
            return int(r.status)
    except urllib.error.HTTPError as e:
        return int(e.code)


def test_plain_http_requests_hold_no_slot_and_wrong_paths_get_404(tiny_checkpoint: Checkpoint) -> None:
    sc = make_sidecar(tiny_checkpoint, limits=Limits(max_connections=3, max_frames_per_second=1e6))
    try:
        http = sc.ws_url.replace("ws://", "http://")
        base = http.removesuffix("/metabrain/v1/session")
        assert [_http_get(http) for _ in range(20)] == [426] * 20  # no Upgrade header: no slot taken
        for path in ("/", "/nope", "/metabrain/v2/session"):
            assert _http_get(base + path) == 404
            with pytest.raises(InvalidStatus) as bad:
                connect(sc.ws_url.replace("/metabrain/v1/session", path), open_timeout=5)
            assert bad.value.response.status_code == 404
        assert sc.sidecar.ctx.admissions.open == 0
        w = WsSession(sc.ws_url)  # after the flood, sessions still get in
        assert _open(w).session_id
        w.close()
    finally:
        sc.stop()


def test_allowed_origins(tiny_checkpoint: Checkpoint) -> None:
    sc = make_sidecar(tiny_checkpoint, allowed_origins=("https://game.example",))
    try:
        with pytest.raises(InvalidStatus) as bad:
            connect(sc.ws_url, origin="https://evil.example", open_timeout=5)  # type: ignore[arg-type]
        assert bad.value.response.status_code == 403
        ok = WsSession(sc.ws_url, origin="https://game.example")
        assert _open(ok).session_id
        native = WsSession(sc.ws_url)  # no Origin header: a native client
        assert _open(native).session_id
    finally:
        sc.stop()


def test_a_stream_that_never_says_hello_is_closed(tiny_checkpoint: Checkpoint) -> None:
    limits = Limits(hello_timeout_s=0.5, max_frames_per_second=1e6)
    sc = make_sidecar(tiny_checkpoint, limits=limits)
    try:
        w = WsSession(sc.ws_url)
        err = w.recv(timeout=5).error
        assert err.code == pb.ERROR_CODE_IDLE_TIMEOUT and "hello_timeout_s" in err.message
        with pytest.raises(ConnectionClosed):
            w.recv(timeout=5)
        ch = grpc.insecure_channel(sc.grpc_address)
        c = GrpcSession(ch)
        assert c.recv(timeout=5).error.field == "hello_timeout_s"
        with pytest.raises(grpc.RpcError) as info:
            c.recv(timeout=5)
        assert info.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED
        deadline = time.time() + 5
        while sc.sidecar.ctx.admissions.open and time.time() < deadline:
            time.sleep(0.05)
        assert sc.sidecar.ctx.admissions.open == 0
        ch.close()
    finally:
        sc.stop()


# -- messages that say what happened ------------------------------------------------------------------


def test_a_taken_over_stream_is_told_so(sidecar: RunningSidecar, channel: grpc.Channel) -> None:
    first = GrpcSession(channel)
    welcome = _open(first)
    second = WsSession(sidecar.ws_url)
    _open(second, resume_token=welcome.resume_token)
    err = first.recv(timeout=5).error
    assert err.code == pb.ERROR_CODE_FAILED_PRECONDITION and "resumed on another stream" in err.message
    with pytest.raises(grpc.RpcError):
        first.recv(timeout=5)
    second.send(frame_req(FRAMES[0]))
    assert second.recv().guidance.sequence == FRAMES[0].sequence


def test_sequence_zero_is_explained() -> None:
    c = _conn()
    c.receive(from_message(hello_req()), 0.0)
    f = pb.Frame()
    f.CopyFrom(FRAMES[0])
    f.sequence = 0
    with pytest.raises(errors.StaleSequence) as e:
        c.receive(from_message(pb.SessionRequest(frame=f)), 0.1)
    assert "sequences start at 1" in e.value.message and "last accepted" not in e.value.message


# -- a failing recording never costs the game its guidance -------------------------------------------


def test_a_full_disk_stops_the_recording_not_the_guidance(
    tiny_checkpoint: Checkpoint, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    sc = make_sidecar(tiny_checkpoint, record_dir=str(tmp_path / "recs"), metrics_port=0)
    real_flush = RecordingWriter.flush
    calls = {"n": 0}

    def full_disk(self: RecordingWriter) -> None:
        calls["n"] += 1
        if calls["n"] > 8:
            raise OSError(errno.ENOSPC, "No space left on device")
        real_flush(self)

    monkeypatch.setattr(RecordingWriter, "flush", full_disk)
    try:
        c = WsSession(sc.ws_url)
        _open(c, consent=True)
        guidance, warnings = [], []
        for f in FRAMES[:30]:
            c.send(frame_req(f))
            while True:
                resp = c.recv()
                if resp.WhichOneof("kind") == "error":
                    warnings.append(resp.error)
                    continue
                guidance.append(resp.guidance.sequence)
                break
        assert guidance == [f.sequence for f in FRAMES[:30]]  # every frame answered
        assert len(warnings) == 1 and warnings[0].code == pb.ERROR_CODE_RECORDING_FAILED
        assert not warnings[0].fatal and "ENOSPC" in warnings[0].message
        files = list((tmp_path / "recs").glob("*.mbrec"))
        assert len(files) == 1 and files[0].name.endswith(".incomplete.mbrec")
        assert read_recording(files[0]).header["session_id"]
        metrics = urllib.request.urlopen(f"http://127.0.0.1:{sc.sidecar.metrics_port}/metrics", timeout=5).read()
        assert b"metabrain_recording_failures_total 1.0" in metrics
    finally:
        sc.stop()


# -- keys survive restarts ----------------------------------------------------------------------------


@pytest.mark.parametrize("key", [b" \t" + bytes(range(30)), bytes(range(30)) + b"\n\r", b"\x0b" * 32])
def test_the_recording_key_is_read_back_exactly(tmp_path: Path, key: bytes) -> None:
    path = tmp_path / "key"
    path.write_bytes(key)
    a, b = Pseudonymizer.from_file(str(path)), Pseudonymizer.from_file(str(path))
    assert a.key == key and a("player-1") == b("player-1")


def test_a_new_key_is_written_atomically_and_privately(tmp_path: Path) -> None:
    path = tmp_path / "state" / "record.key"
    first = Pseudonymizer.from_file(str(path))
    again = Pseudonymizer.from_file(str(path))
    assert first.key == again.key == path.read_bytes() and len(first.key) == 32
    assert path.stat().st_mode & 0o777 == 0o600
    assert [p.name for p in path.parent.iterdir()] == ["record.key"]  # no temporary file left behind


# -- the dashboard behind the same door ---------------------------------------------------------------


def test_the_dashboard_needs_the_token_caps_viewers_and_stays_on_loopback(
    tiny_checkpoint: Checkpoint, tmp_path: Path
) -> None:
    tokens = tmp_path / "tokens"
    tokens.write_text("s3cret\n")
    sc = make_sidecar(
        tiny_checkpoint, host="0.0.0.0", dashboard_port=0, token_file=str(tokens), dashboard_max_viewers=2
    )
    try:
        port = sc.sidecar.dashboard_port
        assert sc.sidecar._dashboard_server is not None
        bound = {s.getsockname()[0] for s in sc.sidecar._dashboard_server.sockets}
        assert bound == {"127.0.0.1"}  # --host 0.0.0.0 opens the game ports, not the dashboard
        base = f"http://127.0.0.1:{port}"
        assert _http_get(base + "/") == 401
        assert _http_get(base + "/?token=wrong") == 401
        with urllib.request.urlopen(base + "/?token=s3cret", timeout=5) as r:
            assert r.status == 200 and "metabrain_token=s3cret" in r.headers["Set-Cookie"]
        with pytest.raises(InvalidStatus) as bad:
            connect(f"ws://127.0.0.1:{port}/feed", open_timeout=5)
        assert bad.value.response.status_code == 401
        with contextlib.ExitStack() as stack:
            feeds = [
                stack.enter_context(
                    connect(f"ws://127.0.0.1:{port}/feed", additional_headers={"Cookie": "metabrain_token=s3cret"})
                )
                for _ in range(2)
            ]
            assert all(f.recv(timeout=5) for f in feeds)
            with pytest.raises(InvalidStatus) as full:
                connect(f"ws://127.0.0.1:{port}/feed?token=s3cret", open_timeout=5)
            assert full.value.response.status_code == 503
    finally:
        sc.stop()


# -- bounded metric labels ----------------------------------------------------------------------------


def test_rejection_labels_carry_no_index_or_value() -> None:
    assert reason_label("frame.npcs[17].health") == "frame.npcs[].health"
    assert reason_label("frame.player_table[3].input.move_x") == "frame.player_table[].input.move_x"
    assert reason_label("hello.policy_params[whatever the client typed]") == "hello.policy_params[]"
    assert reason_label("max_frames_per_second") == "max_frames_per_second"


def test_many_bad_indices_make_one_series(tiny_checkpoint: Checkpoint) -> None:
    sc = make_sidecar(tiny_checkpoint, metrics_port=0, engine=EngineConfig(device="cpu", max_slots=64))
    try:
        c = WsSession(sc.ws_url)
        _open(c)
        for i in range(5):
            f = pb.Frame()
            f.CopyFrom(FIGHT)
            f.sequence = 100 + i
            for _ in range(i):
                f.npcs.add(npc_id=900 + _ + 10 * i, health=0.5).position.x = 1.0
            f.npcs[len(f.npcs) - 1].health = 7.0
            c.send(frame_req(f))
            assert c.recv().error.field.endswith("].health")
        text = urllib.request.urlopen(f"http://127.0.0.1:{sc.sidecar.metrics_port}/metrics", timeout=5).read().decode()
        series = [line for line in text.splitlines() if line.startswith("metabrain_frames_rejected_total{")]
        assert series == ['metabrain_frames_rejected_total{reason="frame.npcs[].health"} 5.0'], series
    finally:
        sc.stop()


def test_the_rate_guard_holds_when_the_model_fails_for_many_ticks(
    sidecar: RunningSidecar, channel: grpc.Channel
) -> None:
    """Falling back for several ticks in a row walks the knobs to the defaults at each knob's rate."""
    c = GrpcSession(channel)
    _open(c, policy="static", params={"level": "1.0"})
    frames = game_frames(80, seed=9, frame_every=6)  # 5 Hz: every frame is a model step
    last = None
    for f in frames[:40]:
        c.send(frame_req(f))
        last = c.recv().guidance
    assert last is not None
    runner = sidecar.sidecar.engine.runner
    prev = {k.name: k.value for k in last.knobs}
    prev_t = frames[39].game_time
    for f in frames[40:]:
        runner.fail_next = RuntimeError("device lost (injected)")
        c.send(frame_req(f))
        g = c.recv().guidance
        assert g.fallback and c.recv().error.code == pb.ERROR_CODE_MODEL_UNAVAILABLE
        dt = f.game_time - prev_t
        for spec in KNOBS:
            v = next(k.value for k in g.knobs if k.name == spec.name)
            assert abs(v - prev[spec.name]) <= spec.max_change_per_second * dt + 1e-5
            assert abs(v - spec.default_value) <= abs(prev[spec.name] - spec.default_value) + 1e-6
            prev[spec.name] = v
        prev_t = f.game_time
    assert all(abs(prev[s.name] - s.default_value) < 1e-4 for s in KNOBS)  # arrived, at the rate allowed
