class_name MetaBrainTestHarness
extends RefCounted
## Shared bits of the headless GDScript tests: arguments, checks, a watchdog, and the result line.

var failures: Array[String] = []
var checks: int = 0
var results: Dictionary = {}


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
