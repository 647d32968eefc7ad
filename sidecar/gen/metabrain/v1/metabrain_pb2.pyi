from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class Capability(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    CAPABILITY_UNSPECIFIED: _ClassVar[Capability]
    CAPABILITY_NPC_HINTS: _ClassVar[Capability]
    CAPABILITY_INSIGHT: _ClassVar[Capability]
    CAPABILITY_EXPLANATIONS: _ClassVar[Capability]
    CAPABILITY_RECORDING: _ClassVar[Capability]

class NpcTactic(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    NPC_TACTIC_UNSPECIFIED: _ClassVar[NpcTactic]
    NPC_TACTIC_HOLD: _ClassVar[NpcTactic]
    NPC_TACTIC_ADVANCE: _ClassVar[NpcTactic]
    NPC_TACTIC_FLANK: _ClassVar[NpcTactic]
    NPC_TACTIC_RETREAT: _ClassVar[NpcTactic]
    NPC_TACTIC_REGROUP: _ClassVar[NpcTactic]
    NPC_TACTIC_PRESSURE: _ClassVar[NpcTactic]

class NpcState(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    NPC_STATE_UNSPECIFIED: _ClassVar[NpcState]
    NPC_STATE_IDLE: _ClassVar[NpcState]
    NPC_STATE_PATROL: _ClassVar[NpcState]
    NPC_STATE_CHASE: _ClassVar[NpcState]
    NPC_STATE_ATTACK: _ClassVar[NpcState]
    NPC_STATE_FLEE: _ClassVar[NpcState]
    NPC_STATE_DEAD: _ClassVar[NpcState]

class EventType(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    EVENT_TYPE_UNSPECIFIED: _ClassVar[EventType]
    EVENT_TYPE_DAMAGE_TAKEN: _ClassVar[EventType]
    EVENT_TYPE_DAMAGE_DEALT: _ClassVar[EventType]
    EVENT_TYPE_KILL: _ClassVar[EventType]
    EVENT_TYPE_DEATH: _ClassVar[EventType]
    EVENT_TYPE_OBJECTIVE: _ClassVar[EventType]
    EVENT_TYPE_CHECKPOINT: _ClassVar[EventType]
    EVENT_TYPE_PAUSE: _ClassVar[EventType]
    EVENT_TYPE_RESUME: _ClassVar[EventType]
    EVENT_TYPE_QUIT: _ClassVar[EventType]
    EVENT_TYPE_SPAWN: _ClassVar[EventType]

class ErrorCode(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    ERROR_CODE_UNSPECIFIED: _ClassVar[ErrorCode]
    ERROR_CODE_INVALID_ARGUMENT: _ClassVar[ErrorCode]
    ERROR_CODE_FAILED_PRECONDITION: _ClassVar[ErrorCode]
    ERROR_CODE_UNSUPPORTED_VERSION: _ClassVar[ErrorCode]
    ERROR_CODE_LIMIT_EXCEEDED: _ClassVar[ErrorCode]
    ERROR_CODE_STALE_SEQUENCE: _ClassVar[ErrorCode]
    ERROR_CODE_RESUME_REJECTED: _ClassVar[ErrorCode]
    ERROR_CODE_UNAUTHENTICATED: _ClassVar[ErrorCode]
    ERROR_CODE_MODEL_UNAVAILABLE: _ClassVar[ErrorCode]
    ERROR_CODE_SHUTTING_DOWN: _ClassVar[ErrorCode]
    ERROR_CODE_MALFORMED: _ClassVar[ErrorCode]
    ERROR_CODE_IDLE_TIMEOUT: _ClassVar[ErrorCode]
    ERROR_CODE_INTERNAL: _ClassVar[ErrorCode]
    ERROR_CODE_RECORDING_FAILED: _ClassVar[ErrorCode]
CAPABILITY_UNSPECIFIED: Capability
CAPABILITY_NPC_HINTS: Capability
CAPABILITY_INSIGHT: Capability
CAPABILITY_EXPLANATIONS: Capability
CAPABILITY_RECORDING: Capability
NPC_TACTIC_UNSPECIFIED: NpcTactic
NPC_TACTIC_HOLD: NpcTactic
NPC_TACTIC_ADVANCE: NpcTactic
NPC_TACTIC_FLANK: NpcTactic
NPC_TACTIC_RETREAT: NpcTactic
NPC_TACTIC_REGROUP: NpcTactic
NPC_TACTIC_PRESSURE: NpcTactic
NPC_STATE_UNSPECIFIED: NpcState
NPC_STATE_IDLE: NpcState
NPC_STATE_PATROL: NpcState
NPC_STATE_CHASE: NpcState
NPC_STATE_ATTACK: NpcState
NPC_STATE_FLEE: NpcState
NPC_STATE_DEAD: NpcState
EVENT_TYPE_UNSPECIFIED: EventType
EVENT_TYPE_DAMAGE_TAKEN: EventType
EVENT_TYPE_DAMAGE_DEALT: EventType
EVENT_TYPE_KILL: EventType
EVENT_TYPE_DEATH: EventType
EVENT_TYPE_OBJECTIVE: EventType
EVENT_TYPE_CHECKPOINT: EventType
EVENT_TYPE_PAUSE: EventType
EVENT_TYPE_RESUME: EventType
EVENT_TYPE_QUIT: EventType
EVENT_TYPE_SPAWN: EventType
ERROR_CODE_UNSPECIFIED: ErrorCode
ERROR_CODE_INVALID_ARGUMENT: ErrorCode
ERROR_CODE_FAILED_PRECONDITION: ErrorCode
ERROR_CODE_UNSUPPORTED_VERSION: ErrorCode
ERROR_CODE_LIMIT_EXCEEDED: ErrorCode
ERROR_CODE_STALE_SEQUENCE: ErrorCode
ERROR_CODE_RESUME_REJECTED: ErrorCode
ERROR_CODE_UNAUTHENTICATED: ErrorCode
ERROR_CODE_MODEL_UNAVAILABLE: ErrorCode
ERROR_CODE_SHUTTING_DOWN: ErrorCode
ERROR_CODE_MALFORMED: ErrorCode
ERROR_CODE_IDLE_TIMEOUT: ErrorCode
ERROR_CODE_INTERNAL: ErrorCode
ERROR_CODE_RECORDING_FAILED: ErrorCode

class SessionRequest(_message.Message):
    __slots__ = ("hello", "frame", "goodbye")
    HELLO_FIELD_NUMBER: _ClassVar[int]
    FRAME_FIELD_NUMBER: _ClassVar[int]
    GOODBYE_FIELD_NUMBER: _ClassVar[int]
    hello: Hello
    frame: Frame
    goodbye: Goodbye
    def __init__(self, hello: _Optional[_Union[Hello, _Mapping]] = ..., frame: _Optional[_Union[Frame, _Mapping]] = ..., goodbye: _Optional[_Union[Goodbye, _Mapping]] = ...) -> None: ...

class SessionResponse(_message.Message):
    __slots__ = ("welcome", "guidance", "error", "superseded", "goodbye")
    WELCOME_FIELD_NUMBER: _ClassVar[int]
    GUIDANCE_FIELD_NUMBER: _ClassVar[int]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    SUPERSEDED_FIELD_NUMBER: _ClassVar[int]
    GOODBYE_FIELD_NUMBER: _ClassVar[int]
    welcome: Welcome
    guidance: Guidance
    error: Error
    superseded: Superseded
    goodbye: Goodbye
    def __init__(self, welcome: _Optional[_Union[Welcome, _Mapping]] = ..., guidance: _Optional[_Union[Guidance, _Mapping]] = ..., error: _Optional[_Union[Error, _Mapping]] = ..., superseded: _Optional[_Union[Superseded, _Mapping]] = ..., goodbye: _Optional[_Union[Goodbye, _Mapping]] = ...) -> None: ...

class KnobSpec(_message.Message):
    __slots__ = ("name", "min_value", "max_value", "default_value", "max_change_per_second", "higher_is_easier")
    NAME_FIELD_NUMBER: _ClassVar[int]
    MIN_VALUE_FIELD_NUMBER: _ClassVar[int]
    MAX_VALUE_FIELD_NUMBER: _ClassVar[int]
    DEFAULT_VALUE_FIELD_NUMBER: _ClassVar[int]
    MAX_CHANGE_PER_SECOND_FIELD_NUMBER: _ClassVar[int]
    HIGHER_IS_EASIER_FIELD_NUMBER: _ClassVar[int]
    name: str
    min_value: float
    max_value: float
    default_value: float
    max_change_per_second: float
    higher_is_easier: bool
    def __init__(self, name: _Optional[str] = ..., min_value: _Optional[float] = ..., max_value: _Optional[float] = ..., default_value: _Optional[float] = ..., max_change_per_second: _Optional[float] = ..., higher_is_easier: _Optional[bool] = ...) -> None: ...

class ChallengeTarget(_message.Message):
    __slots__ = ("p_fail_low", "p_fail_high")
    P_FAIL_LOW_FIELD_NUMBER: _ClassVar[int]
    P_FAIL_HIGH_FIELD_NUMBER: _ClassVar[int]
    p_fail_low: float
    p_fail_high: float
    def __init__(self, p_fail_low: _Optional[float] = ..., p_fail_high: _Optional[float] = ...) -> None: ...

class Hello(_message.Message):
    __slots__ = ("protocol_version", "game_id", "game_build", "knobs", "npc_tactics", "tick_rate_hz", "capabilities", "recording_consent", "resume_token", "policy", "target", "policy_params", "player_id", "experiment_arm")
    class PolicyParamsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    PROTOCOL_VERSION_FIELD_NUMBER: _ClassVar[int]
    GAME_ID_FIELD_NUMBER: _ClassVar[int]
    GAME_BUILD_FIELD_NUMBER: _ClassVar[int]
    KNOBS_FIELD_NUMBER: _ClassVar[int]
    NPC_TACTICS_FIELD_NUMBER: _ClassVar[int]
    TICK_RATE_HZ_FIELD_NUMBER: _ClassVar[int]
    CAPABILITIES_FIELD_NUMBER: _ClassVar[int]
    RECORDING_CONSENT_FIELD_NUMBER: _ClassVar[int]
    RESUME_TOKEN_FIELD_NUMBER: _ClassVar[int]
    POLICY_FIELD_NUMBER: _ClassVar[int]
    TARGET_FIELD_NUMBER: _ClassVar[int]
    POLICY_PARAMS_FIELD_NUMBER: _ClassVar[int]
    PLAYER_ID_FIELD_NUMBER: _ClassVar[int]
    EXPERIMENT_ARM_FIELD_NUMBER: _ClassVar[int]
    protocol_version: int
    game_id: str
    game_build: str
    knobs: _containers.RepeatedCompositeFieldContainer[KnobSpec]
    npc_tactics: _containers.RepeatedScalarFieldContainer[NpcTactic]
    tick_rate_hz: float
    capabilities: _containers.RepeatedScalarFieldContainer[Capability]
    recording_consent: bool
    resume_token: str
    policy: str
    target: ChallengeTarget
    policy_params: _containers.ScalarMap[str, str]
    player_id: str
    experiment_arm: str
    def __init__(self, protocol_version: _Optional[int] = ..., game_id: _Optional[str] = ..., game_build: _Optional[str] = ..., knobs: _Optional[_Iterable[_Union[KnobSpec, _Mapping]]] = ..., npc_tactics: _Optional[_Iterable[_Union[NpcTactic, str]]] = ..., tick_rate_hz: _Optional[float] = ..., capabilities: _Optional[_Iterable[_Union[Capability, str]]] = ..., recording_consent: _Optional[bool] = ..., resume_token: _Optional[str] = ..., policy: _Optional[str] = ..., target: _Optional[_Union[ChallengeTarget, _Mapping]] = ..., policy_params: _Optional[_Mapping[str, str]] = ..., player_id: _Optional[str] = ..., experiment_arm: _Optional[str] = ...) -> None: ...

class Welcome(_message.Message):
    __slots__ = ("session_id", "resume_token", "model_version", "capabilities", "protocol_version", "resumed", "state_reset", "policy", "last_sequence", "limits", "model_rate_hz", "experiment", "arm")
    SESSION_ID_FIELD_NUMBER: _ClassVar[int]
    RESUME_TOKEN_FIELD_NUMBER: _ClassVar[int]
    MODEL_VERSION_FIELD_NUMBER: _ClassVar[int]
    CAPABILITIES_FIELD_NUMBER: _ClassVar[int]
    PROTOCOL_VERSION_FIELD_NUMBER: _ClassVar[int]
    RESUMED_FIELD_NUMBER: _ClassVar[int]
    STATE_RESET_FIELD_NUMBER: _ClassVar[int]
    POLICY_FIELD_NUMBER: _ClassVar[int]
    LAST_SEQUENCE_FIELD_NUMBER: _ClassVar[int]
    LIMITS_FIELD_NUMBER: _ClassVar[int]
    MODEL_RATE_HZ_FIELD_NUMBER: _ClassVar[int]
    EXPERIMENT_FIELD_NUMBER: _ClassVar[int]
    ARM_FIELD_NUMBER: _ClassVar[int]
    session_id: str
    resume_token: str
    model_version: str
    capabilities: _containers.RepeatedScalarFieldContainer[Capability]
    protocol_version: int
    resumed: bool
    state_reset: bool
    policy: str
    last_sequence: int
    limits: Limits
    model_rate_hz: float
    experiment: str
    arm: str
    def __init__(self, session_id: _Optional[str] = ..., resume_token: _Optional[str] = ..., model_version: _Optional[str] = ..., capabilities: _Optional[_Iterable[_Union[Capability, str]]] = ..., protocol_version: _Optional[int] = ..., resumed: _Optional[bool] = ..., state_reset: _Optional[bool] = ..., policy: _Optional[str] = ..., last_sequence: _Optional[int] = ..., limits: _Optional[_Union[Limits, _Mapping]] = ..., model_rate_hz: _Optional[float] = ..., experiment: _Optional[str] = ..., arm: _Optional[str] = ...) -> None: ...

class Goodbye(_message.Message):
    __slots__ = ("reason", "cut_short")
    REASON_FIELD_NUMBER: _ClassVar[int]
    CUT_SHORT_FIELD_NUMBER: _ClassVar[int]
    reason: str
    cut_short: bool
    def __init__(self, reason: _Optional[str] = ..., cut_short: _Optional[bool] = ...) -> None: ...

class Limits(_message.Message):
    __slots__ = ("max_message_bytes", "max_players_per_frame", "max_npcs_per_frame", "max_events_per_frame", "max_knobs", "max_sessions", "resume_window_s", "idle_timeout_s", "max_frames_per_second", "max_string_bytes", "max_connections", "max_messages_per_second_per_connection", "hello_timeout_s", "max_connections_per_client", "max_pause_s")
    MAX_MESSAGE_BYTES_FIELD_NUMBER: _ClassVar[int]
    MAX_PLAYERS_PER_FRAME_FIELD_NUMBER: _ClassVar[int]
    MAX_NPCS_PER_FRAME_FIELD_NUMBER: _ClassVar[int]
    MAX_EVENTS_PER_FRAME_FIELD_NUMBER: _ClassVar[int]
    MAX_KNOBS_FIELD_NUMBER: _ClassVar[int]
    MAX_SESSIONS_FIELD_NUMBER: _ClassVar[int]
    RESUME_WINDOW_S_FIELD_NUMBER: _ClassVar[int]
    IDLE_TIMEOUT_S_FIELD_NUMBER: _ClassVar[int]
    MAX_FRAMES_PER_SECOND_FIELD_NUMBER: _ClassVar[int]
    MAX_STRING_BYTES_FIELD_NUMBER: _ClassVar[int]
    MAX_CONNECTIONS_FIELD_NUMBER: _ClassVar[int]
    MAX_MESSAGES_PER_SECOND_PER_CONNECTION_FIELD_NUMBER: _ClassVar[int]
    HELLO_TIMEOUT_S_FIELD_NUMBER: _ClassVar[int]
    MAX_CONNECTIONS_PER_CLIENT_FIELD_NUMBER: _ClassVar[int]
    MAX_PAUSE_S_FIELD_NUMBER: _ClassVar[int]
    max_message_bytes: int
    max_players_per_frame: int
    max_npcs_per_frame: int
    max_events_per_frame: int
    max_knobs: int
    max_sessions: int
    resume_window_s: float
    idle_timeout_s: float
    max_frames_per_second: float
    max_string_bytes: int
    max_connections: int
    max_messages_per_second_per_connection: float
    hello_timeout_s: float
    max_connections_per_client: int
    max_pause_s: float
    def __init__(self, max_message_bytes: _Optional[int] = ..., max_players_per_frame: _Optional[int] = ..., max_npcs_per_frame: _Optional[int] = ..., max_events_per_frame: _Optional[int] = ..., max_knobs: _Optional[int] = ..., max_sessions: _Optional[int] = ..., resume_window_s: _Optional[float] = ..., idle_timeout_s: _Optional[float] = ..., max_frames_per_second: _Optional[float] = ..., max_string_bytes: _Optional[int] = ..., max_connections: _Optional[int] = ..., max_messages_per_second_per_connection: _Optional[float] = ..., hello_timeout_s: _Optional[float] = ..., max_connections_per_client: _Optional[int] = ..., max_pause_s: _Optional[float] = ...) -> None: ...

class Vec3(_message.Message):
    __slots__ = ("x", "y", "z")
    X_FIELD_NUMBER: _ClassVar[int]
    Y_FIELD_NUMBER: _ClassVar[int]
    Z_FIELD_NUMBER: _ClassVar[int]
    x: float
    y: float
    z: float
    def __init__(self, x: _Optional[float] = ..., y: _Optional[float] = ..., z: _Optional[float] = ...) -> None: ...

class Quat(_message.Message):
    __slots__ = ("x", "y", "z", "w")
    X_FIELD_NUMBER: _ClassVar[int]
    Y_FIELD_NUMBER: _ClassVar[int]
    Z_FIELD_NUMBER: _ClassVar[int]
    W_FIELD_NUMBER: _ClassVar[int]
    x: float
    y: float
    z: float
    w: float
    def __init__(self, x: _Optional[float] = ..., y: _Optional[float] = ..., z: _Optional[float] = ..., w: _Optional[float] = ...) -> None: ...

class Pose(_message.Message):
    __slots__ = ("position", "rotation")
    POSITION_FIELD_NUMBER: _ClassVar[int]
    ROTATION_FIELD_NUMBER: _ClassVar[int]
    position: Vec3
    rotation: Quat
    def __init__(self, position: _Optional[_Union[Vec3, _Mapping]] = ..., rotation: _Optional[_Union[Quat, _Mapping]] = ...) -> None: ...

class VrPose(_message.Message):
    __slots__ = ("head", "left_hand", "right_hand")
    HEAD_FIELD_NUMBER: _ClassVar[int]
    LEFT_HAND_FIELD_NUMBER: _ClassVar[int]
    RIGHT_HAND_FIELD_NUMBER: _ClassVar[int]
    head: Pose
    left_hand: Pose
    right_hand: Pose
    def __init__(self, head: _Optional[_Union[Pose, _Mapping]] = ..., left_hand: _Optional[_Union[Pose, _Mapping]] = ..., right_hand: _Optional[_Union[Pose, _Mapping]] = ...) -> None: ...

class Biometrics(_message.Message):
    __slots__ = ("heart_rate_bpm", "skin_conductance_us")
    HEART_RATE_BPM_FIELD_NUMBER: _ClassVar[int]
    SKIN_CONDUCTANCE_US_FIELD_NUMBER: _ClassVar[int]
    heart_rate_bpm: float
    skin_conductance_us: float
    def __init__(self, heart_rate_bpm: _Optional[float] = ..., skin_conductance_us: _Optional[float] = ...) -> None: ...

class InputSummary(_message.Message):
    __slots__ = ("move_x", "move_y", "aim_x", "aim_y", "shots_fired", "shots_hit", "dodges", "actions_per_minute")
    MOVE_X_FIELD_NUMBER: _ClassVar[int]
    MOVE_Y_FIELD_NUMBER: _ClassVar[int]
    AIM_X_FIELD_NUMBER: _ClassVar[int]
    AIM_Y_FIELD_NUMBER: _ClassVar[int]
    SHOTS_FIRED_FIELD_NUMBER: _ClassVar[int]
    SHOTS_HIT_FIELD_NUMBER: _ClassVar[int]
    DODGES_FIELD_NUMBER: _ClassVar[int]
    ACTIONS_PER_MINUTE_FIELD_NUMBER: _ClassVar[int]
    move_x: float
    move_y: float
    aim_x: float
    aim_y: float
    shots_fired: int
    shots_hit: int
    dodges: int
    actions_per_minute: float
    def __init__(self, move_x: _Optional[float] = ..., move_y: _Optional[float] = ..., aim_x: _Optional[float] = ..., aim_y: _Optional[float] = ..., shots_fired: _Optional[int] = ..., shots_hit: _Optional[int] = ..., dodges: _Optional[int] = ..., actions_per_minute: _Optional[float] = ...) -> None: ...

class PlayerState(_message.Message):
    __slots__ = ("player_id", "position", "velocity", "health", "max_health", "input", "vr", "biometrics", "dead")
    PLAYER_ID_FIELD_NUMBER: _ClassVar[int]
    POSITION_FIELD_NUMBER: _ClassVar[int]
    VELOCITY_FIELD_NUMBER: _ClassVar[int]
    HEALTH_FIELD_NUMBER: _ClassVar[int]
    MAX_HEALTH_FIELD_NUMBER: _ClassVar[int]
    INPUT_FIELD_NUMBER: _ClassVar[int]
    VR_FIELD_NUMBER: _ClassVar[int]
    BIOMETRICS_FIELD_NUMBER: _ClassVar[int]
    DEAD_FIELD_NUMBER: _ClassVar[int]
    player_id: str
    position: Vec3
    velocity: Vec3
    health: float
    max_health: float
    input: InputSummary
    vr: VrPose
    biometrics: Biometrics
    dead: bool
    def __init__(self, player_id: _Optional[str] = ..., position: _Optional[_Union[Vec3, _Mapping]] = ..., velocity: _Optional[_Union[Vec3, _Mapping]] = ..., health: _Optional[float] = ..., max_health: _Optional[float] = ..., input: _Optional[_Union[InputSummary, _Mapping]] = ..., vr: _Optional[_Union[VrPose, _Mapping]] = ..., biometrics: _Optional[_Union[Biometrics, _Mapping]] = ..., dead: _Optional[bool] = ...) -> None: ...

class Npc(_message.Message):
    __slots__ = ("npc_id", "kind", "position", "health", "state", "target_player_id", "tactic")
    NPC_ID_FIELD_NUMBER: _ClassVar[int]
    KIND_FIELD_NUMBER: _ClassVar[int]
    POSITION_FIELD_NUMBER: _ClassVar[int]
    HEALTH_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    TARGET_PLAYER_ID_FIELD_NUMBER: _ClassVar[int]
    TACTIC_FIELD_NUMBER: _ClassVar[int]
    npc_id: int
    kind: str
    position: Vec3
    health: float
    state: NpcState
    target_player_id: str
    tactic: NpcTactic
    def __init__(self, npc_id: _Optional[int] = ..., kind: _Optional[str] = ..., position: _Optional[_Union[Vec3, _Mapping]] = ..., health: _Optional[float] = ..., state: _Optional[_Union[NpcState, str]] = ..., target_player_id: _Optional[str] = ..., tactic: _Optional[_Union[NpcTactic, str]] = ...) -> None: ...

class GameEvent(_message.Message):
    __slots__ = ("type", "player_id", "npc_id", "amount", "game_time")
    TYPE_FIELD_NUMBER: _ClassVar[int]
    PLAYER_ID_FIELD_NUMBER: _ClassVar[int]
    NPC_ID_FIELD_NUMBER: _ClassVar[int]
    AMOUNT_FIELD_NUMBER: _ClassVar[int]
    GAME_TIME_FIELD_NUMBER: _ClassVar[int]
    type: EventType
    player_id: str
    npc_id: int
    amount: float
    game_time: float
    def __init__(self, type: _Optional[_Union[EventType, str]] = ..., player_id: _Optional[str] = ..., npc_id: _Optional[int] = ..., amount: _Optional[float] = ..., game_time: _Optional[float] = ...) -> None: ...

class KnobValue(_message.Message):
    __slots__ = ("name", "value")
    NAME_FIELD_NUMBER: _ClassVar[int]
    VALUE_FIELD_NUMBER: _ClassVar[int]
    name: str
    value: float
    def __init__(self, name: _Optional[str] = ..., value: _Optional[float] = ...) -> None: ...

class Frame(_message.Message):
    __slots__ = ("sequence", "game_time", "players", "npcs", "events", "knobs", "player_table", "npc_table", "knob_values")
    SEQUENCE_FIELD_NUMBER: _ClassVar[int]
    GAME_TIME_FIELD_NUMBER: _ClassVar[int]
    PLAYERS_FIELD_NUMBER: _ClassVar[int]
    NPCS_FIELD_NUMBER: _ClassVar[int]
    EVENTS_FIELD_NUMBER: _ClassVar[int]
    KNOBS_FIELD_NUMBER: _ClassVar[int]
    PLAYER_TABLE_FIELD_NUMBER: _ClassVar[int]
    NPC_TABLE_FIELD_NUMBER: _ClassVar[int]
    KNOB_VALUES_FIELD_NUMBER: _ClassVar[int]
    sequence: int
    game_time: float
    players: _containers.RepeatedCompositeFieldContainer[PlayerState]
    npcs: _containers.RepeatedCompositeFieldContainer[Npc]
    events: _containers.RepeatedCompositeFieldContainer[GameEvent]
    knobs: _containers.RepeatedCompositeFieldContainer[KnobValue]
    player_table: PlayerTable
    npc_table: NpcTable
    knob_values: _containers.RepeatedScalarFieldContainer[float]
    def __init__(self, sequence: _Optional[int] = ..., game_time: _Optional[float] = ..., players: _Optional[_Iterable[_Union[PlayerState, _Mapping]]] = ..., npcs: _Optional[_Iterable[_Union[Npc, _Mapping]]] = ..., events: _Optional[_Iterable[_Union[GameEvent, _Mapping]]] = ..., knobs: _Optional[_Iterable[_Union[KnobValue, _Mapping]]] = ..., player_table: _Optional[_Union[PlayerTable, _Mapping]] = ..., npc_table: _Optional[_Union[NpcTable, _Mapping]] = ..., knob_values: _Optional[_Iterable[float]] = ...) -> None: ...

class PlayerTable(_message.Message):
    __slots__ = ("player_ids", "values", "columns")
    PLAYER_IDS_FIELD_NUMBER: _ClassVar[int]
    VALUES_FIELD_NUMBER: _ClassVar[int]
    COLUMNS_FIELD_NUMBER: _ClassVar[int]
    player_ids: _containers.RepeatedScalarFieldContainer[str]
    values: bytes
    columns: int
    def __init__(self, player_ids: _Optional[_Iterable[str]] = ..., values: _Optional[bytes] = ..., columns: _Optional[int] = ...) -> None: ...

class NpcTable(_message.Message):
    __slots__ = ("npc_ids", "values", "columns", "kinds")
    NPC_IDS_FIELD_NUMBER: _ClassVar[int]
    VALUES_FIELD_NUMBER: _ClassVar[int]
    COLUMNS_FIELD_NUMBER: _ClassVar[int]
    KINDS_FIELD_NUMBER: _ClassVar[int]
    npc_ids: bytes
    values: bytes
    columns: int
    kinds: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, npc_ids: _Optional[bytes] = ..., values: _Optional[bytes] = ..., columns: _Optional[int] = ..., kinds: _Optional[_Iterable[str]] = ...) -> None: ...

class NpcHint(_message.Message):
    __slots__ = ("npc_id", "tactic", "target_player_id", "aggression")
    NPC_ID_FIELD_NUMBER: _ClassVar[int]
    TACTIC_FIELD_NUMBER: _ClassVar[int]
    TARGET_PLAYER_ID_FIELD_NUMBER: _ClassVar[int]
    AGGRESSION_FIELD_NUMBER: _ClassVar[int]
    npc_id: int
    tactic: NpcTactic
    target_player_id: str
    aggression: float
    def __init__(self, npc_id: _Optional[int] = ..., tactic: _Optional[_Union[NpcTactic, str]] = ..., target_player_id: _Optional[str] = ..., aggression: _Optional[float] = ...) -> None: ...

class Explanation(_message.Message):
    __slots__ = ("signal", "weight")
    SIGNAL_FIELD_NUMBER: _ClassVar[int]
    WEIGHT_FIELD_NUMBER: _ClassVar[int]
    signal: str
    weight: float
    def __init__(self, signal: _Optional[str] = ..., weight: _Optional[float] = ...) -> None: ...

class PlayerInsight(_message.Message):
    __slots__ = ("player_id", "p_fail", "p_quit", "frustration", "engagement", "skill", "explanations")
    PLAYER_ID_FIELD_NUMBER: _ClassVar[int]
    P_FAIL_FIELD_NUMBER: _ClassVar[int]
    P_QUIT_FIELD_NUMBER: _ClassVar[int]
    FRUSTRATION_FIELD_NUMBER: _ClassVar[int]
    ENGAGEMENT_FIELD_NUMBER: _ClassVar[int]
    SKILL_FIELD_NUMBER: _ClassVar[int]
    EXPLANATIONS_FIELD_NUMBER: _ClassVar[int]
    player_id: str
    p_fail: float
    p_quit: float
    frustration: float
    engagement: float
    skill: float
    explanations: _containers.RepeatedCompositeFieldContainer[Explanation]
    def __init__(self, player_id: _Optional[str] = ..., p_fail: _Optional[float] = ..., p_quit: _Optional[float] = ..., frustration: _Optional[float] = ..., engagement: _Optional[float] = ..., skill: _Optional[float] = ..., explanations: _Optional[_Iterable[_Union[Explanation, _Mapping]]] = ...) -> None: ...

class Guidance(_message.Message):
    __slots__ = ("sequence", "knobs", "npc_hints", "insights", "model_version", "processing_us", "fallback", "policy", "director")
    SEQUENCE_FIELD_NUMBER: _ClassVar[int]
    KNOBS_FIELD_NUMBER: _ClassVar[int]
    NPC_HINTS_FIELD_NUMBER: _ClassVar[int]
    INSIGHTS_FIELD_NUMBER: _ClassVar[int]
    MODEL_VERSION_FIELD_NUMBER: _ClassVar[int]
    PROCESSING_US_FIELD_NUMBER: _ClassVar[int]
    FALLBACK_FIELD_NUMBER: _ClassVar[int]
    POLICY_FIELD_NUMBER: _ClassVar[int]
    DIRECTOR_FIELD_NUMBER: _ClassVar[int]
    sequence: int
    knobs: _containers.RepeatedCompositeFieldContainer[KnobValue]
    npc_hints: _containers.RepeatedCompositeFieldContainer[NpcHint]
    insights: _containers.RepeatedCompositeFieldContainer[PlayerInsight]
    model_version: str
    processing_us: int
    fallback: bool
    policy: str
    director: DirectorNote
    def __init__(self, sequence: _Optional[int] = ..., knobs: _Optional[_Iterable[_Union[KnobValue, _Mapping]]] = ..., npc_hints: _Optional[_Iterable[_Union[NpcHint, _Mapping]]] = ..., insights: _Optional[_Iterable[_Union[PlayerInsight, _Mapping]]] = ..., model_version: _Optional[str] = ..., processing_us: _Optional[int] = ..., fallback: _Optional[bool] = ..., policy: _Optional[str] = ..., director: _Optional[_Union[DirectorNote, _Mapping]] = ...) -> None: ...

class DirectorNote(_message.Message):
    __slots__ = ("managing", "target_level", "designer_level", "expected_gain_s", "confidence", "calibration_shift", "exploration_offset", "propensity", "candidate", "level_taken_back")
    MANAGING_FIELD_NUMBER: _ClassVar[int]
    TARGET_LEVEL_FIELD_NUMBER: _ClassVar[int]
    DESIGNER_LEVEL_FIELD_NUMBER: _ClassVar[int]
    EXPECTED_GAIN_S_FIELD_NUMBER: _ClassVar[int]
    CONFIDENCE_FIELD_NUMBER: _ClassVar[int]
    CALIBRATION_SHIFT_FIELD_NUMBER: _ClassVar[int]
    EXPLORATION_OFFSET_FIELD_NUMBER: _ClassVar[int]
    PROPENSITY_FIELD_NUMBER: _ClassVar[int]
    CANDIDATE_FIELD_NUMBER: _ClassVar[int]
    LEVEL_TAKEN_BACK_FIELD_NUMBER: _ClassVar[int]
    managing: str
    target_level: float
    designer_level: float
    expected_gain_s: float
    confidence: float
    calibration_shift: float
    exploration_offset: float
    propensity: float
    candidate: str
    level_taken_back: float
    def __init__(self, managing: _Optional[str] = ..., target_level: _Optional[float] = ..., designer_level: _Optional[float] = ..., expected_gain_s: _Optional[float] = ..., confidence: _Optional[float] = ..., calibration_shift: _Optional[float] = ..., exploration_offset: _Optional[float] = ..., propensity: _Optional[float] = ..., candidate: _Optional[str] = ..., level_taken_back: _Optional[float] = ...) -> None: ...

class Superseded(_message.Message):
    __slots__ = ("sequence", "by_sequence")
    SEQUENCE_FIELD_NUMBER: _ClassVar[int]
    BY_SEQUENCE_FIELD_NUMBER: _ClassVar[int]
    sequence: int
    by_sequence: int
    def __init__(self, sequence: _Optional[int] = ..., by_sequence: _Optional[int] = ...) -> None: ...

class Error(_message.Message):
    __slots__ = ("code", "message", "field", "sequence", "fatal")
    CODE_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    FIELD_FIELD_NUMBER: _ClassVar[int]
    SEQUENCE_FIELD_NUMBER: _ClassVar[int]
    FATAL_FIELD_NUMBER: _ClassVar[int]
    code: ErrorCode
    message: str
    field: str
    sequence: int
    fatal: bool
    def __init__(self, code: _Optional[_Union[ErrorCode, str]] = ..., message: _Optional[str] = ..., field: _Optional[str] = ..., sequence: _Optional[int] = ..., fatal: _Optional[bool] = ...) -> None: ...

class GetInfoRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class GetInfoResponse(_message.Message):
    __slots__ = ("model_version", "capabilities", "limits", "policies", "protocol_version", "device", "default_policy")
    MODEL_VERSION_FIELD_NUMBER: _ClassVar[int]
    CAPABILITIES_FIELD_NUMBER: _ClassVar[int]
    LIMITS_FIELD_NUMBER: _ClassVar[int]
    POLICIES_FIELD_NUMBER: _ClassVar[int]
    PROTOCOL_VERSION_FIELD_NUMBER: _ClassVar[int]
    DEVICE_FIELD_NUMBER: _ClassVar[int]
    DEFAULT_POLICY_FIELD_NUMBER: _ClassVar[int]
    model_version: str
    capabilities: _containers.RepeatedScalarFieldContainer[Capability]
    limits: Limits
    policies: _containers.RepeatedScalarFieldContainer[str]
    protocol_version: int
    device: str
    default_policy: str
    def __init__(self, model_version: _Optional[str] = ..., capabilities: _Optional[_Iterable[_Union[Capability, str]]] = ..., limits: _Optional[_Union[Limits, _Mapping]] = ..., policies: _Optional[_Iterable[str]] = ..., protocol_version: _Optional[int] = ..., device: _Optional[str] = ..., default_policy: _Optional[str] = ...) -> None: ...
