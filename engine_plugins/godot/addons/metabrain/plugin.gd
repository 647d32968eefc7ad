@tool
extends EditorPlugin
## Registers the project settings the MetaBrain node reads, and the node type itself.

const SETTINGS: Array[Dictionary] = [
	{"name": "metabrain/network/address", "type": TYPE_STRING, "default": "127.0.0.1"},
	{"name": "metabrain/network/port", "type": TYPE_INT, "default": 50052},
	{"name": "metabrain/network/token", "type": TYPE_STRING, "default": ""},
	{"name": "metabrain/network/use_tls", "type": TYPE_BOOL, "default": false},
	{"name": "metabrain/telemetry/send_every_n_physics_ticks", "type": TYPE_INT, "default": 1},
]


func _enter_tree() -> void:
	var added: bool = false
	for s: Dictionary in SETTINGS:
		var key: String = s["name"]
		if not ProjectSettings.has_setting(key):
			ProjectSettings.set_setting(key, s["default"])
			added = true
		ProjectSettings.set_initial_value(key, s["default"])
		ProjectSettings.add_property_info({"name": key, "type": s["type"]})
	if added:
		ProjectSettings.save()
	add_custom_type("MetaBrain", "Node", preload("metabrain_client.gd"), null)


func _exit_tree() -> void:
	remove_custom_type("MetaBrain")
