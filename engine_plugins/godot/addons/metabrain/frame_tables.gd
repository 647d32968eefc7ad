class_name MetaBrainFrameTables
extends RefCounted
## Builds a frame's players and NPCs in the table form (Frame.player_table / npc_table): rows of
## float32 packed with one to_byte_array() call, instead of a message per player and per NPC (the
## sidecar reads them without per-field work too). Columns by name from MetaBrainColumns (generated
## from sidecar/columns.py).
##
##   var t := MetaBrainFrameTables.new()
##   t.add_player("p1", position, velocity, health, 100.0)
##   t.add_npc(7, enemy.global_position, 0.8, MetaBrainProto.NpcState.NPC_STATE_CHASE, 0, "p1")
##   t.write_to(frame)

const C := preload("res://addons/metabrain/proto/metabrain_columns.gd")
const PLAYER_COLUMNS: int = C.PLAYER_COLUMNS
const NPC_COLUMNS: int = C.NPC_COLUMNS

var player_ids: Array[String] = []
var npc_count: int = 0
var _players: PackedFloat32Array = PackedFloat32Array()
var _npc_ids: PackedInt32Array = PackedInt32Array()  # bit-for-bit the uint32 ids (little-endian)
var _npcs: PackedFloat32Array = PackedFloat32Array()
var _npc_targets: Array[String] = []
var _kinds: Array[String] = []
var _any_kind: bool = false


## Adds a player's row; returns its row (for set_input and set_body).
func add_player(
	player_id: String,
	position: Vector3,
	velocity: Vector3,
	health: float,
	max_health: float,
	dead: bool = false,
	vr: bool = false
) -> int:
	player_ids.append(player_id)
	var i: int = _players.size()
	_players.resize(i + PLAYER_COLUMNS)
	for c: int in range(PLAYER_COLUMNS):
		_players[i + c] = 0.0
	_players[i + C.PLAYER_POSITION_X] = position.x
	_players[i + C.PLAYER_POSITION_Y] = position.y
	_players[i + C.PLAYER_POSITION_Z] = position.z
	_players[i + C.PLAYER_VELOCITY_X] = velocity.x
	_players[i + C.PLAYER_VELOCITY_Y] = velocity.y
	_players[i + C.PLAYER_VELOCITY_Z] = velocity.z
	_players[i + C.PLAYER_HEALTH] = health
	_players[i + C.PLAYER_MAX_HEALTH] = max_health
	_players[i + C.PLAYER_DEAD] = 1.0 if dead else 0.0
	_players[i + C.PLAYER_VR] = 1.0 if vr else 0.0
	return player_ids.size() - 1


## What the player did with the controls since the last frame (move and aim axes in [-1, 1]).
func set_input(
	row: int, move: Vector2, aim: Vector2, shots_fired: int, shots_hit: int, dodges: int, actions_per_minute: float
) -> void:
	var i: int = row * PLAYER_COLUMNS
	_players[i + C.PLAYER_INPUT_MOVE_X] = move.x
	_players[i + C.PLAYER_INPUT_MOVE_Y] = move.y
	_players[i + C.PLAYER_INPUT_AIM_X] = aim.x
	_players[i + C.PLAYER_INPUT_AIM_Y] = aim.y
	_players[i + C.PLAYER_INPUT_SHOTS_FIRED] = float(shots_fired)
	_players[i + C.PLAYER_INPUT_SHOTS_HIT] = float(shots_hit)
	_players[i + C.PLAYER_INPUT_DODGES] = float(dodges)
	_players[i + C.PLAYER_INPUT_ACTIONS_PER_MINUTE] = actions_per_minute


## Body signals (0 = unknown), only when the player allowed them; they never leave the sidecar.
func set_body(row: int, heart_rate_bpm: float, skin_conductance_us: float) -> void:
	_players[row * PLAYER_COLUMNS + C.PLAYER_BIOMETRICS_HEART_RATE_BPM] = heart_rate_bpm
	_players[row * PLAYER_COLUMNS + C.PLAYER_BIOMETRICS_SKIN_CONDUCTANCE_US] = skin_conductance_us


## Adds an NPC's row. `target_player_id` names a player of this frame ("" for none).
func add_npc(
	npc_id: int,
	position: Vector3,
	health: float,
	state: int,
	tactic: int,
	target_player_id: String = "",
	kind: String = ""
) -> void:
	_npc_ids.append(npc_id)
	var i: int = _npcs.size()
	_npcs.resize(i + NPC_COLUMNS)
	_npcs[i + C.NPC_POSITION_X] = position.x
	_npcs[i + C.NPC_POSITION_Y] = position.y
	_npcs[i + C.NPC_POSITION_Z] = position.z
	_npcs[i + C.NPC_HEALTH] = health
	_npcs[i + C.NPC_STATE] = state
	_npcs[i + C.NPC_TACTIC] = tactic
	_npcs[i + C.NPC_TARGET] = -1.0
	_npc_targets.append(target_player_id)
	_kinds.append(kind)
	_any_kind = _any_kind or not kind.is_empty()
	npc_count += 1


## Sets frame.player_table and (with NPCs) frame.npc_table.
func write_to(frame: MetaBrainProto.Frame) -> void:
	var players: MetaBrainProto.PlayerTable = MetaBrainProto.PlayerTable.new()
	players.player_ids = player_ids
	players.values = _players.to_byte_array()
	players.columns = PLAYER_COLUMNS
	frame.player_table = players
	if npc_count == 0:
		return
	var row_of: Dictionary = {}
	for i: int in range(player_ids.size()):
		row_of[player_ids[i]] = i
	for i: int in range(npc_count):
		var target: String = _npc_targets[i]
		if not target.is_empty():
			_npcs[i * NPC_COLUMNS + C.NPC_TARGET] = float(row_of.get(target, -1))  # -1: not a player of this frame
	var npcs: MetaBrainProto.NpcTable = MetaBrainProto.NpcTable.new()
	npcs.npc_ids = _npc_ids.to_byte_array()
	npcs.values = _npcs.to_byte_array()
	npcs.columns = NPC_COLUMNS
	if _any_kind:
		npcs.kinds = _kinds
	frame.npc_table = npcs
