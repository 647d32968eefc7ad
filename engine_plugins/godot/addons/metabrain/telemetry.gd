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


static func _vec(v: Variant) -> MetaBrainProto.Vec3:
	var out: MetaBrainProto.Vec3 = MetaBrainProto.Vec3.new()
	if v is Vector3:
		var v3: Vector3 = v
		out.x = v3.x
		out.y = v3.y
		out.z = v3.z
	elif v is Vector2:
		# 2D games: the plane is x/z, y stays 0 (the sidecar's convention is y up).
		var v2: Vector2 = v
		out.x = v2.x
		out.z = v2.y
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


## Fills `frame` from the scene tree's groups; returns the NPC nodes by id (for routing hints).
static func collect(tree: SceneTree, frame: MetaBrainProto.Frame) -> Dictionary:
	var by_id: Dictionary = {}
	for node: Node in tree.get_nodes_in_group(PLAYER_GROUP):
		frame.players.append(player_state(node))
	for node: Node in tree.get_nodes_in_group(NPC_GROUP):
		var n: MetaBrainProto.Npc = npc(node)
		frame.npcs.append(n)
		by_id[n.npc_id] = node
	return by_id
