extends SceneTree
## Run inside an otherwise empty project with only the addon copied in and enabled.

var h: MetaBrainTestHarness = MetaBrainTestHarness.new()
var brain: MetaBrain = null


func _initialize() -> void:
	MetaBrainTestHarness.watchdog(self, 30.0)
	# Settings the plugin registers in the editor; a project that set them is honoured at run time.
	ProjectSettings.set_setting("metabrain/network/port", 50999)
	brain = MetaBrain.new()
	brain.autostart = false
	brain.knobs = [MetaBrainKnob.make("k", 0.0, 1.0, 0.25)]
	root.add_child.call_deferred(brain)


func _process(_delta: float) -> bool:
	if not brain.is_inside_tree():
		return false
	h.check(brain.knob("k") == 0.25, "designer defaults apply before any connection")
	h.check(brain.port == 50999 and brain.address == "127.0.0.1", "the node reads the project settings")
	h.check(MetaBrainProto.Frame.new().encode().is_empty(), "the generated codec loads")
	quit(h.finish())
	return true
