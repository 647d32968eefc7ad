class_name MetaBrain
extends Node
## Streams telemetry to a metabrain sidecar over WebSocket and applies the guidance that comes back.
##
## It never blocks the game: frames go onto a non-blocking socket polled in _process, the newest
## guidance wins (older guidance is dropped), and while the sidecar is away the knobs return to the
## designer's defaults, no faster than each knob's max_change_per_second, and the node reconnects
## with backoff, resuming its session with the resume token.
##
## The node runs while the scene tree is paused (process_mode ALWAYS): its connection stays alive, and
## when the tree pauses it tells the sidecar (EVENT_TYPE_PAUSE, in a frame sent at once) and sends no
## telemetry until the tree resumes (EVENT_TYPE_RESUME with the next frame); its game clock stops
## meanwhile. The sidecar keeps a paused session for its max_pause_s (30 minutes by default) instead of
## closing it after a minute without frames. A game that pauses another way calls set_paused().

signal connected(session_id: String, resumed: bool)
signal disconnected(reason: String)
signal difficulty_changed(knob: String, value: float)
## A tactic for an NPC (MetaBrainProto.NpcTactic). NPC_TACTIC_UNSPECIFIED asks nothing: the NPC's own
## behaviour again (with `predictive` the sidecar hints a tactic only where the knobs cannot move further).
signal npc_hint(npc: Node, tactic: int, target: String, aggression: float)
signal npc_hint_by_id(npc_id: int, tactic: int, target: String, aggression: float)
signal insight(player_id: String, p_fail: float, p_quit: float, frustration: float, engagement: float, skill: float)
signal guidance_received(guidance: MetaBrainProto.Guidance)
signal error_received(code: int, message: String, field: String)

enum State { IDLE, CONNECTING, HANDSHAKE, OPEN, BACKOFF, ENDING }

const END_TIMEOUT_MS: int = 2000  # stop(): how long to wait for the sidecar's acknowledgement

const PROTOCOL_VERSION: int = 1
const WS_PATH: String = "/metabrain/v1/session"

## Sidecar address and port; empty/0 take the project settings metabrain/network/*.
@export var address: String = ""
@export var port: int = 0
@export var token: String = ""
@export var use_tls: bool = false
@export var game_id: String = "my.game"
@export var game_build: String = ""
## Director policy: "static", "rubber_band", "intensity", "predictive", or empty for the sidecar's default.
@export var policy: String = ""
@export var policy_params: Dictionary = {}
@export var knobs: Array[MetaBrainKnob] = []
## NpcTactic values the game implements (MetaBrainProto.NpcTactic); empty means all.
@export var npc_tactics: Array[int] = []
## Send a frame every N physics ticks; 0 takes the project setting (default 3: 20 Hz at 60 physics
## ticks/s). Any rate gives the same predictions (the sidecar steps its model at the rate it learned and
## folds the frames between); more frames give smoother knobs and cost the sidecar more.
@export var send_every_n_physics_ticks: int = 0
## Build frames from the "metabrain_player" / "metabrain_npc" groups (else call send_frame yourself).
@export var auto_collect: bool = true
@export var request_npc_hints: bool = true
@export var request_insight: bool = true
@export var recording_consent: bool = false
@export var autostart: bool = true
@export var reconnect_min_s: float = 0.25
@export var reconnect_max_s: float = 5.0
@export var connect_timeout_s: float = 3.0
## Frames are dropped (never queued without bound) while this much is still unsent.
@export var max_outbound_bytes: int = 262144

var state: State = State.IDLE
var session_id: String = ""
var knob_values: Dictionary = {}
var last_guidance: MetaBrainProto.Guidance = null
var stats: Dictionary = {
	"frames_sent": 0, "frames_dropped": 0, "guidance": 0, "stale_guidance": 0, "superseded": 0, "errors": 0,
	"connects": 0, "resumes": 0,
}

var _ws: WebSocketPeer = null
var _resume_token: String = ""
var _sequence: int = 0
var _last_applied: int = 0
var _game_time: float = 0.0
var _physics_ticks: int = 0
var _backoff_s: float = 0.25
var _retry_at_ms: int = 0
var _connect_started_ms: int = 0
var _pending_events: Array[MetaBrainProto.GameEvent] = []
var _npc_nodes: Dictionary = {}
var _ending_until_ms: int = 0
var _paused: bool = false
var _pause_unsent: bool = false  # paused, and no frame has told the sidecar on this connection yet
var _tree_paused: bool = false


func _ready() -> void:
	process_mode = Node.PROCESS_MODE_ALWAYS  # keep the connection (and the pause's news) going in a pause
	if address.is_empty():
		address = str(ProjectSettings.get_setting("metabrain/network/address", "127.0.0.1"))
	if port == 0:
		port = int(ProjectSettings.get_setting("metabrain/network/port", 50052))
	if token.is_empty():
		token = str(ProjectSettings.get_setting("metabrain/network/token", ""))
	if send_every_n_physics_ticks <= 0:
		send_every_n_physics_ticks = int(ProjectSettings.get_setting("metabrain/telemetry/send_every_n_physics_ticks", 3))
	_apply_defaults()
	if autostart:
		start()


func start() -> void:
	_backoff_s = reconnect_min_s
	_connect()


## Ends the session: a goodbye after the frames already sent; the node keeps polling (in _process)
## until the sidecar has answered them, acknowledged and closed (state ENDING, at most END_TIMEOUT_MS),
## then stays IDLE (no reconnect) and emits `disconnected`. cut_short: the game ends the session for
## its own reasons (a time limit, the match over), not because the player chose to stop; the sidecar's
## portfolio then does not count it as the player quitting. A session closed without a goodbye counts
## as the player leaving once its resume window closes.
func stop(cut_short: bool = false) -> void:
	if _ws != null and state == State.OPEN:
		var req: MetaBrainProto.SessionRequest = MetaBrainProto.SessionRequest.new()
		req.goodbye = MetaBrainProto.Goodbye.new()
		req.goodbye.reason = "session cut short by the game" if cut_short else "game stopped"
		req.goodbye.cut_short = cut_short
		_ws.send(req.encode())
		state = State.ENDING
		_ending_until_ms = Time.get_ticks_msec() + END_TIMEOUT_MS
		return
	if _ws != null:
		_ws.close(1000, "stopped")
	_ws = null
	state = State.IDLE


## The player closed the game's window: say goodbye (the player left) before the app goes, so the
## sidecar counts the quit now rather than when the resume window closes. Best effort: the goodbye is
## put on the wire with one poll; the app quits right after. Only when Godot quits on its own
## (auto_accept_quit): a game that asks "are you sure?" calls stop() itself once the player confirms.
func _notification(what: int) -> void:
	if what != NOTIFICATION_WM_CLOSE_REQUEST or not is_inside_tree() or not get_tree().auto_accept_quit:
		return
	_goodbye_now()


## Leaving the scene tree (a scene change, the node freed) ends the session as the player leaving, at
## once, rather than when its resume window closes: the node cannot poll any more, so the goodbye goes
## out with one poll, best effort. A game that changes scenes for its own reasons (the level is over)
## calls stop(true) first, and the sidecar does not count a quit. A node moved to another parent ends
## its session too; call start() once it is back in the tree for a new one.
func _exit_tree() -> void:
	_goodbye_now()


func _goodbye_now() -> void:
	if state == State.OPEN and _ws != null:
		stop(false)
		_ws.poll()


## The game paused (true) or resumed (false): the sidecar hears it with the next frame (sent at once
## when the node collects telemetry itself), keeps the session through a long pause (its max_pause_s),
## and the node's game clock and telemetry stop until it resumes. Called by the node itself when the
## scene tree pauses; a game whose pause menu does not pause the tree calls it.
func set_paused(paused: bool) -> void:
	if paused == _paused:
		return
	_paused = paused
	var event: int = MetaBrainProto.EventType.EVENT_TYPE_PAUSE
	if not paused:
		event = MetaBrainProto.EventType.EVENT_TYPE_RESUME
	report_event(event)
	_pause_unsent = paused
	if paused and auto_collect and state == State.OPEN:
		_send_collected()  # no frame follows until the game resumes: the pause goes now


func is_paused() -> bool:
	return _paused


func is_open() -> bool:
	return state == State.OPEN


func knob(knob_name: String) -> float:
	return float(knob_values.get(knob_name, 0.0))


## Queue a game event; it rides with the next frame.
func report_event(type: int, player_id: String = "", npc_id: int = 0, amount: float = 0.0) -> void:
	var e: MetaBrainProto.GameEvent = MetaBrainProto.GameEvent.new()
	e.type = type
	e.player_id = player_id
	e.npc_id = npc_id
	e.amount = amount
	e.game_time = _game_time
	if _pending_events.size() < 256:
		_pending_events.append(e)


## Send one frame now (sequence, game time, events and knob values are filled in). Never blocks:
## returns false when the frame was dropped (not connected, or the socket's buffer is full).
func send_frame(frame: MetaBrainProto.Frame) -> bool:
	if state != State.OPEN or _ws == null:
		stats["frames_dropped"] += 1
		_pending_events.clear()
		return false
	if _ws.get_current_outbound_buffered_amount() > max_outbound_bytes:
		stats["frames_dropped"] += 1
		return false
	_sequence += 1
	frame.sequence = _sequence
	frame.game_time = _game_time
	frame.events.append_array(_pending_events)
	_pending_events.clear()
	_pause_unsent = false
	if frame.knobs.is_empty() and frame.knob_values.is_empty():
		# The compact form: one value per knob, in the hello's order.
		for k: MetaBrainKnob in knobs:
			frame.knob_values.append(float(knob_values.get(k.name, k.default_value)))
	var req: MetaBrainProto.SessionRequest = MetaBrainProto.SessionRequest.new()
	req.frame = frame
	if _ws.send(req.encode()) != OK:
		stats["frames_dropped"] += 1
		return false
	stats["frames_sent"] += 1
	return true


func _physics_process(delta: float) -> void:
	var tree_paused: bool = get_tree().paused
	if tree_paused != _tree_paused:  # follow the tree's pause (a game may also call set_paused itself)
		_tree_paused = tree_paused
		set_paused(tree_paused)
	if _paused:
		if _pause_unsent and auto_collect and state == State.OPEN:
			_send_collected()  # connected while paused (or the pause's frame was dropped): say it now
		return  # the game stands still: no game time passes, no telemetry, knobs stay where they are
	_game_time += delta
	_physics_ticks += 1
	if state != State.OPEN:
		_ease_to_defaults(delta)
	if not auto_collect or _physics_ticks % maxi(send_every_n_physics_ticks, 1) != 0:
		return
	if state != State.OPEN:
		stats["frames_dropped"] += 1
		_pending_events.clear()
		return
	_send_collected()


func _send_collected() -> void:
	var frame: MetaBrainProto.Frame = MetaBrainProto.Frame.new()
	_npc_nodes = MetaBrainTelemetry.collect(get_tree(), frame)
	if frame.player_table == null:  # no player in the scene
		return
	send_frame(frame)


func _process(_delta: float) -> void:
	poll()


## Polls the socket; called every _process, and callable by hand (e.g. from a test's loop).
func poll() -> void:
	var now: int = Time.get_ticks_msec()
	if _ws == null:
		if state == State.BACKOFF and now >= _retry_at_ms:
			_connect()
		return
	_ws.poll()
	match _ws.get_ready_state():
		WebSocketPeer.STATE_CONNECTING:
			if now - _connect_started_ms > int(connect_timeout_s * 1000.0):
				_lost("no WebSocket handshake from %s within %.1f s" % [_url(), connect_timeout_s])
		WebSocketPeer.STATE_OPEN:
			if state == State.CONNECTING:
				_send_hello()
			while _ws != null and _ws.get_available_packet_count() > 0:
				_handle(_ws.get_packet())
			if state == State.ENDING and _ws != null and now > _ending_until_ms:
				_ws.close(1000, "goodbye not acknowledged in time")
		WebSocketPeer.STATE_CLOSED:
			# Read what arrived with the close (a goodbye's acknowledgement, the last guidance). Godot 4.6
			# still drops it (godotengine/godot#107442: the sidecar waits for us to close after a goodbye).
			while _ws != null and _ws.get_available_packet_count() > 0:
				_handle(_ws.get_packet())
			if _ws != null:
				_lost("closed (%d %s)" % [_ws.get_close_code(), _ws.get_close_reason()])


func _url() -> String:
	return "%s://%s:%d%s" % ["wss" if use_tls else "ws", address, port, WS_PATH]


func _connect() -> void:
	_ws = WebSocketPeer.new()
	_ws.outbound_buffer_size = max_outbound_bytes * 2
	_ws.inbound_buffer_size = 1 << 20
	if not token.is_empty():
		_ws.handshake_headers = PackedStringArray(["Authorization: Bearer " + token])
	var err: Error = _ws.connect_to_url(_url())
	_connect_started_ms = Time.get_ticks_msec()
	stats["connects"] += 1
	if err != OK:
		_lost("cannot connect to %s (error %d)" % [_url(), err])
		return
	state = State.CONNECTING


func _send_hello() -> void:
	var h: MetaBrainProto.Hello = MetaBrainProto.Hello.new()
	h.protocol_version = PROTOCOL_VERSION
	h.game_id = game_id
	h.game_build = game_build
	for k: MetaBrainKnob in knobs:
		h.knobs.append(k.to_proto())
	h.npc_tactics = npc_tactics.duplicate()
	h.tick_rate_hz = float(Engine.physics_ticks_per_second) / float(maxi(send_every_n_physics_ticks, 1))
	if request_npc_hints:
		h.capabilities.append(MetaBrainProto.Capability.CAPABILITY_NPC_HINTS)
	if request_insight:
		h.capabilities.append(MetaBrainProto.Capability.CAPABILITY_INSIGHT)
	h.recording_consent = recording_consent
	h.resume_token = _resume_token
	h.policy = policy
	for key: Variant in policy_params:
		h.policy_params[str(key)] = str(policy_params[key])
	var req: MetaBrainProto.SessionRequest = MetaBrainProto.SessionRequest.new()
	req.hello = h
	_ws.send(req.encode())
	state = State.HANDSHAKE


func _handle(bytes: PackedByteArray) -> void:
	var resp: MetaBrainProto.SessionResponse = MetaBrainProto.SessionResponse.decode(bytes)
	if resp == null:
		stats["errors"] += 1
		return
	if resp.welcome != null:
		session_id = resp.welcome.session_id
		_resume_token = resp.welcome.resume_token
		state = State.OPEN
		_backoff_s = reconnect_min_s
		if resp.welcome.resumed:
			stats["resumes"] += 1
		if _paused:  # a new connection (or session) has not heard of the pause (a repeat is harmless)
			report_event(MetaBrainProto.EventType.EVENT_TYPE_PAUSE)
			_pause_unsent = true
		connected.emit(session_id, resp.welcome.resumed)
	elif resp.guidance != null:
		_apply(resp.guidance)
	elif resp.superseded != null:
		stats["superseded"] += 1
	elif resp.error != null:
		stats["errors"] += 1
		if resp.error.code == MetaBrainProto.ErrorCode.ERROR_CODE_RESUME_REJECTED:
			_resume_token = ""  # the sidecar forgot us: start a fresh session next time
		error_received.emit(resp.error.code, resp.error.message, resp.error.field)
	elif resp.goodbye != null:
		_lost("sidecar goodbye: " + resp.goodbye.reason)


func _apply(g: MetaBrainProto.Guidance) -> void:
	if g.sequence <= _last_applied:
		stats["stale_guidance"] += 1
		return
	_last_applied = g.sequence
	stats["guidance"] += 1
	last_guidance = g
	for kv: MetaBrainProto.KnobValue in g.knobs:
		_set_knob(kv.name, kv.value)
	for h: MetaBrainProto.NpcHint in g.npc_hints:
		var node: Node = _npc_nodes.get(h.npc_id, null)
		if node != null and is_instance_valid(node):
			npc_hint.emit(node, h.tactic, h.target_player_id, h.aggression)
		npc_hint_by_id.emit(h.npc_id, h.tactic, h.target_player_id, h.aggression)
	for i: MetaBrainProto.PlayerInsight in g.insights:
		insight.emit(i.player_id, i.p_fail, i.p_quit, i.frustration, i.engagement, i.skill)
	guidance_received.emit(g)


func _set_knob(knob_name: String, value: float) -> void:
	if knob_values.get(knob_name, NAN) != value:
		knob_values[knob_name] = value
		difficulty_changed.emit(knob_name, value)


func _apply_defaults() -> void:
	for k: MetaBrainKnob in knobs:
		_set_knob(k.name, k.default_value)


## While the sidecar is away: each knob moves toward its default at its max_change_per_second (a
## sudden jump is what the designer's rate limit forbids); 0 means unlimited.
func _ease_to_defaults(delta: float) -> void:
	for k: MetaBrainKnob in knobs:
		var now: float = float(knob_values.get(k.name, k.default_value))
		var step: float = k.max_change_per_second * delta if k.max_change_per_second > 0.0 else INF
		_set_knob(k.name, move_toward(now, k.default_value, step))


# The connection ended. After our goodbye (stop()) that is the session's end: stay idle, no reconnect.
func _lost(reason: String) -> void:
	if state == State.ENDING:
		if _ws != null:
			_ws.close(1000, "goodbye")
		_ws = null
		state = State.IDLE
		disconnected.emit(reason)
		return
	var was_open: bool = state == State.OPEN
	_ws = null
	state = State.BACKOFF
	_retry_at_ms = Time.get_ticks_msec() + int(_backoff_s * 1000.0)
	_backoff_s = minf(_backoff_s * 2.0, reconnect_max_s)
	if was_open:
		disconnected.emit(reason)
