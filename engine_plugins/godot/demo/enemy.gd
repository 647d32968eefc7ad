extends Node2D
## An enemy that follows the tactic hinted by the director (advance when it has none).

var npc_id: int = 0
var kind: String = "grunt"
var health: float = 1.0
var npc_state: int = MetaBrainProto.NpcState.NPC_STATE_CHASE
var tactic: int = MetaBrainProto.NpcTactic.NPC_TACTIC_ADVANCE
var target_player_id: String = "p1"
var aggression: float = 0.5
var cooldown: float = 1.0
var flank_sign: float = 1.0


func _ready() -> void:
	add_to_group(MetaBrainTelemetry.NPC_GROUP)


func act(player: Node2D, centroid: Vector2, speed: float, delta: float) -> void:
	var to: Vector2 = player.position - position
	var d: float = to.length()
	var dir: Vector2 = to / maxf(d, 0.001)
	var v: Vector2 = Vector2.ZERO
	match tactic:
		MetaBrainProto.NpcTactic.NPC_TACTIC_HOLD:
			v = Vector2.ZERO
		MetaBrainProto.NpcTactic.NPC_TACTIC_FLANK:
			v = dir * (d - 8.0) / 8.0 + dir.orthogonal() * flank_sign
		MetaBrainProto.NpcTactic.NPC_TACTIC_RETREAT:
			v = -dir if d < 16.0 else Vector2.ZERO
		MetaBrainProto.NpcTactic.NPC_TACTIC_REGROUP:
			v = (centroid - position).normalized() if position.distance_to(centroid) > 2.0 else Vector2.ZERO
		MetaBrainProto.NpcTactic.NPC_TACTIC_PRESSURE:
			v = dir if d > 3.0 else Vector2.ZERO
		_:
			v = dir if d > 6.0 else Vector2.ZERO
	position = (position + v.limit_length(1.0) * speed * delta).clamp(Vector2(-20, -20), Vector2(20, 20))
	cooldown -= delta
	npc_state = MetaBrainProto.NpcState.NPC_STATE_ATTACK if d <= 16.0 else MetaBrainProto.NpcState.NPC_STATE_CHASE
