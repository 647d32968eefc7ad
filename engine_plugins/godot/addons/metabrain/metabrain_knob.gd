class_name MetaBrainKnob
extends Resource
## One difficulty knob the director may move: its range, the designer's default and a rate limit.

@export var name: String = ""
@export var min_value: float = 0.0
@export var max_value: float = 1.0
@export var default_value: float = 0.5
## Largest change per second of game time; 0 means unlimited.
@export var max_change_per_second: float = 0.0
## True when a larger value makes the game easier.
@export var higher_is_easier: bool = false


static func make(knob_name: String, lo: float, hi: float, default: float, rate: float = 0.0) -> MetaBrainKnob:
	var k: MetaBrainKnob = MetaBrainKnob.new()
	k.name = knob_name
	k.min_value = lo
	k.max_value = hi
	k.default_value = default
	k.max_change_per_second = rate
	return k


func to_proto() -> MetaBrainProto.KnobSpec:
	var spec: MetaBrainProto.KnobSpec = MetaBrainProto.KnobSpec.new()
	spec.name = name
	spec.min_value = min_value
	spec.max_value = max_value
	spec.default_value = default_value
	spec.max_change_per_second = max_change_per_second
	spec.higher_is_easier = higher_is_easier
	return spec
