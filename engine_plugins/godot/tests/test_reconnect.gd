extends SceneTree
## The sidecar is killed and restarted mid-run (by run_tests.py, after this prints CONNECTED): the
## addon falls back to the designer's defaults, reconnects, resumes, and the game loop keeps its rate.

var h: MetaBrainTestHarness = MetaBrainTestHarness.new()
var arena: Node = null
var brain: MetaBrain = null
var started_ms: int = 0
var last_ms: int = 0
var worst_frame_ms: int = 0
var frames: int = 0
var frames_while_away: int = 0
var away_not_default: int = 0
var disconnects: int = 0
var reconnected_resumed: bool = false
var guidance_before: int = -1
var seconds: float = 16.0


func _initialize() -> void:
	MetaBrainTestHarness.watchdog(self, 60.0)
	seconds = float(MetaBrainTestHarness.arg("seconds", "16"))
	arena = (load("res://arena.tscn") as PackedScene).instantiate()
	root.add_child.call_deferred(arena)
	started_ms = Time.get_ticks_msec()
	last_ms = started_ms


func _on_connected(_session: String, resumed: bool) -> void:
	if disconnects == 0:
		print("CONNECTED")
	elif resumed:
		reconnected_resumed = true
		print("RESUMED")


func _on_disconnected(reason: String) -> void:
	disconnects += 1
	guidance_before = brain.stats["guidance"]
	print("DISCONNECTED ", reason)


func _physics_process(_delta: float) -> bool:
	if brain == null:
		brain = arena.get("brain")
		if brain == null:
			return false
		brain.reconnect_max_s = 1.0
		brain.connected.connect(_on_connected)
		brain.disconnected.connect(_on_disconnected)
	var now: int = Time.get_ticks_msec()
	if frames > 10:
		worst_frame_ms = maxi(worst_frame_ms, now - last_ms)
	last_ms = now
	frames += 1
	if disconnects > 0 and not brain.is_open():
		frames_while_away += 1
		for k: MetaBrainKnob in brain.knobs:
			if brain.knob(k.name) != k.default_value:
				away_not_default += 1
	if now - started_ms < int(seconds * 1000.0):
		return false
	var elapsed: float = (now - started_ms) / 1000.0
	h.results["frames"] = frames
	h.results["physics_fps"] = frames / elapsed
	h.results["worst_frame_ms"] = worst_frame_ms
	h.results["frames_while_away"] = frames_while_away
	h.results["stats"] = brain.stats
	var after: int = brain.stats["guidance"] - maxi(guidance_before, 0)
	h.results["guidance_after_reconnect"] = after
	h.check(disconnects >= 1, "the sidecar going away was noticed")
	var away_ok: bool = frames_while_away > 0 and away_not_default == 0
	h.check(away_ok, "designer defaults applied while away (%d frames away)" % frames_while_away)
	h.check(reconnected_resumed, "reconnected and resumed the session")
	h.check(after >= 10, "guidance again after the restart (%d)" % after)
	h.check(frames / elapsed > 55.0, "the game loop kept its physics rate (%.1f/s)" % (frames / elapsed))
	h.check(worst_frame_ms < 100, "no physics frame stalled (worst gap %d ms)" % worst_frame_ms)
	quit(h.finish())
	return true
