extends SceneTree
## Shared vectors both ways: Python bytes -> GDScript decode -> identical bytes; GDScript-built
## messages -> the same bytes as Python; and every re-encoding written out for Python to parse.

var h: MetaBrainTestHarness = MetaBrainTestHarness.new()


func _decode(type_name: String, bytes: PackedByteArray) -> Object:
	match type_name:
		"metabrain.testdata.AllTypes":
			return CodecTestProto.AllTypes.decode(bytes)
		"metabrain.v1.SessionRequest":
			return MetaBrainProto.SessionRequest.decode(bytes)
		"metabrain.v1.SessionResponse":
			return MetaBrainProto.SessionResponse.decode(bytes)
	return null


func _frame_like_python() -> MetaBrainProto.SessionRequest:
	var f: MetaBrainProto.Frame = MetaBrainProto.Frame.new()
	f.sequence = (1 << 40) + 3
	f.game_time = 12.5
	var p: MetaBrainProto.PlayerState = MetaBrainProto.PlayerState.new()
	p.player_id = "p1"
	p.health = 80.0
	p.max_health = 100.0
	p.position = MetaBrainProto.Vec3.new()
	p.position.x = 1.0
	p.position.y = -0.0
	p.position.z = 3.5
	p.input = MetaBrainProto.InputSummary.new()
	p.input.shots_fired = 3
	p.input.move_x = -1.0
	p.input.actions_per_minute = 120.0
	p.vr = MetaBrainProto.VrPose.new()
	p.vr.head = MetaBrainProto.Pose.new()
	p.vr.head.position = MetaBrainProto.Vec3.new()
	p.vr.head.position.y = 1.7
	p.vr.head.rotation = MetaBrainProto.Quat.new()
	p.vr.head.rotation.w = 1.0
	p.biometrics = MetaBrainProto.Biometrics.new()
	p.biometrics.heart_rate_bpm = 92.0
	f.players.append(p)
	for i: int in range(16):
		var n: MetaBrainProto.Npc = MetaBrainProto.Npc.new()
		n.npc_id = i + 1
		n.kind = "grunt"
		n.health = 0.5
		n.state = MetaBrainProto.NpcState.NPC_STATE_ATTACK
		n.target_player_id = "p1"
		n.tactic = MetaBrainProto.NpcTactic.NPC_TACTIC_FLANK
		n.position = MetaBrainProto.Vec3.new()
		n.position.x = float(i)
		n.position.z = -float(i)
		f.npcs.append(n)
	var e: MetaBrainProto.GameEvent = MetaBrainProto.GameEvent.new()
	e.type = MetaBrainProto.EventType.EVENT_TYPE_DAMAGE_TAKEN
	e.player_id = "p1"
	e.npc_id = 3
	e.amount = 12.0
	e.game_time = 12.4
	f.events.append(e)
	var kv: MetaBrainProto.KnobValue = MetaBrainProto.KnobValue.new()
	kv.name = "enemy_accuracy"
	kv.value = 0.35
	f.knobs.append(kv)
	var req: MetaBrainProto.SessionRequest = MetaBrainProto.SessionRequest.new()
	req.frame = f
	return req


func _edges_like_python() -> CodecTestProto.AllTypes:
	var a: CodecTestProto.AllTypes = CodecTestProto.AllTypes.new()
	a.f_double = -0.0
	a.f_float = -INF
	a.f_int64 = -9223372036854775807 - 1
	a.f_uint64 = -1  # 2^64 - 1 as a 64-bit pattern
	a.f_int32 = -2147483648
	a.f_fixed64 = -1
	a.f_fixed32 = 4294967295
	a.f_uint32 = 4294967295
	a.f_sfixed32 = -2147483648
	a.f_sfixed64 = -9223372036854775807 - 1
	a.f_sint32 = -2147483648
	a.f_sint64 = -9223372036854775807 - 1
	a.choice_number = -1
	return a


func _init() -> void:
	MetaBrainTestHarness.watchdog(self, 60.0)
	var vectors: Array = JSON.parse_string(FileAccess.get_file_as_string(MetaBrainTestHarness.arg("vectors")))
	var out: Dictionary = {}
	var by_name: Dictionary = {}
	for v: Dictionary in vectors:
		var bytes: PackedByteArray = str(v["hex"]).hex_decode()
		var msg: Object = _decode(str(v["type"]), bytes)
		h.check(msg != null, "%s decodes" % v["name"])
		if msg == null:
			continue
		var again: PackedByteArray = msg.call("encode")
		# "canonical": what Python's protobuf writes for bytes that are not canonical (merged, unknown kept).
		# "canonical_godot": the same with U+0000 read as U+FFFD (a Godot String cannot hold U+0000).
		var want: String = str(v.get("canonical_godot", v.get("canonical", v["hex"])))
		h.check(again.hex_encode() == want, "%s re-encodes as Python does" % v["name"])
		out[v["name"]] = again.hex_encode()
		by_name[v["name"]] = str(v["hex"])
	# --roundtrip-only=1: vectors from elsewhere (protobufjs), without the named cases below.
	if MetaBrainTestHarness.arg("roundtrip-only") != "1":
		_named_checks(by_name)
	var file: FileAccess = FileAccess.open(MetaBrainTestHarness.arg("out"), FileAccess.WRITE)
	file.store_string(JSON.stringify(out))
	file.close()
	h.results["vectors"] = vectors.size()
	quit(h.finish())


## The named shared vectors' values, and messages built in GDScript compared with Python's bytes.
func _named_checks(by_name: Dictionary) -> void:
	# Built in GDScript, compared with Python's bytes.
	var frame_hex: String = _frame_like_python().encode().hex_encode()
	h.check(frame_hex == by_name.get("frame_with_16_npcs", ""), "GDScript-built frame == Python bytes")
	var edges_hex: String = _edges_like_python().encode().hex_encode()
	h.check(edges_hex == by_name.get("all_types_edges", ""), "GDScript-built edge values == Python bytes")
	var typical_bytes: PackedByteArray = str(by_name.get("all_types_typical", "")).hex_decode()
	var typical: CodecTestProto.AllTypes = CodecTestProto.AllTypes.decode(typical_bytes)
	h.check(typical != null and typical.f_string == "héllo ✓" and typical.f_sint32 == -300, "typical values decode")
	var choice_ok: bool = typical != null and typical.which_choice() == "choice_text"
	h.check(choice_ok and typical.tags.get("k", "") == "v", "oneof and map decode")
	# Unknown fields are skipped: a Vec3 followed by an unknown varint field 99 and an unknown fixed64.
	var unknown: PackedByteArray = "0d0000c03f980605a101080808080808080815000020c0".hex_decode()
	var vec: MetaBrainProto.Vec3 = MetaBrainProto.Vec3.decode(unknown)
	h.check(vec != null and vec.x == 1.5 and vec.z == 0.0 and vec.y == -2.5, "unknown fields are skipped")
	h.check(MetaBrainProto.Frame.decode("0a".hex_decode()) == null, "truncated input is refused")
	var nul: CodecTestProto.AllTypes = CodecTestProto.AllTypes.decode(str(by_name["nul_in_strings"]).hex_decode())
	var nul_ok: bool = nul != null and nul.f_string.length() == 3 and nul.f_string.unicode_at(1) == 0xFFFD
	h.check(nul_ok and nul.f_string.ends_with("b"), "U+0000 inside a string: U+FFFD, and the rest kept")
	var merged_bytes: PackedByteArray = str(by_name["merge_singular_submessages"]).hex_decode()
	var merged: MetaBrainProto.SessionRequest = MetaBrainProto.SessionRequest.decode(merged_bytes)
	var target: MetaBrainProto.ChallengeTarget = merged.hello.target if merged != null and merged.hello != null else null
	var merged_ok: bool = target != null and merged.hello.game_id == "g"
	h.check(merged_ok and target.p_fail_low > 0.19 and target.p_fail_high > 0.39, "a sub-message seen twice is merged")
	var grouped: CodecTestProto.AllTypes = CodecTestProto.AllTypes.decode(str(by_name["unknown_fields_kept"]).hex_decode())
	h.check(grouped != null and grouped.f_int32 == 5, "a group is skipped and the fields after it read")
