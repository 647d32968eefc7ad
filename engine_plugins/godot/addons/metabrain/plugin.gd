@tool
extends EditorPlugin
## Registers the project settings the MetaBrain node reads (the node type itself is `class_name MetaBrain`).
## Enabling the plugin registers them with their defaults (project.godot keeps only values a user changed);
## disabling it removes them, changed values included, so no `metabrain/` keys stay behind.

const SETTINGS: Array[Dictionary] = [
	{"name": "metabrain/network/address", "type": TYPE_STRING, "default": "127.0.0.1"},
	{"name": "metabrain/network/port", "type": TYPE_INT, "default": 50052},
	{"name": "metabrain/network/token", "type": TYPE_STRING, "default": ""},
	{"name": "metabrain/network/use_tls", "type": TYPE_BOOL, "default": false},
	{"name": "metabrain/telemetry/send_every_n_physics_ticks", "type": TYPE_INT, "default": 3},
]


func _enable_plugin() -> void:
	_register()


func _disable_plugin() -> void:
	for s: Dictionary in SETTINGS:
		ProjectSettings.set_setting(s["name"], null)  # null erases the key
	ProjectSettings.save()


func _enter_tree() -> void:
	# Every editor start: the keys' types and defaults (so the settings dialog shows and resets them).
	_register()


func _register() -> void:
	for s: Dictionary in SETTINGS:
		var key: String = s["name"]
		if not ProjectSettings.has_setting(key):
			ProjectSettings.set_setting(key, s["default"])
		ProjectSettings.set_initial_value(key, s["default"])
		ProjectSettings.add_property_info({"name": key, "type": s["type"]})
