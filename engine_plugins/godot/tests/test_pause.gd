extends SceneTree
## The player opens the pause menu and leaves the game paused for longer than the sidecar's idle
## timeout (run_tests.py starts this sidecar with --idle-timeout 2): the addon keeps its connection
## alive and tells the sidecar the game paused, so the same session goes on when the game resumes, with
## no reconnect and no second session; run_tests.py then checks the sidecar counted one session of this
## game, not a quit. Without it the paused session was closed as idle and counted as the player leaving.

const PAUSE_MS: int = 5000  # 2.5x the sidecar's idle timeout here

var h: MetaBrainTestHarness = MetaBrainTestHarness.new()
var arena: Node = null
var brain: MetaBrain = null
var session: String = ""
var frames_at_pause: int = 0
var paused_at_ms: int = -1
var resumed_frames: int = 0
var guidance_at_resume: int = 0


func _initialize() -> void:
	MetaBrainTestHarness.watchdog(self, 60.0)
	arena = MetaBrainTestHarness.add_arena(self)


func _physics_process(_delta: float) -> bool:
	if brain == null:
		_play_then_pause()
	elif paused:
		_wait_then_resume()
	elif _play_then_end():
		quit(h.finish())
		return true
	return false


func _play_then_pause() -> void:
	brain = h.brain_open_for(arena, 60)  # a second of play first
	if brain != null:
		session = brain.session_id
		paused = true  # the pause menu opens
		frames_at_pause = brain.stats["frames_sent"]
		paused_at_ms = Time.get_ticks_msec()


func _wait_then_resume() -> void:
	if Time.get_ticks_msec() - paused_at_ms < PAUSE_MS:
		return
	h.check(brain.is_paused(), "the node followed the tree's pause")
	h.check(brain.is_open(), "the connection is still open after the pause")
	var sent: int = brain.stats["frames_sent"] - frames_at_pause
	h.check(sent == 1, "one frame (the pause) was sent while paused, not %d" % sent)
	paused = false  # back to the game
	guidance_at_resume = brain.stats["guidance"]


## True once the session has ended (the sidecar acknowledged the goodbye).
func _play_then_end() -> bool:
	resumed_frames += 1
	if brain.state == MetaBrain.State.IDLE:
		return true
	if brain.state == MetaBrain.State.ENDING or resumed_frames < 60:
		return false
	h.check(not brain.is_paused(), "the node resumed with the tree")
	h.check(brain.session_id == session, "the same session went on (%s, then %s)" % [session, brain.session_id])
	h.check(brain.stats["connects"] == 1, "no reconnect: %d connects" % brain.stats["connects"])
	h.check(brain.stats["guidance"] > guidance_at_resume, "guidance arrived again after the pause")
	h.check(brain.stats["errors"] == 0, "no error from the sidecar: %d" % brain.stats["errors"])
	brain.stop(true)  # the level ends (cut short: not a quit); the frames after wait for the acknowledgement
	return false
