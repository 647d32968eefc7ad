extends SceneTree
## The sidecar is killed and restarted mid-run (by run_tests.py, after this prints CONNECTED): the
## addon eases back to the designer's defaults, no knob faster than its max_change_per_second, then
## reconnects, resumes, and the game loop keeps its rate. The session runs a static level of 1.0 (run
## with --metabrain-policy=static --metabrain-param=level=1.0), so the knobs are far from their
## defaults when the sidecar dies.

var h: MetaBrainTestHarness = MetaBrainTestHarness.new()
var arena: Node = null
var brain: MetaBrain = null
var started_ms: int = 0
var last_ms: int = 0
var worst_frame_ms: int = 0
var frames: int = 0
var frames_while_away: int = 0
var was_away: bool = false
var away_not_toward_default: int = 0
var too_fast: int = 0
var worst_rate_ratio: float = 0.0
var last_values: Dictionary = {}
var farthest_from_default_at_kill: float = 0.0
var disconnects: int = 0
var reconnected_resumed: bool = false
var guidance_before: int = -1
var seconds: float = 16.0


func _initialize() -> void:
	MetaBrainTestHarness.watchdog(self, 60.0)
	seconds = float(MetaBrainTestHarness.arg("seconds", "16"))
	arena = MetaBrainTestHarness.add_arena(self)
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
	for k: MetaBrainKnob in brain.knobs:
		var span: float = k.max_value - k.min_value
		farthest_from_default_at_kill = maxf(farthest_from_default_at_kill, absf(brain.knob(k.name) - k.default_value) / span)
	guidance_before = brain.stats["guidance"]
	print("DISCONNECTED ", reason)


func _physics_process(delta: float) -> bool:
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
	var away: bool = disconnects > 0 and not brain.is_open()
	if away:
		frames_while_away += 1
	for k: MetaBrainKnob in brain.knobs:
		var v: float = brain.knob(k.name)
		if last_values.has(k.name):
			var was: float = float(last_values[k.name])
			# Guidance is rate-limited in the frames' game time, one frame every few ticks, and arrives
			# a few ticks late: allow one frame interval and 50 ms of jitter; a fall back to the
			# defaults in one tick moves far more.
			var frame_s: float = delta * brain.send_every_n_physics_ticks
			var allowed: float = k.max_change_per_second * (frame_s + 0.05) + 1e-4
			worst_rate_ratio = maxf(worst_rate_ratio, absf(v - was) / allowed)
			if absf(v - was) > allowed:
				too_fast += 1
			# Between two ticks away: in the tick the close is noticed, a guidance that arrived with it
			# (read before the close, as it should be) may still have moved a knob since the tick before.
			if away and was_away and absf(v - k.default_value) > absf(was - k.default_value) + 1e-6:
				away_not_toward_default += 1
		last_values[k.name] = v
	was_away = away
	if now - started_ms < int(seconds * 1000.0):
		return false
	var elapsed: float = (now - started_ms) / 1000.0
	h.results["frames"] = frames
	h.results["physics_fps"] = frames / elapsed
	h.results["worst_frame_ms"] = worst_frame_ms
	h.results["frames_while_away"] = frames_while_away
	h.results["away_not_toward_default"] = away_not_toward_default
	h.results["stats"] = brain.stats
	var after: int = brain.stats["guidance"] - maxi(guidance_before, 0)
	h.results["guidance_after_reconnect"] = after
	h.check(disconnects >= 1, "the sidecar going away was noticed")
	h.results["worst_rate_ratio"] = worst_rate_ratio
	h.results["farthest_from_default_at_kill"] = farthest_from_default_at_kill
	var away_ok: bool = frames_while_away > 0 and away_not_toward_default == 0
	h.check(away_ok, "knobs went toward the designer's defaults while away (%d frames away)" % frames_while_away)
	h.check(farthest_from_default_at_kill > 0.2, "knobs were far from their defaults when the sidecar died")
	h.check(too_fast == 0, "no knob moved faster than its max_change_per_second (%d frames did)" % too_fast)
	h.check(reconnected_resumed, "reconnected and resumed the session")
	h.check(after >= 10, "guidance again after the restart (%d)" % after)
	h.check(frames / elapsed > 55.0, "the game loop kept its physics rate (%.1f/s)" % (frames / elapsed))
	h.check(worst_frame_ms < 100, "no physics frame stalled (worst gap %d ms)" % worst_frame_ms)
	quit(h.finish())
	return true
