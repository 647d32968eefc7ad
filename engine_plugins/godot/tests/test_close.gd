extends SceneTree
## The player closes the game's window mid-session: the addon says goodbye (the player left) and the
## app quits in the same frame, as Godot does on a close request. run_tests.py then checks that the
## sidecar's portfolio counted the session as ended by the player at once (without the goodbye it would
## still sit in its resume window when the sidecar stops, not ended at all).

var h: MetaBrainTestHarness = MetaBrainTestHarness.new()
var arena: Node = null


func _initialize() -> void:
	MetaBrainTestHarness.watchdog(self, 60.0)
	arena = MetaBrainTestHarness.add_arena(self)


func _physics_process(_delta: float) -> bool:
	var brain: MetaBrain = h.brain_open_for(arena, 60)  # a second of play first
	if brain == null:
		return false
	h.check(brain.stats["frames_sent"] > 0, "frames were sent before the window closed")
	root.propagate_notification(Node.NOTIFICATION_WM_CLOSE_REQUEST)
	h.check(brain.state == MetaBrain.State.ENDING, "the close request sent a goodbye")
	quit(h.finish())  # and the app goes at once, as with auto_accept_quit
	return true
