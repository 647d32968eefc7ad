"""A validated Hello as the plain SessionSpec the rest of the sidecar works from."""

from __future__ import annotations

from sidecar.features import KnobSet
from sidecar.session import SessionSpec
from sidecar.wire.schema import pb

__all__ = ["spec_of"]


def spec_of(hello: pb.Hello) -> SessionSpec:
    return SessionSpec(
        knobs=KnobSet.from_specs(hello.knobs),
        capabilities=frozenset(hello.capabilities),
        game_id=hello.game_id,
        player_id=hello.player_id,
        policy=hello.policy,
        policy_params=dict(hello.policy_params),
        band=(hello.target.p_fail_low, hello.target.p_fail_high) if hello.HasField("target") else None,
        npc_tactics=frozenset(hello.npc_tactics),
        recording_consent=hello.recording_consent,
        resume_token=hello.resume_token,
        experiment_arm=hello.experiment_arm,
        wire=hello.SerializeToString(),
    )
