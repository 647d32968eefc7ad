"""The portfolio directors' evidence on disk: kept across restarts, shared by the processes of one sidecar.

A portfolio (sidecar/policies/portfolio.py) learns which director keeps a game's players longest from
every second they play. That evidence is worth keeping: a restart would otherwise explore again from
nothing, and the front-end processes of one sidecar (`--front-ends N`) would each learn alone from
their share of the players. With `--state-dir DIR`, each game's totals live in
`DIR/portfolio/<hash of game_id>.json`; every few seconds, and at shutdown, each process takes the
evidence it gathered since its last exchange, adds it into the file under the game's lock (the file
replaced whole, so a crash halfway leaves the old totals), and takes back the totals, which hold
every other process's (and every earlier run's) evidence too.
The `adaptive` candidate's start (where the game's recent sessions of it ended) is kept the same way:
how each process's session ends moved it since the last exchange is applied to the stored start, so
every process starts its sessions where the game's players, on every process, left it.
At start-up the totals of every game already seen are loaded before the first session is drawn.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import math
import os
from collections import Counter
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import IO, Any

from sidecar.operations.session_outcomes import RecordedSession, read_sessions
from sidecar.policies.portfolio import (
    CONTEXT_MARK,
    DEFAULT_ARMS,
    NO_MOVE,
    ArmEvidence,
    Portfolio,
    StartMove,
    at_a_start,
    candidate_of,
    evidence_label,
    moved,
    portfolio_for,
    portfolios,
    start_end,
    then_end,
)

try:  # POSIX: processes on one machine take turns on a file; elsewhere one process per state dir
    import fcntl
except ImportError:  # pragma: no cover - Windows
    fcntl = None  # type: ignore[assignment]

__all__ = ["Imported", "PortfolioStore", "evidence_from_recordings"]

log = logging.getLogger("metabrain.portfolio")
_FORMAT = 1
_NOTHING = ArmEvidence()
_LEARNS_START = frozenset(a.label for a in DEFAULT_ARMS if a.learns_start)
# How a learns_start candidate's session ends move its start, by candidate (Portfolio.take_start_moves).
Moves = dict[str, StartMove]


class PortfolioStore:
    def __init__(self, state_dir: str | Path) -> None:
        self.directory = Path(state_dir) / "portfolio"
        self.directory.mkdir(parents=True, exist_ok=True)

    def path_of(self, game_id: str) -> Path:
        return self.directory / f"{hashlib.sha256(game_id.encode()).hexdigest()[:20]}.json"

    def load(self) -> int:
        """Every stored game's totals into this process's portfolios; returns how many games."""
        games = self.stored()
        for game_id, (totals, starts) in games.items():
            portfolio = portfolio_for(game_id)
            portfolio.absorb(totals)
            portfolio.absorb_starts(starts)
        return len(games)

    def add(self, game_id: str, evidence: dict[str, ArmEvidence], moves: Moves | None = None) -> dict[str, ArmEvidence]:
        """Evidence from elsewhere (recordings) into this game's totals on disk, and how its learns_start
        candidates' session ends there move their starts; returns the totals."""
        return self._merge(game_id, evidence, moves or {})[0]

    def games(self) -> dict[str, dict[str, ArmEvidence]]:
        """Every stored game's totals per candidate, by game id (a learns_start candidate's evidence at each
        start, which stored() holds too, is part of its candidate's)."""
        return {
            game_id: {label: e for label, e in totals.items() if not at_a_start(label)}
            for game_id, (totals, _) in self.stored().items()
        }

    def stored(self) -> dict[str, tuple[dict[str, ArmEvidence], dict[str, float]]]:
        """Every stored game's totals and learned starts (offsets from the designer's level), by game id."""
        out = {}
        for path in sorted(self.directory.glob("*.json")):
            stored = self._read(path)
            if stored is not None:
                out[stored[0]] = (stored[1], stored[2])
        return out

    @staticmethod
    def _read(path: Path) -> tuple[str, dict[str, ArmEvidence], dict[str, float]] | None:
        """A stored game's id, totals and starts (None: no file yet, or one that cannot be read)."""
        try:
            # No lock: a writer replaces the file whole (_merge), so this reads the old one or the new one.
            return _parse(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return None
        except (OSError, ValueError, KeyError, TypeError) as exc:
            log.warning("ignoring unreadable portfolio state %s: %s", path, exc)
            return None

    def sync(self) -> None:
        """Exchange every game's evidence with the file (this process's new evidence in, the totals back)."""
        for game_id, portfolio in portfolios().items():
            try:
                self._sync(game_id, portfolio)
            except OSError as exc:  # a full disk must not stop the director: it keeps learning in memory
                log.warning("could not save the portfolio state of game %r: %s", game_id, exc)

    def _sync(self, game_id: str, portfolio: Portfolio) -> None:
        delta = portfolio.take_delta()
        moves = portfolio.take_start_moves()
        if moves or any(d != _NOTHING for d in delta.values()):
            try:
                totals, starts = self._merge(game_id, delta, moves)
            except OSError:  # not written: what was taken is this process's still, for the next exchange
                portfolio.untake(delta, moves)
                raise
            portfolio.absorb(totals)
            portfolio.absorb_starts(starts)
            return
        # Nothing new here (a game with no session now): read the others' evidence, write nothing, so a
        # sidecar that knows many games does not rewrite and fsync every file every few seconds.
        stored = self._read(self.path_of(game_id))
        if stored is not None and stored[0] == game_id:
            portfolio.absorb(stored[1])
            portfolio.absorb_starts(stored[2])

    def _merge(
        self, game_id: str, delta: dict[str, ArmEvidence], moves: Moves
    ) -> tuple[dict[str, ArmEvidence], dict[str, float]]:
        """Add `delta` into the game's file, and apply `moves` to its starts, the game's lock held; returns
        the new totals and starts. The file is replaced whole (a new one written and renamed over it): a
        crash or a full disk halfway leaves the old totals, not half a file."""
        path = self.path_of(game_id)
        with open(path.with_suffix(".lock"), "a+b") as lock:  # the processes' writers take turns per game
            _lock(lock)
            try:
                text = path.read_text(encoding="utf-8")
            except FileNotFoundError:
                text = ""
            totals: dict[str, ArmEvidence] = {}
            starts: dict[str, float] = {}
            if text.strip():
                try:
                    stored_id, totals, starts = _parse(text)
                    if stored_id != game_id:  # an 80-bit hash collision (not in practice): start afresh
                        raise ValueError(f"{path} holds game {stored_id!r}")
                except (ValueError, KeyError, TypeError) as exc:
                    log.warning("replacing unreadable portfolio state %s: %s", path, exc)
                    totals, starts = {}, {}
            for label, d in delta.items():
                totals[label] = totals.get(label, ArmEvidence()).plus(d)
            for label, move in moves.items():
                starts[label] = moved(starts.get(label, 0.0), move)
            stored = {"format": _FORMAT, "game_id": game_id, "arms": {k: asdict(v) for k, v in totals.items()}}
            if starts:  # optional: a file written before the adaptive candidate has none
                stored["starts"] = starts
            _replace(path, json.dumps(stored))
        return totals, starts


def _lock(f: IO[Any]) -> None:
    if fcntl is not None:
        fcntl.flock(f.fileno(), fcntl.LOCK_EX)  # released when the file closes


def _replace(path: Path, text: str) -> None:
    """`path` holds `text`, or (an error on the way) what it held before: written beside it, synced, renamed."""
    tmp = path.with_name(f"{path.name}.{os.getpid()}.tmp")
    try:
        with open(tmp, "w", encoding="utf-8") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise
    with contextlib.suppress(OSError):  # the rename itself durable (POSIX; not every filesystem allows it)
        fd = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def _parse(text: str) -> tuple[str, dict[str, ArmEvidence], dict[str, float]]:
    """A state file's game id, totals and starts; ValueError for anything else (a hand edit, a corrupt
    disk, another shape): the caller skips it with a warning."""
    try:
        return _parsed(json.loads(text))
    except (AttributeError, KeyError, TypeError, OverflowError) as exc:  # a list for a dict, Infinity for a count
        raise ValueError(f"not a portfolio state: {exc!r}") from exc


def _parsed(data: Any) -> tuple[str, dict[str, ArmEvidence], dict[str, float]]:
    if data.get("format") != _FORMAT:
        raise ValueError(f"unknown format {data.get('format')!r}")
    arms = {
        str(label): ArmEvidence(int(a["quits"]), float(a["seconds"]), int(a["finished"]), int(a["assigned"]))
        for label, a in data["arms"].items()
    }
    for label, e in arms.items():  # evidence the director draws from and reports: counts, finite seconds
        if min(e.quits, e.finished, e.assigned) < 0 or not 0.0 <= e.seconds < math.inf:
            raise ValueError(f"arm {label!r} holds impossible evidence {e}")
    starts = {str(label): float(x) for label, x in data.get("starts", {}).items()}
    for label, x in starts.items():  # an offset from the designer's level, as start_end bounds the ends
        if not -1.0 <= x <= 1.0:
            raise ValueError(f"candidate {label!r} holds an impossible start {x}")
    return str(data["game_id"]), arms, starts


@dataclass
class Imported:
    """What recordings say about each game's candidates, and what they could not say."""

    games: dict[str, dict[str, ArmEvidence]] = field(default_factory=dict)  # game id -> candidate -> evidence
    adaptive: int = 0  # sessions a portfolio drew (its own log: biased against what it starved)
    skipped: Counter[str] = field(default_factory=Counter)  # sessions of no candidate, by director
    moves: dict[str, Moves] = field(default_factory=dict)  # game id -> how its sessions' ends move the starts

    def add(self, game: str, label: str, quit_: bool, seconds: float) -> None:
        """One ended session of a game's (or a skill share's) candidate."""
        evidence = self.games.setdefault(game, {})
        evidence[label] = evidence.get(label, ArmEvidence()).plus(ArmEvidence(int(quit_), seconds, 1, 1))


def evidence_from_recordings(paths: Iterable[Path]) -> Imported:
    """What recordings say about each portfolio candidate, by game: seconds played, sessions ended, quits
    (as session_outcomes.py reads them: a goodbye not cut short, or the player gone).

    Two kinds of recording count. A portfolio's own (header experiment "portfolio", arm = the candidate
    drawn): the evidence it learned from, but adaptive, so a candidate it starved early keeps the bad
    luck of its few sessions. A fixed director's (a served experiment's or a simulated mixture's arm, e.g.
    "static:0.7" or "predictive"), as candidate_of maps it from the designer's level: a design log, which
    says as much about each candidate as it has sessions of it. A contextual director's (experiment
    "contextual"): for its skill share's candidate, as the guidance named them. Recordings of other
    directors, and of no experiment (the policy alone does not say its parameters), are skipped and
    counted. A portfolio's `adaptive` sessions also say where they started (the director note), which
    their evidence is kept by too, and where they ended (the knob values sent last), which its start
    follows, in the order the sessions ended."""
    out = Imported()
    ended: list[tuple[float, str, str, tuple[float, float]]] = []  # (wall time it ended, game, label, end)
    for s in read_sessions(paths):
        if s.start is None:
            continue
        arm = str(s.header.get("arm") or "")
        # A contextual director's: served as the default (experiment "contextual", no arm), as an
        # experiment's arm, or simulated (`metabrain sim --policy contextual`: the arm is the policy).
        if arm.partition(":")[0] == "contextual" or (s.header.get("experiment") == "contextual" and not arm):
            _contextual(s, out)
            continue
        # The arm an experiment or a portfolio drew names what the session had; a bare policy does not
        # (`static` with a `level` parameter is not the designer's level).
        label = candidate_of(arm, s.designer_level) if arm else None
        if label is None:
            out.skipped[arm or f"{s.arm} (no experiment arm)"] += 1
            continue
        out.adaptive += s.header.get("experiment") == "portfolio"
        game = str(s.header.get("game_id", ""))
        out.add(game, label, s.quit, s.played_s)
        if label in _LEARNS_START and s.header.get("experiment") == "portfolio":
            started = s.start_level()  # and for the candidate at its start, as the served one counted it
            if started is not None:
                out.add(game, evidence_label(label, started - s.designer_level), s.quit, s.played_s)
            level = s.end_level()  # where it ended: what its next session's start follows, as served
            end = start_end(None if level is None else level - s.designer_level, s.played_s)
            if end is not None and s.recording.records:
                ended.append((s.recording.records[-1][0], game, label, end))
    for _, game, label, end in sorted(ended, key=lambda e: e[0]):  # the order the served starts followed them
        game_moves = out.moves.setdefault(game, {})
        game_moves[label] = then_end(game_moves.get(label, NO_MOVE), *end)
    return out


def _contextual(s: RecordedSession, out: Imported) -> None:
    """A contextual director's session counts for its skill share's candidate from the frame its
    guidance first named them ("skill2of3/rubber_band": the play after the draw, as the share counted
    it live); one that ended before its draw counts for none."""
    for _, resp in s.recording.responses():
        if resp.WhichOneof("kind") != "guidance":
            continue
        g = resp.guidance
        share, sep, label = g.director.candidate.partition("/")
        if not sep or not share.startswith("skill"):  # before the draw: nothing or "first minute/..."
            continue
        drawn_at = s.frame_times.get(g.sequence)
        if drawn_at is None:
            continue
        game = f"{s.header.get('game_id', '')}{CONTEXT_MARK}{share.removeprefix('skill')}"
        out.add(game, label, s.quit, s.played_since(drawn_at))
        out.adaptive += 1
        return
    out.skipped["contextual (ended before its draw)"] += 1
