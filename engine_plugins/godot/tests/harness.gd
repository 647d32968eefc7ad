class_name MetaBrainTestHarness
extends RefCounted
## Shared bits of the headless GDScript tests: arguments, checks, a watchdog, and the result line.

var failures: Array[String] = []
var checks: int = 0
var results: Dictionary = {}
var _frames_open: int = 0


static func arg(key: String, fallback: String = "") -> String:
	for a: String in OS.get_cmdline_user_args():
		if a.begins_with("--" + key + "="):
			return a.substr(key.length() + 3)
	return fallback


func check(ok: bool, what: String) -> void:
	checks += 1
	if not ok:
		failures.append(what)
		printerr("FAIL: ", what)


## The demo arena (the tests' game), added to the tree at the end of this frame.
static func add_arena(tree: SceneTree) -> Node:
	var arena: Node = (load("res://demo/arena.tscn") as PackedScene).instantiate()
	tree.root.add_child.call_deferred(arena)
	return arena


## Called every physics frame: the arena's MetaBrain once its session has been open for `frames` of
## them, else null.
func brain_open_for(arena: Node, frames: int) -> MetaBrain:
	var brain: MetaBrain = arena.get("brain")
	if brain == null or not brain.is_open():
		return null
	_frames_open += 1
	return brain if _frames_open >= frames else null


## Prints `RESULT {json}` (read by run_tests.py) and the exit code to quit with.
func finish() -> int:
	results["checks"] = checks
	results["failures"] = failures
	print("RESULT ", JSON.stringify(results))
	return 0 if failures.is_empty() and checks > 0 else 1


## A GDScript runtime error hangs headless Godot instead of exiting: quit non-zero after `seconds`.
static func watchdog(tree: SceneTree, seconds: float) -> void:
	var timer: SceneTreeTimer = tree.create_timer(seconds, true, false, true)
	timer.timeout.connect(func() -> void:
		printerr("WATCHDOG: test did not finish within %.0f s" % seconds)
		tree.quit(3))
