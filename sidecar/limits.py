"""The limits the sidecar enforces; every refusal names one of these fields."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = [
    "Limits",
]


@dataclass(frozen=True)
class Limits:
    max_message_bytes: int = 64 * 1024
    max_players_per_frame: int = 64
    max_npcs_per_frame: int = 256
    max_events_per_frame: int = 256
    max_knobs: int = 16
    max_sessions: int = 10_000
    # Games (Hello.game_id) a learning director (portfolio, contextual) keeps evidence for in one process:
    # each holds it in memory and in a file under --state-dir, so a client that makes up a game id
    # per session must not grow them without end. A studio's sidecar serves a handful.
    max_games: int = 1_000
    max_connections: int = 12_000
    # Streams one client address may hold (open or opening): one address cannot take every slot.
    max_connections_per_client: int = 1_000
    # Seconds a new stream may take to send its hello (a WebSocket also has this long to finish its
    # opening handshake): connections that never speak give their slot back quickly.
    hello_timeout_s: float = 10.0
    # Every message a stream sends, valid or not; above the frame rate so refusals never starve frames.
    max_messages_per_second_per_connection: float = 480.0
    resume_window_s: float = 30.0
    idle_timeout_s: float = 60.0
    # A game that said it paused (a frame with EVENT_TYPE_PAUSE, no RESUME after it) may go this long
    # without a frame before its session is closed: a pause menu is not a player who left.
    max_pause_s: float = 1800.0
    max_frames_per_second: float = 240.0
    max_string_bytes: int = 128
    # Coordinates beyond this magnitude are refused as corrupt rather than fed to the model.
    max_abs_coordinate: float = 1.0e6

    def resume_window_for(self, paused: bool) -> float:
        """How long a session whose stream went away waits for a resume: a paused one (a phone that put
        the game in the background and lost the connection) as long as a pause may last."""
        return max(self.max_pause_s, self.resume_window_s) if paused else self.resume_window_s

    def idle_limit_s(self, paused: bool) -> float:
        """How long a session may go without a frame: longer while its game says it is paused."""
        return max(self.max_pause_s, self.idle_timeout_s) if paused else self.idle_timeout_s
