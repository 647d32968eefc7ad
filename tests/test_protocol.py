"""The sans-I/O session core: no network, no clock."""

from __future__ import annotations

import dataclasses
import math

import pytest

from sidecar import errors
from sidecar.limits import Limits
from sidecar.protocol import Connection, FrameAccepted, ServerInfo, SessionEnded, Welcomed, parse_request
from sidecar.session import SessionRegistry
from sidecar.wire.requests import from_message
from sidecar.wire.schema import pb
from tests.helpers import frame_req, game_frames, hello_req

INFO = ServerInfo("test-model", "predictive")
FRAMES = game_frames(10)


def _conn(limits: Limits | None = None, registry: SessionRegistry | None = None) -> Connection:
    return Connection(registry or SessionRegistry(limits or Limits(max_frames_per_second=1e6)), INFO)


def _frame(i: int) -> pb.SessionRequest:
    return pb.SessionRequest(frame=FRAMES[i])


def test_handshake_frames_goodbye() -> None:
    c = _conn()
    ev = c.receive(from_message(hello_req()), 0.0)
    assert isinstance(ev, Welcomed) and ev.welcome.policy == "predictive" and ev.welcome.model_version == "test-model"
    assert ev.welcome.limits.max_npcs_per_frame == Limits().max_npcs_per_frame
    for i in range(3):
        ev = c.receive(from_message(_frame(i)), 0.1 * i)
        assert isinstance(ev, FrameAccepted) and ev.frame.sequence == FRAMES[i].sequence
    ev = c.receive(from_message(pb.SessionRequest(goodbye=pb.Goodbye(reason="bye"))), 1.0)
    assert isinstance(ev, SessionEnded) and not c.registry.sessions
    with pytest.raises(errors.ProtocolViolation):
        c.receive(from_message(_frame(3)), 1.1)


def test_order_and_version_errors_are_fatal() -> None:
    with pytest.raises(errors.ProtocolViolation) as e:
        _conn().receive(from_message(_frame(0)), 0.0)
    assert e.value.fatal and "before hello" in e.value.message
    req = hello_req()
    req.hello.protocol_version = 2
    with pytest.raises(errors.UnsupportedVersion) as e2:
        _conn().receive(from_message(req), 0.0)
    assert e2.value.field == "hello.protocol_version"
    c = _conn()
    c.receive(from_message(hello_req()), 0.0)
    with pytest.raises(errors.ProtocolViolation):
        c.receive(from_message(hello_req()), 0.0)


@pytest.mark.parametrize(
    ("mutate", "field", "words"),
    [
        (lambda f: setattr(f.players[0].position, "x", math.inf), "frame.players[0].position.x", "finite"),
        (lambda f: setattr(f.players[0].velocity, "y", math.nan), "frame.players[0].velocity.y", "finite"),
        (lambda f: setattr(f.players[0], "health", -5.0), "frame.players[0].health", "outside"),
        (lambda f: setattr(f.players[0], "health", f.players[0].max_health + 1), "frame.players[0].health", "exceeds"),
        (lambda f: f.events.add(type=pb.EVENT_TYPE_DAMAGE_TAKEN, amount=math.inf), "frame.events[", "finite"),
        (lambda f: f.events.add(type=pb.EVENT_TYPE_KILL, game_time=-2e6), "frame.events[", "outside [0, 1e+09]"),
        (lambda f: f.npcs.add(npc_id=7).position.__setattr__("y", math.nan), "frame.npcs[0].position.y", "finite"),
        (lambda f: setattr(f.players[0].input, "move_x", 3.0), "frame.players[0].input.move_x", "outside"),
        (lambda f: setattr(f.players[0].position, "z", 1e9), "frame.players[0].position.z", "outside"),
        (lambda f: f.npcs.add(npc_id=99, health=2.0), "frame.npcs", "health"),
        (lambda f: setattr(f, "game_time", math.nan), "frame.game_time", "finite"),
        (lambda f: f.knobs.add(name="enemy_damage", value=math.inf), "frame.knobs", "finite"),
        (lambda f: f.players.add(player_id="p1"), "frame.players[1].player_id", "twice"),
        (
            lambda f: f.players[0].vr.head.rotation.__setattr__("w", 7.0),
            "frame.players[0].vr.head.rotation.w",
            "quaternion",
        ),
    ],
)
def test_invalid_fields_are_named_and_not_fatal(mutate: object, field: str, words: str) -> None:
    c = _conn()
    c.receive(from_message(hello_req()), 0.0)
    bad = pb.Frame()
    bad.CopyFrom(FRAMES[0])
    mutate(bad)  # type: ignore[operator]
    with pytest.raises(errors.InvalidArgument) as e:
        c.receive(from_message(pb.SessionRequest(frame=bad)), 0.0)
    assert not e.value.fatal
    assert e.value.field.startswith(field), e.value.field
    assert words in e.value.message
    # The session goes on, and the refused frame did not consume its sequence number.
    assert isinstance(c.receive(from_message(_frame(0)), 0.1), FrameAccepted)


def test_limits_name_the_limit() -> None:
    c = _conn(Limits(max_npcs_per_frame=4, max_frames_per_second=1e6))
    c.receive(from_message(hello_req()), 0.0)
    f = pb.Frame()
    f.CopyFrom(FRAMES[0])
    for i in range(5):
        f.npcs.add(npc_id=500 + i)
    with pytest.raises(errors.LimitExceeded) as e:
        c.receive(from_message(pb.SessionRequest(frame=f)), 0.0)
    assert "max_npcs_per_frame=4" in e.value.message and not e.value.fatal
    with pytest.raises(errors.MessageTooLarge) as e2:
        parse_request(b"\x00" * (Limits().max_message_bytes + 1), Limits())
    assert "max_message_bytes" in e2.value.message
    with pytest.raises(errors.Malformed):
        parse_request(b"\xff\xff\xff\xff", Limits())


def test_rate_limit_per_session() -> None:
    c = _conn(Limits(max_frames_per_second=5))
    c.receive(from_message(hello_req()), 0.0)
    accepted = refused = 0
    for i in range(10):
        try:
            c.receive(from_message(_frame(i)), 0.0)
            accepted += 1
        except errors.LimitExceeded as e:
            assert "max_frames_per_second=5" in e.message
            refused += 1
    assert accepted == 5 and refused == 5


def test_sequencing() -> None:
    c = _conn()
    c.receive(from_message(hello_req()), 0.0)
    c.receive(from_message(_frame(3)), 0.0)
    for i in (3, 1):  # a duplicate and an older frame
        with pytest.raises(errors.StaleSequence) as e:
            c.receive(from_message(_frame(i)), 0.0)
        assert not e.value.fatal and e.value.sequence == FRAMES[i].sequence
    assert isinstance(c.receive(from_message(_frame(5)), 0.0), FrameAccepted)  # gaps are fine


def _welcomed(reg: SessionRegistry, t: float) -> tuple[Connection, Welcomed]:
    """A new connection whose hello was welcomed at t."""
    c = _conn(registry=reg)
    w = c.receive(from_message(hello_req()), t)
    assert isinstance(w, Welcomed)
    return c, w


def test_resume_window_and_idle_timeout() -> None:
    limits = Limits(resume_window_s=10.0, idle_timeout_s=5.0, max_frames_per_second=1e6)
    reg = SessionRegistry(limits, secret=b"k" * 32)
    c, w = _welcomed(reg, 0.0)
    c.receive(from_message(_frame(0)), 0.5)
    c.lost(1.0)
    assert reg.expired(5.0) == ([], [])  # detached sessions do not idle out
    c2 = _conn(registry=reg)
    ev = c2.receive(from_message(hello_req(resume_token=w.welcome.resume_token)), 6.0)
    assert isinstance(ev, Welcomed) and ev.welcome.resumed and ev.welcome.last_sequence == FRAMES[0].sequence
    c2.lost(7.0)
    gone, idle = reg.expired(17.5)
    assert [s.session_id for s in gone] == [w.welcome.session_id]
    # A token signed by this secret for a session it no longer has: resumed with state reset.
    c3 = _conn(registry=reg)
    ev3 = c3.receive(from_message(hello_req(resume_token=w.welcome.resume_token)), 18.0)
    assert isinstance(ev3, Welcomed) and ev3.welcome.resumed and ev3.welcome.state_reset
    # Idle: an attached session without frames.
    _, idle = reg.expired(18.0 + 5.1)
    assert [s.session_id for s in idle] == [w.welcome.session_id]
    # A forged token.
    with pytest.raises(errors.ResumeRejected):
        _conn(registry=reg).receive(from_message(hello_req(resume_token=w.welcome.session_id + ".forged")), 30.0)


def _paused_session(reg: SessionRegistry, t: float) -> tuple[Connection, str]:
    """A session welcomed at t whose first frame (at t + 1) says the game paused; its id."""
    c, w = _welcomed(reg, t)
    c.receive(from_message(frame_req(FRAMES[0], pb.EVENT_TYPE_PAUSE)), t + 1.0)
    return c, w.welcome.session_id


def test_a_paused_game_may_go_quiet_for_max_pause_s_not_idle_timeout_s() -> None:
    """A pause menu is not a player who left: after a frame with EVENT_TYPE_PAUSE the session may go
    max_pause_s without frames; a RESUME (the last of the two in a frame decides) brings idle_timeout_s
    back."""
    limits = Limits(idle_timeout_s=5.0, max_pause_s=100.0, max_frames_per_second=1e6)
    reg = SessionRegistry(limits, secret=b"k" * 32)
    c, w = _welcomed(reg, 0.0)
    c.receive(from_message(_frame(0)), 1.0)
    c.receive(from_message(frame_req(FRAMES[1], pb.EVENT_TYPE_RESUME, pb.EVENT_TYPE_PAUSE)), 2.0)  # paused
    assert reg.expired(2.0 + 50.0) == ([], [])  # well past idle_timeout_s
    c.receive(from_message(_frame(2)), 60.0)  # a frame with no pause event: still paused
    assert reg.expired(60.0 + 99.0) == ([], [])
    c.receive(from_message(frame_req(FRAMES[3], pb.EVENT_TYPE_PAUSE, pb.EVENT_TYPE_RESUME)), 160.0)  # playing again
    _, idle = reg.expired(160.0 + 5.1)
    assert [s.session_id for s in idle] == [w.welcome.session_id]
    # Paused and then gone quiet for longer than max_pause_s: closed.
    _, sid = _paused_session(reg, 200.0)
    assert reg.expired(201.0 + 100.0) == ([], [])
    _, idle = reg.expired(201.0 + 100.1)
    assert [s.session_id for s in idle] == [sid]
    # Paused, then the connection lost (a phone put the game in the background): the session waits for a
    # resume as long as a pause may last, not the resume window.
    c3, sid = _paused_session(reg, 400.0)
    c3.lost(402.0)
    assert reg.expired(402.0 + 99.0) == ([], [])  # well past resume_window_s (10)
    gone, _ = reg.expired(402.0 + 100.1)
    assert [s.session_id for s in gone] == [sid]


def test_session_limit() -> None:
    reg = SessionRegistry(Limits(max_sessions=2))
    for _ in range(2):
        _conn(registry=reg).receive(from_message(hello_req()), 0.0)
    with pytest.raises(errors.SessionLimitExceeded) as e:
        _conn(registry=reg).receive(from_message(hello_req()), 0.0)
    assert "max_sessions=2" in e.value.message and e.value.fatal


def test_hello_validation() -> None:
    req = hello_req()
    req.hello.knobs[0].default_value = 99.0
    with pytest.raises(errors.InvalidHello) as e:
        _conn().receive(from_message(req), 0.0)
    assert e.value.field == "hello.knobs[0].default_value" and e.value.fatal
    req = hello_req(policy="chaos")
    with pytest.raises(errors.InvalidHello) as e:
        _conn().receive(from_message(req), 0.0)
    assert "hello.policy" in e.value.message


def test_every_error_maps_to_a_grpc_status() -> None:
    import grpc

    from sidecar.serving.transports.status import grpc_status, ws_close_code

    classes = [c for c in vars(errors).values() if isinstance(c, type) and issubclass(c, errors.MetabrainError)]
    for cls in classes:
        err = cls("x")
        assert isinstance(grpc_status(err), grpc.StatusCode)
        assert 1000 <= ws_close_code(err) < 5000
    assert grpc_status(errors.InvalidArgument("x")) == grpc.StatusCode.INVALID_ARGUMENT
    assert grpc_status(errors.SessionLimitExceeded("x")) == grpc.StatusCode.RESOURCE_EXHAUSTED


def test_error_codes_and_limits_are_the_protos() -> None:
    """The plain ErrorCode is metabrain.v1.ErrorCode, name for name; every Limits field a client is told
    exists in Limits; an error reaches the wire with all it says."""
    from sidecar.wire import responses

    assert {f"ERROR_CODE_{c.name}": int(c) for c in errors.ErrorCode} == dict(pb.ErrorCode.items())
    told = responses.limits_message(Limits(max_knobs=7))
    assert told.max_knobs == 7 and told.max_message_bytes == Limits().max_message_bytes
    e = responses.error(errors.StaleSequence("old", field="frame.sequence", sequence=4)).error
    assert (e.code, e.message, e.field, e.sequence, e.fatal) == (
        pb.ERROR_CODE_STALE_SEQUENCE,
        "old",
        "frame.sequence",
        4,
        False,
    )


@pytest.mark.parametrize(
    ("limits", "mutate", "name"),
    [
        (Limits(max_players_per_frame=1), lambda f: f.players.add(player_id="p2"), "max_players_per_frame=1"),
        (Limits(max_events_per_frame=2), lambda f: [f.events.add() for _ in range(3)], "max_events_per_frame=2"),
        (Limits(max_knobs=4), lambda f: [f.knobs.add(name=f"k{i}") for i in range(5)], "max_knobs=4"),
        (Limits(max_string_bytes=20), lambda f: setattr(f.players[0], "player_id", "x" * 21), "max_string_bytes=20"),
        (
            Limits(max_abs_coordinate=100.0),
            lambda f: setattr(f.players[0].position, "x", 101.0),
            "max_abs_coordinate=100",
        ),
    ],
)
def test_every_frame_limit_is_named(limits: Limits, mutate: object, name: str) -> None:
    c = _conn(dataclasses.replace(limits, max_frames_per_second=1e6))
    c.receive(from_message(hello_req()), 0.0)
    f = pb.Frame()
    f.CopyFrom(FRAMES[0])
    f.ClearField("events")
    f.ClearField("knobs")
    mutate(f)  # type: ignore[operator]
    with pytest.raises(errors.MetabrainError) as e:
        c.receive(from_message(pb.SessionRequest(frame=f)), 0.0)
    assert name in e.value.message and not e.value.fatal


def test_token_bucket_holds_one_second_and_refills_at_its_rate() -> None:
    from sidecar.token_bucket import TokenBucket

    b = TokenBucket(10.0, now=0.0)
    assert sum(b.take(0.0) for _ in range(15)) == 10  # a burst of one second's worth
    assert not b.take(0.05)  # half a token
    assert b.take(0.1)  # one more after 0.1 s
    assert sum(b.take(100.0) for _ in range(15)) == 10  # idle time never banks more than a second


def _game_hello(game_id: str, policy: str = "") -> pb.SessionRequest:
    req = hello_req(policy=policy)
    req.hello.game_id = game_id
    return req


def test_game_limit_bounds_what_learning_directors_keep() -> None:
    """A client making up a game id per session cannot grow the learning directors' evidence without end:
    past max_games a new game's hello is refused by name (no session opened), known games go on, and a
    session that does not learn is welcomed whatever its game."""
    from sidecar.policies.portfolio import learning_games, portfolios, reset_portfolios

    reset_portfolios()
    reg = SessionRegistry(Limits(max_games=2))
    info = ServerInfo("test-model", "portfolio")
    for game in ("studio.a", "studio.b"):
        assert isinstance(Connection(reg, info).receive(from_message(_game_hello(game)), 0.0), Welcomed)
    with pytest.raises(errors.SessionLimitExceeded) as e:
        Connection(reg, info).receive(from_message(_game_hello("studio.c")), 0.0)
    assert e.value.field == "max_games" and "max_games=2" in e.value.message and "'studio.c'" in e.value.message
    assert e.value.fatal and len(reg.sessions) == 2 and "studio.c" not in learning_games()
    with pytest.raises(errors.SessionLimitExceeded):  # the contextual director learns too
        Connection(reg, info).receive(from_message(_game_hello("studio.c", "contextual")), 0.0)
    assert isinstance(Connection(reg, info).receive(from_message(_game_hello("studio.c", "static")), 0.0), Welcomed)
    assert isinstance(Connection(reg, info).receive(from_message(_game_hello("studio.a")), 0.0), Welcomed)
    assert len(reg.sessions) == 4 and learning_games() == {"studio.a", "studio.b"}
    assert portfolios() == {}  # a game's portfolio comes with its first draw, a contextual game's shares too
    # A predictive server's default learns nothing: any number of games.
    plain = ServerInfo("test-model", "predictive")
    for k in range(5):
        assert isinstance(Connection(reg, plain).receive(from_message(_game_hello(f"g{k}")), 0.0), Welcomed)
    # The contextual director's share keys are not game ids a hello may take.
    with pytest.raises(errors.InvalidHello) as e2:
        Connection(reg, info).receive(from_message(_game_hello("studio.a#skill1of3")), 0.0)
    assert e2.value.field == "hello.game_id" and "#skill" in e2.value.message
    reset_portfolios()
