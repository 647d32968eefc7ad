class_name MetaBrainFrameTables
extends RefCounted
## Builds a frame's players and NPCs in the table form (Frame.player_table / npc_table): rows of
## float32 packed with one to_byte_array() call, instead of a message per player and per NPC (the
## sidecar reads them without per-field work too). Column order: proto/metabrain/v1/metabrain.proto.
##
##   var t := MetaBrainFrameTables.new()
##   t.add_player("p1", position, velocity, health, 100.0)
##   t.add_npc(7, enemy.global_position, 0.8, MetaBrainProto.NpcState.NPC_STATE_CHASE, 0, "p1")
##   t.write_to(frame)

const PLAYER_COLUMNS: int = 20
const NPC_COLUMNS: int = 7
const _INPUT_COLUMN: int = 9  # input.move_x; input and biometrics follow it

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
	_players.append_array(
		PackedFloat32Array(
			[
				position.x, position.y, position.z, velocity.x, velocity.y, velocity.z,
				health, max_health, 1.0 if dead else 0.0,
				0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0,
				1.0 if vr else 0.0,
			]
		)
	)
	return player_ids.size() - 1


## What the player did with the controls since the last frame (move and aim axes in [-1, 1]).
func set_input(
	row: int, move: Vector2, aim: Vector2, shots_fired: int, shots_hit: int, dodges: int, actions_per_minute: float
) -> void:
	var i: int = row * PLAYER_COLUMNS + _INPUT_COLUMN
	var values: Array[float] = [
		move.x, move.y, aim.x, aim.y, float(shots_fired), float(shots_hit), float(dodges), actions_per_minute
	]
	for v: float in values:
		_players[i] = v
		i += 1


## Body signals (0 = unknown), only when the player allowed them; they never leave the sidecar.
func set_body(row: int, heart_rate_bpm: float, skin_conductance_us: float) -> void:
	_players[row * PLAYER_COLUMNS + 17] = heart_rate_bpm
	_players[row * PLAYER_COLUMNS + 18] = skin_conductance_us


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
	_npcs.append_array(PackedFloat32Array([position.x, position.y, position.z, health, state, tactic, -1.0]))
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
			_npcs[i * NPC_COLUMNS + 6] = float(row_of.get(target, -1))  # -1: not a player of this frame
	var npcs: MetaBrainProto.NpcTable = MetaBrainProto.NpcTable.new()
	npcs.npc_ids = _npc_ids.to_byte_array()
	npcs.values = _npcs.to_byte_array()
	npcs.columns = NPC_COLUMNS
	if _any_kind:
		npcs.kinds = _kinds
	frame.npc_table = npcs
