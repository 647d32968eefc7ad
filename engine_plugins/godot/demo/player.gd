extends Node2D
## The player avatar. With a window: arrow keys to move, left mouse to shoot. Headless: an autopilot.

var player_id: String = "p1"
var health: float = 100.0
var max_health: float = 100.0
var dead: bool = false
var velocity: Vector2 = Vector2.ZERO
var autopilot: bool = true
var skill: float = 0.5
var _fire_cd: float = 0.0
var _strafe: float = 1.0
var _respawn_at: float = 0.0


func _ready() -> void:
	add_to_group(MetaBrainTelemetry.PLAYER_GROUP)


func act(arena: Node, delta: float, rng: RandomNumberGenerator, now: float) -> void:
	if dead:
		velocity = Vector2.ZERO
		if now >= _respawn_at:
			dead = false
			health = max_health
			position = Vector2.ZERO
		return
	var target: Node2D = arena.nearest_enemy(position)
	var move: Vector2 = Vector2.ZERO
	var shoot: bool = false
	if autopilot:
		if target != null:
			var to: Vector2 = target.position - position
			var radial: float = 0.0 if to.length() > 8.0 and to.length() < 13.0 else (1.0 if to.length() >= 13.0 else -1.0)
			move = to.normalized() * radial + to.normalized().orthogonal() * _strafe * 0.8
			shoot = true
		if rng.randf() < 0.02:
			_strafe = -_strafe
	else:
		move = Input.get_vector(&"ui_left", &"ui_right", &"ui_up", &"ui_down")
		shoot = Input.is_mouse_button_pressed(MOUSE_BUTTON_LEFT)
	velocity = move.limit_length(1.0) * 6.0
	position = (position + velocity * delta).clamp(Vector2(-20, -20), Vector2(20, 20))
	_fire_cd -= delta
	if shoot and target != null and _fire_cd <= 0.0:
		_fire_cd = 0.25
		var hit_chance: float = (0.2 + 0.6 * skill) * (1.0 - 0.4 * position.distance_to(target.position) / 22.0)
		arena.player_shot(target, rng.randf() < hit_chance)


func hurt(amount: float, now: float) -> bool:
	health -= amount
	if health <= 0.0:
		health = 0.0
		dead = true
		_respawn_at = now + 3.0
		return true
	return false
