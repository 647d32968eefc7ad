extends SceneTree
## GDScript costs against a real sidecar: build (from nodes), encode and send one frame with a player
## and 16 NPCs, in the table form and in the row form; and lockstep round trips per second.

const PlayerScript: GDScript = preload("res://demo/player.gd")
const EnemyScript: GDScript = preload("res://demo/enemy.gd")

var h: MetaBrainTestHarness = MetaBrainTestHarness.new()
var brain: MetaBrain = null
var phase: int = 0


func _initialize() -> void:
	MetaBrainTestHarness.watchdog(self, 60.0)
	var p: Node2D = PlayerScript.new()
	root.add_child(p)
	for i: int in range(16):
		var e: Node2D = EnemyScript.new()
		e.set("npc_id", i + 1)
		e.position = Vector2(i, -i)
		root.add_child(e)
	brain = MetaBrain.new()
	brain.auto_collect = false
	brain.port = int(MetaBrainTestHarness.arg("port", "50052"))
	brain.knobs = [MetaBrainKnob.make("enemy_accuracy", 0.05, 0.65, 0.35, 0.1)]
	brain.policy = "static"
	root.add_child(brain)


func _build() -> MetaBrainProto.Frame:
	var frame: MetaBrainProto.Frame = MetaBrainProto.Frame.new()
	MetaBrainTelemetry.collect(self, frame)
	return frame


## The row form (a message per player and NPC): the baseline the table form is measured against.
func _build_rows() -> MetaBrainProto.Frame:
	var frame: MetaBrainProto.Frame = MetaBrainProto.Frame.new()
	for node: Node in get_nodes_in_group(MetaBrainTelemetry.PLAYER_GROUP):
		frame.players.append(MetaBrainTelemetry.player_state(node))
	for node: Node in get_nodes_in_group(MetaBrainTelemetry.NPC_GROUP):
		frame.npcs.append(MetaBrainTelemetry.npc(node))
	return frame


## Microseconds per frame to build (and with `encode`, to encode) a frame in either form.
func _time(n: int, rows: bool, encode: bool) -> float:
	var t0: int = Time.get_ticks_usec()
	for i: int in range(n):
		var frame: MetaBrainProto.Frame = _build_rows() if rows else _build()
		if encode:
			var req: MetaBrainProto.SessionRequest = MetaBrainProto.SessionRequest.new()
			req.frame = frame
			req.encode()
	return float(Time.get_ticks_usec() - t0) / n


func _process(_delta: float) -> bool:
	if not brain.is_open():
		return false
	# Build only, build + encode (no socket), in both forms; then build + encode + send (tables).
	var n: int = 2000
	var build_us: float = _time(n, false, false)
	var encode_us: float = _time(n, false, true)
	var rows_build_us: float = _time(n, true, false)
	var rows_encode_us: float = _time(n, true, true)
	var t0: int = Time.get_ticks_usec()
	var sent: int = 0
	for i: int in range(n):
		if brain.send_frame(_build()):
			sent += 1
		if i % 50 == 0:
			brain.poll()
	var send_us: float = float(Time.get_ticks_usec() - t0) / n
	# Drain, then lockstep round trips for 2 s.
	var drain_until: int = Time.get_ticks_msec() + 2000
	while Time.get_ticks_msec() < drain_until:
		brain.poll()
		OS.delay_usec(200)
	var trips: int = 0
	var start: int = Time.get_ticks_msec()
	while Time.get_ticks_msec() - start < 2000:
		var before: int = brain.stats["guidance"] + brain.stats["superseded"]
		brain.send_frame(_build())
		var wait_until: int = Time.get_ticks_msec() + 1000
		while brain.stats["guidance"] + brain.stats["superseded"] == before and Time.get_ticks_msec() < wait_until:
			brain.poll()
		trips += 1
	var rate: float = trips / ((Time.get_ticks_msec() - start) / 1000.0)
	h.results["build_us"] = build_us
	h.results["build_encode_us"] = encode_us
	h.results["rows_build_us"] = rows_build_us
	h.results["rows_build_encode_us"] = rows_encode_us
	h.results["rows_frame_bytes"] = _build_rows().encode().size() + 2
	h.results["build_encode_send_us"] = send_us
	h.results["frames_sent"] = sent
	h.results["round_trips_per_s"] = rate
	h.results["frame_bytes"] = _build().encode().size() + 2
	var line: String = "BENCH tables: build %.1f us, +encode %.1f us, +send %.1f us per frame (player + 16 NPCs, %d bytes)"
	print(line % [build_us, encode_us, send_us, h.results["frame_bytes"]], "; %.0f round trips/s" % rate)
	line = "BENCH rows (baseline): build %.1f us, +encode %.1f us (%d bytes); tables take %.2fx the time of rows"
	print(line % [rows_build_us, rows_encode_us, h.results["rows_frame_bytes"], encode_us / rows_encode_us])
	h.check(sent > 0 and rate > 0.0, "the benchmark ran against the sidecar")
	quit(h.finish())
	return true
