extends Node2D
## The demo arena: one player against waves of enemies. The MetaBrain node streams telemetry every
## few physics ticks; enemy accuracy, damage, speed and spawn rate follow the director's knobs, and
## each enemy follows its NPC hint. Runs headless with an autopilot player for tests.

const PlayerScript: GDScript = preload("res://demo/player.gd")
const EnemyScript: GDScript = preload("res://demo/enemy.gd")
const MAX_ENEMIES: int = 8

var brain: MetaBrain
var player: Node2D
var rng: RandomNumberGenerator = RandomNumberGenerator.new()
var now: float = 0.0
var kills: int = 0
var deaths: int = 0
var _next_id: int = 1


func _ready() -> void:
	rng.seed = 7
	brain = MetaBrain.new()
	brain.name = "MetaBrain"
	brain.game_id = "metabrain.godot.demo"
	brain.game_build = "0.1.0"
	brain.knobs = [
		MetaBrainKnob.make("enemy_accuracy", 0.05, 0.65, 0.35, 0.1),
		MetaBrainKnob.make("enemy_damage", 3.0, 16.0, 9.5, 2.5),
		MetaBrainKnob.make("enemy_speed", 1.5, 5.5, 3.5, 0.7),
		MetaBrainKnob.make("spawn_rate", 0.08, 0.7, 0.39, 0.1),
	]
	brain.npc_hint.connect(_on_npc_hint)
	for arg: String in OS.get_cmdline_user_args():
		if arg.begins_with("--metabrain-port="):
			brain.port = int(arg.get_slice("=", 1))
		elif arg.begins_with("--metabrain-game="):
			brain.game_id = arg.get_slice("=", 1)
		elif arg.begins_with("--metabrain-policy="):
			brain.policy = arg.get_slice("=", 1)
		elif arg.begins_with("--metabrain-param="):  # --metabrain-param=level=0.9
			var kv: String = arg.substr(arg.find("=") + 1)
			brain.policy_params[kv.get_slice("=", 0)] = kv.get_slice("=", 1)
	add_child(brain)
	player = PlayerScript.new()
	player.name = "Player"
	player.autopilot = DisplayServer.get_name() == "headless" or "--autopilot" in OS.get_cmdline_user_args()
	add_child(player)


func _on_npc_hint(npc: Node, tactic: int, _target: String, aggression: float) -> void:
	npc.set("tactic", tactic)
	npc.set("aggression", aggression)


func nearest_enemy(from: Vector2) -> Node2D:
	var best: Node2D = null
	var best_d: float = INF
	for e: Node2D in get_tree().get_nodes_in_group(MetaBrainTelemetry.NPC_GROUP):
		var d: float = from.distance_squared_to(e.position)
		if d < best_d:
			best = e
			best_d = d
	return best


func player_shot(target: Node2D, hit: bool) -> void:
	if not hit:
		return
	var health: float = float(target.get("health")) - 0.34
	target.set("health", health)
	brain.report_event(MetaBrainProto.EventType.EVENT_TYPE_DAMAGE_DEALT, "p1", int(target.get("npc_id")), 34.0)
	if health <= 0.0:
		kills += 1
		brain.report_event(MetaBrainProto.EventType.EVENT_TYPE_KILL, "p1", int(target.get("npc_id")))
		target.remove_from_group(MetaBrainTelemetry.NPC_GROUP)
		target.queue_free()


func _physics_process(delta: float) -> void:
	now += delta
	player.act(self, delta, rng, now)
	var enemies: Array[Node] = get_tree().get_nodes_in_group(MetaBrainTelemetry.NPC_GROUP)
	if enemies.size() < MAX_ENEMIES and rng.randf() < brain.knob("spawn_rate") * delta:
		_spawn()
	var centroid: Vector2 = Vector2.ZERO
	for e: Node2D in enemies:
		centroid += e.position / float(maxi(enemies.size(), 1))
	var accuracy: float = brain.knob("enemy_accuracy")
	for e: Node2D in enemies:
		e.act(player, centroid, brain.knob("enemy_speed"), delta)
		var d: float = e.position.distance_to(player.position)
		if d <= 16.0 and float(e.get("cooldown")) <= 0.0 and not bool(player.get("dead")):
			e.set("cooldown", rng.randf_range(0.8, 1.2) * (1.25 - 0.5 * float(e.get("aggression"))))
			if rng.randf() < accuracy * (1.0 - d / 25.6):
				_player_hurt(brain.knob("enemy_damage"), int(e.get("npc_id")))
	queue_redraw()


func _spawn() -> void:
	var e: Node2D = EnemyScript.new()
	e.set("npc_id", _next_id)
	e.set("flank_sign", -1.0 if rng.randf() < 0.5 else 1.0)
	var u: float = rng.randf_range(-20.0, 20.0)
	var side: int = rng.randi_range(0, 3)
	e.position = [Vector2(u, -20), Vector2(u, 20), Vector2(-20, u), Vector2(20, u)][side]
	_next_id += 1
	add_child(e)


func _player_hurt(amount: float, npc_id: int) -> void:
	brain.report_event(MetaBrainProto.EventType.EVENT_TYPE_DAMAGE_TAKEN, "p1", npc_id, amount)
	if player.hurt(amount, now):
		deaths += 1
		brain.report_event(MetaBrainProto.EventType.EVENT_TYPE_DEATH, "p1", npc_id)
		for e: Node in get_tree().get_nodes_in_group(MetaBrainTelemetry.NPC_GROUP):
			e.remove_from_group(MetaBrainTelemetry.NPC_GROUP)
			e.queue_free()


func _draw() -> void:
	var s: float = 18.0  # pixels per game unit
	var c: Vector2 = Vector2(400, 400)
	draw_rect(Rect2(c - Vector2(20, 20) * s, Vector2(40, 40) * s), Color(0.15, 0.15, 0.18))
	draw_circle(c + player.position * s, 10.0, Color.DEEP_SKY_BLUE if not bool(player.get("dead")) else Color.DIM_GRAY)
	for e: Node2D in get_tree().get_nodes_in_group(MetaBrainTelemetry.NPC_GROUP):
		draw_circle(c + e.position * s, 8.0, Color.ORANGE_RED.lerp(Color.YELLOW, float(e.get("aggression"))))
	var status: String = "sidecar: %s   accuracy %.2f  damage %.1f  speed %.1f  spawn %.2f   kills %d deaths %d" % [
		"connected" if brain.is_open() else "away (defaults)", brain.knob("enemy_accuracy"),
		brain.knob("enemy_damage"), brain.knob("enemy_speed"), brain.knob("spawn_rate"), kills, deaths,
	]
	draw_string(ThemeDB.fallback_font, Vector2(10, 20), status, HORIZONTAL_ALIGNMENT_LEFT, -1, 14)
