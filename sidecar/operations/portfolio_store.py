"""The portfolio directors' evidence on disk: kept across restarts, shared by the processes of one sidecar.

A portfolio (sidecar/policies/portfolio.py) learns which director keeps a game's players longest from
every second they play. That evidence is worth keeping: a restart would otherwise explore again from
nothing, and the front-end processes of one sidecar (`--front-ends N`) would each learn alone from
their share of the players. With `--state-dir DIR`, each game's totals live in
`DIR/portfolio/<hash of game_id>.json`; every few seconds, and at shutdown, each process takes the
evidence it gathered since its last exchange, adds it into the file under an exclusive lock, and
takes back the totals, which hold every other process's (and every earlier run's) evidence too.
At start-up the totals of every game already seen are loaded before the first session is drawn.
"""

from __future__ import annotations

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
    ArmEvidence,
    Portfolio,
    candidate_of,
    portfolio_for,
    portfolios,
)

try:  # POSIX: processes on one machine take turns on a file; elsewhere one process per state dir
    import fcntl
except ImportError:  # pragma: no cover - Windows
    fcntl = None  # type: ignore[assignment]

__all__ = ["Imported", "PortfolioStore", "evidence_from_recordings"]

log = logging.getLogger("metabrain.portfolio")
_FORMAT = 1
_NOTHING = ArmEvidence()


class PortfolioStore:
    def __init__(self, state_dir: str | Path) -> None:
        self.directory = Path(state_dir) / "portfolio"
        self.directory.mkdir(parents=True, exist_ok=True)

    def path_of(self, game_id: str) -> Path:
        return self.directory / f"{hashlib.sha256(game_id.encode()).hexdigest()[:20]}.json"

    def load(self) -> int:
        """Every stored game's totals into this process's portfolios; returns how many games."""
        games = self.games()
        for game_id, totals in games.items():
            portfolio_for(game_id).absorb(totals)
        return len(games)

    def add(self, game_id: str, evidence: dict[str, ArmEvidence]) -> dict[str, ArmEvidence]:
        """Evidence from elsewhere (recordings) into this game's totals on disk; returns the totals."""
        return self._merge(game_id, evidence)

    def games(self) -> dict[str, dict[str, ArmEvidence]]:
        """Every stored game's totals, by game id."""
        out = {}
        for path in sorted(self.directory.glob("*.json")):
            stored = self._read(path)
            if stored is not None:
                out[stored[0]] = stored[1]
        return out

    @staticmethod
    def _read(path: Path) -> tuple[str, dict[str, ArmEvidence]] | None:
        """A stored game's id and totals (None: no file yet, or one that cannot be read)."""
        try:
            with open(path, encoding="utf-8") as f:
                _lock(f, shared=True)  # not halfway through another process's rewrite
                return _parse(f.read())
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
        if any(d != _NOTHING for d in delta.values()):
            portfolio.absorb(self._merge(game_id, delta))
            return
        # Nothing new here (a game with no session now): read the others' evidence, write nothing, so a
        # sidecar that knows many games does not rewrite and fsync every file every few seconds.
        stored = self._read(self.path_of(game_id))
        if stored is not None and stored[0] == game_id:
            portfolio.absorb(stored[1])

    def _merge(self, game_id: str, delta: dict[str, ArmEvidence]) -> dict[str, ArmEvidence]:
        """Add `delta` into the game's file under an exclusive lock; returns the new totals."""
        path = self.path_of(game_id)
        with open(path, "a+", encoding="utf-8") as f:
            _lock(f)
            f.seek(0)
            text = f.read()
            totals: dict[str, ArmEvidence] = {}
            if text.strip():
                try:
                    stored_id, totals = _parse(text)
                    if stored_id != game_id:  # an 80-bit hash collision (not in practice): start afresh
                        raise ValueError(f"{path} holds game {stored_id!r}")
                except (ValueError, KeyError, TypeError) as exc:
                    log.warning("replacing unreadable portfolio state %s: %s", path, exc)
                    totals = {}
            for label, d in delta.items():
                totals[label] = totals.get(label, ArmEvidence()).plus(d)
            f.seek(0)
            f.truncate()
            json.dump({"format": _FORMAT, "game_id": game_id, "arms": {k: asdict(v) for k, v in totals.items()}}, f)
            f.flush()
            os.fsync(f.fileno())
        return totals


def _lock(f: IO[Any], shared: bool = False) -> None:
    if fcntl is not None:
        fcntl.flock(f.fileno(), fcntl.LOCK_SH if shared else fcntl.LOCK_EX)  # released when the file closes


def _parse(text: str) -> tuple[str, dict[str, ArmEvidence]]:
    data = json.loads(text)
    if data.get("format") != _FORMAT:
        raise ValueError(f"unknown format {data.get('format')!r}")
    arms = {
        str(label): ArmEvidence(int(a["quits"]), float(a["seconds"]), int(a["finished"]), int(a["assigned"]))
        for label, a in data["arms"].items()
    }
    for label, e in arms.items():  # evidence the director draws from and reports: counts, finite seconds
        if min(e.quits, e.finished, e.assigned) < 0 or not 0.0 <= e.seconds < math.inf:
            raise ValueError(f"arm {label!r} holds impossible evidence {e}")
    return str(data["game_id"]), arms


@dataclass
class Imported:
    """What recordings say about each game's candidates, and what they could not say."""

    games: dict[str, dict[str, ArmEvidence]] = field(default_factory=dict)  # game id -> candidate -> evidence
    adaptive: int = 0  # sessions a portfolio drew (its own log: biased against what it starved)
    skipped: Counter[str] = field(default_factory=Counter)  # sessions of no candidate, by director

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
    counted."""
    out = Imported()
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
        out.add(str(s.header.get("game_id", "")), label, s.quit, s.played_s)
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
        out.add(game, label, s.quit, max(s.end - drawn_at, 0.0))
        out.adaptive += 1
        return
    out.skipped["contextual (ended before its draw)"] += 1
