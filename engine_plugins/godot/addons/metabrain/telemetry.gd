class_name MetaBrainTelemetry
extends RefCounted
## Builds telemetry frames from the nodes in the "metabrain_player" and "metabrain_npc" groups.
##
## A player node may expose `velocity`, `health`, `max_health` and `dead` properties (or metadata of
## those names), and `player_id` (default: the node name). An NPC node may expose `health` (0..1),
## `kind`, `npc_state`, `tactic` and `target_player_id`; its id is its `npc_id` property or metadata,
## else a stable id derived from its instance id.

const PLAYER_GROUP: StringName = &"metabrain_player"
const NPC_GROUP: StringName = &"metabrain_npc"


static func _prop(node: Node, key: StringName, fallback: Variant) -> Variant:
	# One property read (null when the node has no such property), then metadata, then the fallback.
	var v: Variant = node.get(key)
	if v != null:
		return v
	return node.get_meta(key, fallback)


static func _v3(v: Variant) -> Vector3:
	if v is Vector3:
		return v
	if v is Vector2:
		var v2: Vector2 = v
		return Vector3(v2.x, 0.0, v2.y)  # 2D games: the plane is x/z, y stays 0 (y is up)
	return Vector3.ZERO


static func _vec(v: Variant) -> MetaBrainProto.Vec3:
	var v3: Vector3 = _v3(v)
	var out: MetaBrainProto.Vec3 = MetaBrainProto.Vec3.new()
	out.x = v3.x
	out.y = v3.y
	out.z = v3.z
	return out


static func npc_id_of(node: Node) -> int:
	return int(_prop(node, "npc_id", node.get_instance_id() & 0x7FFFFFFF))


static func player_state(node: Node) -> MetaBrainProto.PlayerState:
	var p: MetaBrainProto.PlayerState = MetaBrainProto.PlayerState.new()
	p.player_id = str(_prop(node, "player_id", node.name))
	p.position = _vec(_prop(node, "global_position", Vector3.ZERO))
	p.velocity = _vec(_prop(node, "velocity", Vector3.ZERO))
	p.max_health = float(_prop(node, "max_health", 100.0))
	p.health = clampf(float(_prop(node, "health", p.max_health)), 0.0, p.max_health)
	p.dead = bool(_prop(node, "dead", false))
	return p


static func npc(node: Node) -> MetaBrainProto.Npc:
	var n: MetaBrainProto.Npc = MetaBrainProto.Npc.new()
	n.npc_id = npc_id_of(node)
	n.kind = str(_prop(node, "kind", ""))
	n.position = _vec(_prop(node, "global_position", Vector3.ZERO))
	n.health = clampf(float(_prop(node, "health", 1.0)), 0.0, 1.0)
	n.state = int(_prop(node, "npc_state", MetaBrainProto.NpcState.NPC_STATE_UNSPECIFIED))
	n.tactic = int(_prop(node, "tactic", MetaBrainProto.NpcTactic.NPC_TACTIC_UNSPECIFIED))
	n.target_player_id = str(_prop(node, "target_player_id", ""))
	return n


## Fills `frame` from the scene tree's groups, in the table form (MetaBrainFrameTables); returns the
## NPC nodes by id (for routing hints). player_state() and npc() build the row form instead.
static func collect(tree: SceneTree, frame: MetaBrainProto.Frame) -> Dictionary:
	var tables: MetaBrainFrameTables = MetaBrainFrameTables.new()
	for node: Node in tree.get_nodes_in_group(PLAYER_GROUP):
		var max_health: float = float(_prop(node, "max_health", 100.0))
		tables.add_player(
			str(_prop(node, "player_id", node.name)),
			_v3(_prop(node, "global_position", Vector3.ZERO)),
			_v3(_prop(node, "velocity", Vector3.ZERO)),
			clampf(float(_prop(node, "health", max_health)), 0.0, max_health),
			max_health,
			bool(_prop(node, "dead", false))
		)
	var by_id: Dictionary = {}
	for node: Node in tree.get_nodes_in_group(NPC_GROUP):
		var id: int = npc_id_of(node)
		tables.add_npc(
			id,
			_v3(_prop(node, "global_position", Vector3.ZERO)),
			clampf(float(_prop(node, "health", 1.0)), 0.0, 1.0),
			int(_prop(node, "npc_state", MetaBrainProto.NpcState.NPC_STATE_UNSPECIFIED)),
			int(_prop(node, "tactic", MetaBrainProto.NpcTactic.NPC_TACTIC_UNSPECIFIED)),
			str(_prop(node, "target_player_id", "")),
			str(_prop(node, "kind", ""))
		)
		by_id[id] = node
	if not tables.player_ids.is_empty():
		tables.write_to(frame)
	return by_id
