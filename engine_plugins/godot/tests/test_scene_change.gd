extends SceneTree
## The game changes scenes mid-session: the level holding the MetaBrain node leaves the tree and is
## freed, and the game goes on without it. The addon says goodbye as it leaves (the player left), so
## run_tests.py finds the sidecar's portfolio counted the session as ended at once, not 30 s later when
## its resume window would close.

var h: MetaBrainTestHarness = MetaBrainTestHarness.new()
var arena: Node = null
var frames_after: int = 0


func _initialize() -> void:
	MetaBrainTestHarness.watchdog(self, 60.0)
	arena = MetaBrainTestHarness.add_arena(self)


func _physics_process(_delta: float) -> bool:
	if arena != null:
		var brain: MetaBrain = h.brain_open_for(arena, 60)  # a second of play first
		if brain == null:
			return false
		h.check(brain.stats["frames_sent"] > 0, "frames were sent before the scene changed")
		root.remove_child(arena)  # what change_scene_to_* does to the level it leaves
		h.check(brain.state == MetaBrain.State.ENDING, "leaving the tree sent a goodbye")
		arena.queue_free()
		arena = null
		return false
	frames_after += 1  # the game plays on in its next scene for a moment
	if frames_after < 30:
		return false
	quit(h.finish())
	return true
