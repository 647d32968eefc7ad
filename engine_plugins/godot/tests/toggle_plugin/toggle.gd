@tool
extends EditorPlugin
## Test only (copied to res://addons/metabrain_toggle): turns the MetaBrain plugin on, changes a setting
## as a user would, records what the project holds, turns the plugin off again, and writes both states to
## res://toggle.json.

var _frames: int = 0
var _enabled_state: Dictionary = {}


func _process(_delta: float) -> void:
	_frames += 1
	if _frames == 5:
		EditorInterface.set_plugin_enabled("metabrain", true)
	elif _frames == 10:
		ProjectSettings.set_setting("metabrain/network/port", 50999)
		ProjectSettings.save()
		_enabled_state = _snapshot()
		EditorInterface.set_plugin_enabled("metabrain", false)
	elif _frames == 15:
		var out: Dictionary = {"enabled": _enabled_state, "disabled": _snapshot()}
		var f: FileAccess = FileAccess.open("res://toggle.json", FileAccess.WRITE)
		f.store_string(JSON.stringify(out))
		f.close()
		get_tree().quit()


func _snapshot() -> Dictionary:
	var cfg: ConfigFile = ConfigFile.new()
	cfg.load("res://project.godot")
	var keys: Array[String] = []
	if cfg.has_section("metabrain"):
		for k: String in cfg.get_section_keys("metabrain"):
			keys.append(k)
	return {
		"plugin_enabled": EditorInterface.is_plugin_enabled("metabrain"),
		"saved_keys": keys,
		"port_setting": ProjectSettings.has_setting("metabrain/network/port"),
	}
