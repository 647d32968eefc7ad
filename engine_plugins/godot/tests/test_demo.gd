extends SceneTree
## The demo arena against a real sidecar for 600 physics frames: guidance for (nearly) every frame
## sent, and the enemies' knob values move with it. Then the game ends the session cut short
## (stop(true)): the sidecar acknowledges, the node stays idle (run_tests.py checks that the sidecar's
## portfolio kept the session as cut short, not as a quit).

var h: MetaBrainTestHarness = MetaBrainTestHarness.new()
var arena: Node = null
var physics_frames: int = 0
var knob_changes: int = 0
var connected_at: int = -1
var target_frames: int = 600
var ending: bool = false
var end_reason: String = ""


func _initialize() -> void:
	MetaBrainTestHarness.watchdog(self, 90.0)
	target_frames = int(MetaBrainTestHarness.arg("frames", "600"))
	arena = MetaBrainTestHarness.add_arena(self)


func _physics_process(_delta: float) -> bool:
	var brain: MetaBrain = arena.get("brain")
	if brain == null:
		return false
	if ending:
		if brain.state == MetaBrain.State.IDLE:
			h.check(end_reason.contains("goodbye acknowledged"), "the sidecar acknowledged the goodbye (%s)" % end_reason)
			h.results["end_reason"] = end_reason
			quit(h.finish())
			return true
		return false
	if not brain.difficulty_changed.is_connected(_on_knob):
		brain.difficulty_changed.connect(_on_knob)
	if connected_at < 0:
		if brain.is_open():
			connected_at = physics_frames
		elif physics_frames > 600:
			h.check(false, "connected to the sidecar within 600 physics frames")
			quit(h.finish())
			return true
	physics_frames += 1
	if connected_at >= 0 and physics_frames - connected_at >= target_frames:
		_report(brain)  # then waits, in the `ending` branch above, for the session's end
	return false


func _on_knob(_knob: String, _value: float) -> void:
	knob_changes += 1


func _report(brain: MetaBrain) -> void:
	var sent: int = brain.stats["frames_sent"]
	var answered: int = brain.stats["guidance"] + brain.stats["superseded"] + brain.stats["stale_guidance"]
	h.results["physics_frames"] = physics_frames - connected_at
	h.results["stats"] = brain.stats
	h.results["knob_changes"] = knob_changes
	h.results["kills"] = arena.get("kills")
	h.results["deaths"] = arena.get("deaths")
	h.check(sent >= target_frames / 6 - 2, "sent a frame every 6 physics ticks (%d sent)" % sent)
	var guided: int = brain.stats["guidance"]
	h.check(guided >= int(0.9 * sent) - 2, "guidance for nearly every frame (%d of %d)" % [guided, sent])
	h.check(answered >= sent - 3, "every frame but the last few in flight answered (%d of %d)" % [answered, sent])
	h.check(knob_changes > 0, "knob values changed in response to guidance")
	h.check(brain.stats["errors"] == 0, "the sidecar refused no frame (%d errors)" % brain.stats["errors"])
	h.check(brain.last_guidance != null and not brain.last_guidance.model_version.is_empty(), "guidance names its model")
	brain.disconnected.connect(func(reason: String) -> void: end_reason = reason)
	brain.stop(true)
	h.check(brain.state == MetaBrain.State.ENDING, "stop(true) waits for the sidecar's acknowledgement")
	ending = true
