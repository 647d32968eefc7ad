extends SceneTree
## The table form built in GDScript: from scene nodes (MetaBrainTelemetry.collect) and by hand
## (MetaBrainFrameTables). Decoded back here, and written out with the numbers put in, for the
## sidecar's own reader to check in Python (run_tests.py: check_tables).

var h: MetaBrainTestHarness = MetaBrainTestHarness.new()


var done: bool = false


func _initialize() -> void:
	MetaBrainTestHarness.watchdog(self, 60.0)


func _process(_delta: float) -> bool:
	# The first frame, not _initialize: nodes added then are not yet in the tree's groups.
	if done:
		return false
	done = true
	var out: Dictionary = {}
	out["scene"] = _from_scene()
	out["by_hand"] = _by_hand()
	var f: FileAccess = FileAccess.open(MetaBrainTestHarness.arg("out"), FileAccess.WRITE)
	f.store_string(JSON.stringify(out, "", true, true))  # full precision
	f.close()
	quit(h.finish())
	return true


func _node(parent: Node, pos: Vector3, meta: Dictionary, group: StringName) -> Node3D:
	var n: Node3D = Node3D.new()
	parent.add_child(n)
	n.global_position = pos
	for k: String in meta:
		n.set_meta(k, meta[k])
	n.add_to_group(group)
	return n


func _from_scene() -> Dictionary:
	var scene: Node3D = Node3D.new()
	root.add_child(scene)
	var pg: StringName = MetaBrainTelemetry.PLAYER_GROUP
	var ng: StringName = MetaBrainTelemetry.NPC_GROUP
	_node(scene, Vector3(1, 2, 3), {"player_id": "alice", "health": 75.0, "velocity": Vector3(0.5, 0, -1)}, pg)
	_node(scene, Vector3(-4, 0, 8), {"player_id": "bob", "dead": true, "max_health": 50.0, "health": 0.0}, pg)
	var st: int = MetaBrainProto.NpcState.NPC_STATE_ATTACK
	_node(scene, Vector3(10, 0, 10), {"npc_id": 7, "health": 0.5, "npc_state": st, "target_player_id": "bob"}, ng)
	var unnamed: Node3D = _node(scene, Vector3(0, 1, -2), {"kind": "sniper"}, ng)  # id from its instance id
	var frame: MetaBrainProto.Frame = MetaBrainProto.Frame.new()
	var by_id: Dictionary = MetaBrainTelemetry.collect(self, frame)
	h.check(frame.players.is_empty() and frame.npcs.is_empty(), "collect sends the table form, not rows")
	h.check(by_id.size() == 2 and by_id.get(7) != null, "collect returns the NPC nodes by id")
	h.check(by_id.has(MetaBrainTelemetry.npc_id_of(unnamed)), "an NPC without npc_id gets its instance-derived id")
	var ids: Array[String] = frame.player_table.player_ids
	var want: Array[String] = ["alice", "bob"]
	h.check(ids == want, "player ids in scene order: %s" % [ids])
	scene.queue_free()
	return _written(frame)


func _by_hand() -> Dictionary:
	var t: MetaBrainFrameTables = MetaBrainFrameTables.new()
	var row: int = t.add_player("p1", Vector3(1.5, 0, -2.25), Vector3(3, 0, 4), 90.0, 100.0, false, true)
	t.set_input(row, Vector2(0.25, -1), Vector2(0.5, 0.5), 4, 2, 1, 180.0)
	t.set_body(row, 72.0, 3.5)
	t.add_player("p2", Vector3(100, 5, 100), Vector3.ZERO, 10.0, 10.0)
	t.add_npc(3000000000, Vector3(2, 0, 2), 1.0, MetaBrainProto.NpcState.NPC_STATE_CHASE, 2, "p2", "grunt")
	t.add_npc(5, Vector3(-1, 0, 7), 0.25, MetaBrainProto.NpcState.NPC_STATE_FLEE, 4, "nobody")
	var frame: MetaBrainProto.Frame = MetaBrainProto.Frame.new()
	t.write_to(frame)
	return _written(frame)


## Encodes the frame, decodes it again, and returns both the bytes and the numbers read back.
func _written(frame: MetaBrainProto.Frame) -> Dictionary:
	frame.sequence = 1
	frame.game_time = 0.5
	var req: MetaBrainProto.SessionRequest = MetaBrainProto.SessionRequest.new()
	req.frame = frame
	var bytes: PackedByteArray = req.encode()
	var back: MetaBrainProto.SessionRequest = MetaBrainProto.SessionRequest.decode(bytes)
	h.check(back != null and back.frame.player_table != null, "the table frame decodes")
	if back == null or back.frame.player_table == null:
		return {}
	var pt: MetaBrainProto.PlayerTable = back.frame.player_table
	var players: PackedFloat32Array = pt.values.to_float32_array()
	h.check(pt.columns == MetaBrainFrameTables.PLAYER_COLUMNS, "player table columns")
	h.check(players.size() == pt.player_ids.size() * pt.columns, "player values: one row per id")
	var out: Dictionary = {"hex": bytes.hex_encode(), "player_ids": pt.player_ids, "players": Array(players)}
	var nt: MetaBrainProto.NpcTable = back.frame.npc_table
	if nt != null:
		var ids: PackedInt32Array = nt.npc_ids.to_int32_array()
		var uids: Array[int] = []
		for i: int in ids:
			uids.append(i & 0xFFFFFFFF)  # the bytes are uint32
		out["npc_ids"] = uids
		out["npcs"] = Array(nt.values.to_float32_array())
		out["kinds"] = nt.kinds
	return out
