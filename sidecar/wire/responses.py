"""The engine's answers as SessionResponse messages: it hands plain pieces (knob values, hint tuples,
prediction rows, a DirectorNote, errors) to these builders and passes back what they return without
touching a field. Guidance is filled in place inside its SessionResponse (wrapping a finished
Guidance copies it: 12 vs 5 us for 8 hints), and a frame between two model steps is a copy of the
step's answer with its own knobs (3x cheaper than building it)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, cast

from sidecar.errors import ErrorCode, MetabrainError
from sidecar.limits import Limits
from sidecar.policies.difficulty import DirectorNote
from sidecar.policies.director import Hint
from sidecar.session import Session
from sidecar.wire.schema import PROTOCOL_VERSION, pb

__all__ = [
    "GuidanceView",
    "Predictions",
    "Response",
    "WelcomeMessage",
    "between",
    "between_parts",
    "error",
    "error_message",
    "error_of",
    "goodbye",
    "guidance",
    "guidance_view",
    "kind",
    "limits_message",
    "parse_response",
    "processing_us",
    "superseded",
    "welcome",
    "welcome_message",
]

Response = pb.SessionResponse
WelcomeMessage = pb.Welcome


@dataclass
class Predictions:
    """One frame's predictions, a row per player (plain lists: what the insights carry)."""

    player_ids: Sequence[str]
    p_fail: list[float]
    p_quit: list[float]
    frustration: list[float]
    engagement: list[float]
    skill: list[float]
    explanations: list[list[tuple[str, float]]]  # per player: (signal, weight), strongest first; may be empty


def superseded(sequence: int, by: int) -> Response:
    return pb.SessionResponse(superseded=pb.Superseded(sequence=sequence, by_sequence=by))


def error_message(err: MetabrainError) -> pb.Error:
    return pb.Error(
        code=cast(Any, int(err.code)), message=err.message, field=err.field, sequence=err.sequence, fatal=err.fatal
    )


def error(err: MetabrainError) -> Response:
    return pb.SessionResponse(error=error_message(err))


def goodbye(reason: str) -> Response:
    return pb.SessionResponse(goodbye=pb.Goodbye(reason=reason))


def welcome_message(
    session: Session, resumed: bool, state_reset: bool, model_version: str, model_rate_hz: float, limits: Limits
) -> WelcomeMessage:
    return pb.Welcome(
        session_id=session.session_id,
        resume_token=session.resume_token,
        model_version=model_version,
        capabilities=cast(Any, sorted(session.capabilities)),
        protocol_version=PROTOCOL_VERSION,
        resumed=resumed,
        state_reset=state_reset,
        policy=session.policy,
        last_sequence=session.last_sequence,
        limits=limits_message(limits),
        model_rate_hz=model_rate_hz,
        experiment=session.experiment,
        arm=session.arm,
    )


def welcome(welcome: WelcomeMessage) -> Response:
    return pb.SessionResponse(welcome=welcome)


def limits_message(limits: Limits) -> pb.Limits:
    """The limits a client is told (every field of metabrain.v1.Limits, by name)."""
    return pb.Limits(**{f.name: getattr(limits, f.name) for f in pb.Limits.DESCRIPTOR.fields})


def guidance(
    sequence: int,
    model_version: str,
    policy: str,
    knobs: tuple[Sequence[str], list[float]],
    *,
    fallback: bool = False,
    hints: Sequence[Hint] = (),
    note: DirectorNote | None = None,
    predictions: Predictions | None = None,
    processing_us: int = 0,
) -> Response:
    resp = pb.SessionResponse()
    g = resp.guidance
    g.sequence, g.model_version, g.policy, g.fallback = sequence, model_version, policy, fallback
    if note is not None:
        d = g.director
        d.managing, d.candidate = note.managing, note.candidate
        # The note's numbers come from learned state (evidence, value heads): each finite and in the range
        # the schema gives it, whatever that state held.
        d.target_level, d.designer_level = (
            _bounded(note.target_level, 0.0, 1.0),
            _bounded(note.designer_level, 0.0, 1.0),
        )
        d.expected_gain_s = _bounded(note.expected_gain_s, -_NOTE_MAX_GAIN_S, _NOTE_MAX_GAIN_S)
        d.confidence, d.propensity = _bounded(note.confidence, 0.0, 1.0), _bounded(note.propensity, 0.0, 1.0)
        d.calibration_shift = _bounded(note.calibration_shift, -1.0, 1.0)
        d.exploration_offset = _bounded(note.exploration_offset, -1.0, 1.0)
        d.level_taken_back = _bounded(note.level_taken_back, -1.0, 1.0)
    _add_hints(g, hints)
    if predictions is not None:
        p = predictions
        add_insight = g.insights.add
        for pid, p_fail, p_quit, frustration, engagement, skill, why in zip(
            p.player_ids, p.p_fail, p.p_quit, p.frustration, p.engagement, p.skill, p.explanations, strict=True
        ):
            ins = add_insight(
                player_id=pid, p_fail=p_fail, p_quit=p_quit, frustration=frustration, engagement=engagement, skill=skill
            )
            for name, weight in why:
                ins.explanations.add(signal=name, weight=weight)
    names, values = knobs
    for name, value in zip(names, values, strict=True):
        g.knobs.add(name=name, value=value)
    g.processing_us = processing_us
    return resp


_NOTE_MAX_GAIN_S = 86_400.0  # a day of play: beyond any value horizon


def _bounded(value: float, lo: float, hi: float) -> float:
    """`value` clamped into [lo, hi]; one that is not a finite number counts as 0 (no claim)."""
    if not math.isfinite(value):
        value = 0.0
    return min(max(float(value), lo), hi)


def between(
    template: Response,
    sequence: int,
    values: list[float],
    *,
    fallback: bool,
    hints: Sequence[Hint] | None = None,
    processing_us: int = 0,
) -> Response:
    """A copy of a step's answer for a later frame: its knob values, and `hints` in place of the
    step's when given (NPCs came or went)."""
    resp = pb.SessionResponse()
    resp.CopyFrom(template)
    g = resp.guidance
    for knob, value in zip(g.knobs, values, strict=True):
        knob.value = value
    if hints is not None:
        del g.npc_hints[:]
        _add_hints(g, hints)
    g.sequence, g.fallback, g.processing_us = sequence, fallback, processing_us
    return resp


def between_parts(template: Response) -> tuple[bytes, bytes, tuple[bytes, ...]]:
    """A step's answer as the compiled lane splices it for the frames after it (sidecar/serving/
    between_lane.py): its Guidance fields 3-5 (hints, insights, model version) and 8-9 (policy, director
    note) serialized, and its knob names as UTF-8. The lane writes the rest (sequence, knobs, time taken,
    fallback) between them, in field order, as `between` and the serializer would."""
    g = template.guidance
    head = pb.Guidance(model_version=g.model_version)
    head.npc_hints.extend(g.npc_hints)
    head.insights.extend(g.insights)
    tail = pb.Guidance(policy=g.policy)
    if g.HasField("director"):
        tail.director.CopyFrom(g.director)
    return head.SerializeToString(), tail.SerializeToString(), tuple(k.name.encode() for k in g.knobs)


def _add_hints(g: pb.Guidance, hints: Sequence[Hint]) -> None:
    add_hint = g.npc_hints.add
    for npc_id, tactic, player_id, aggression in hints:
        add_hint(npc_id=npc_id, tactic=cast(Any, tactic), target_player_id=player_id, aggression=aggression)


# -- what observers read of a response (metrics, the dashboard): plain values, no messages ----------
def parse_response(data: bytes) -> Response:
    """A response from its bytes (an answer the compiled lane wrote, for an observer that samples it)."""
    return pb.SessionResponse.FromString(data)


def kind(resp: Response) -> str:
    """ "welcome", "guidance", "superseded", "error" or "goodbye"."""
    return resp.WhichOneof("kind") or ""


def processing_us(resp: Response) -> int:
    """A guidance's time in the sidecar, in microseconds (0 for other responses)."""
    return int(resp.guidance.processing_us) if resp.HasField("guidance") else 0


def error_of(resp: Response) -> tuple[ErrorCode, str]:
    """An error response's code and field."""
    return ErrorCode(resp.error.code), resp.error.field


@dataclass
class GuidanceView:
    knobs: dict[str, float]
    director: dict[str, float | str] | None  # the director note, rounded for people; None without one
    insight: dict[str, float] | None  # the first player's p_fail, p_quit, frustration, engagement, skill


def guidance_view(resp: Response) -> GuidanceView:
    g = resp.guidance
    director: dict[str, float | str] | None = None
    if g.HasField("director"):
        d = g.director
        director = {
            "managing": d.managing,
            "target_level": round(d.target_level, 3),
            "designer_level": round(d.designer_level, 3),
            "expected_gain_s": round(d.expected_gain_s, 1),
            "confidence": round(d.confidence, 2),
            "candidate": d.candidate,
            "level_taken_back": round(d.level_taken_back, 3),
        }
    insight = None
    if g.insights:
        i = g.insights[0]
        insight = {k: getattr(i, k) for k in ("p_fail", "p_quit", "frustration", "engagement", "skill")}
    return GuidanceView({k.name: k.value for k in g.knobs}, director, insight)
