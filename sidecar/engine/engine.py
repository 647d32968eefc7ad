"""The engine: the transports' one interface to the model.

Transports hand it accepted frames and get a future of the responses for that frame. A single loop
task, whenever frames are waiting (greedy, but reading what keeps arriving into the coming tick for
up to as long as the last tick took, or `max_wait_s`), featurizes all of them at once, hands them to
the scheduler (latest wins), asks it for a step plan, runs the runner and the directors (on the loop
thread on a CPU, on a worker thread on CUDA), and resolves the futures.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch

from sidecar.columns import Capability
from sidecar.engine.clock import ModelClock, StepInFlight
from sidecar.engine.config import EngineConfig
from sidecar.engine.plan import PlanEntry, StepPlan, StepResult
from sidecar.engine.remote_runner import RemoteRunner
from sidecar.engine.runner import Runner, local_runner
from sidecar.engine.scheduler import Scheduler
from sidecar.errors import Internal, LimitExceeded, ModelUnavailable
from sidecar.features import RAW_NPC_FIELDS, FrameInput, featurize_many
from sidecar.model.checkpoint import Checkpoint
from sidecar.policies.director import Director
from sidecar.policies.tick import Direction, direct
from sidecar.protocol import FrameAccepted
from sidecar.session import Session, SessionStatus
from sidecar.wire import responses as wire
from sidecar.wire.responses import Predictions, Response

__all__ = ["GATHER_BELOW_ROWS", "AnsweredAlready", "Engine", "EngineConfig", "Responses", "TickStats", "local_runner"]

# Ticks gather steps (EngineConfig.gather_steps_s) only while they are this small: a tick of a few rows
# costs nearly what one of dozens does, but one of 16 rows and more has already shared that cost out, and
# gathering more (multiplayer frames bring a row per player) would take it past the compiled step's bound
# (64 rows) into torch, a slower tick that the frames behind it wait on (53 WebSocket sessions of 32
# players at 60 Hz: p99 9.3 / 7.6 ms without gathering them, 16.8 in a run that gathered them).
GATHER_BELOW_ROWS = 16

log = logging.getLogger("metabrain.engine")

Responses = list[Response]
_FILL_STEP_S = 0.0005
_NPC_ID = RAW_NPC_FIELDS.index("npc_id")
_GOLDEN = 0.6180339887498949  # its successive multiples mod 1 spread evenly over [0, 1)


class AnsweredAlready:
    """The ticket of a model step whose frame was answered at once (EngineConfig.answer_steps_at_once):
    nothing waits for the step's answer, but its errors (the model failed, no state slot was free, the
    featurizer failed) go to the game after the session's next answer."""

    __slots__ = ("session",)

    def __init__(self, session: Session) -> None:
        self.session = session

    def deliver(self, responses: Responses) -> None:
        self.session.carried.extend(r for r in responses if wire.kind(r) == "error")


@dataclass
class TickStats:
    tick: int
    batch: int
    model_seconds: float
    tick_seconds: float
    fallback: bool


class Engine:
    def __init__(
        self, checkpoint: Checkpoint, config: EngineConfig | None = None, runner: RemoteRunner | None = None
    ) -> None:
        self.cfg = config or EngineConfig()
        self.checkpoint = checkpoint
        self.model_version = checkpoint.version
        # The model runs here, or in a runner process shared with other front ends (front_ends.py).
        self.runner: Runner | RemoteRunner = runner or local_runner(checkpoint.model, self.cfg, self.cfg.max_slots)
        self.scheduler = Scheduler(self.cfg.max_slots, np.linspace(0.0, 1.0, self.cfg.levels, dtype=np.float32))
        # The sessions joined, by id: each holds its director, model clock and steps in flight (session.py).
        self.sessions: dict[str, Session] = {}
        self._executor = concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="metabrain-runner")
        wt = self.cfg.worker_thread
        on_worker = self.runner.device.type == "cuda" or isinstance(self.runner, RemoteRunner)
        self.use_worker = on_worker if wt is None else wt
        self._wake = asyncio.Event()
        # Sessions with a frame waiting for a step's answer (a step in flight), and while a tick gathers
        # steps (EngineConfig.gather_steps_s), what ends the gathering: such a frame arriving, or its time.
        self._awaited: set[str] = set()
        self._step_wall: dict[str, float] = {}  # when each session's last step frame arrived (monotonic s)
        self._gathering: asyncio.Future[None] | None = None
        self._task: asyncio.Task[None] | None = None
        self._stopping = False
        self.on_tick: list[Callable[[TickStats], None]] = []
        self._last_tick_s = 0.0
        self._last_tick_rows = 0
        # Accepted frames not featurized yet: (session id, frame, ticket, received at).
        self._incoming: list[tuple[str, FrameInput, object, float]] = []
        # The model clock (clock.py): sessions step every model period of game time; frames between
        # are folded in and answered from the latest prediction. 0: a step on every frame.
        rate = checkpoint.model_rate_hz if self.cfg.model_rate_hz is None else self.cfg.model_rate_hz
        self.model_period_s = 1.0 / rate if rate > 0 else 0.0
        self.between_frames = 0  # frames answered between model steps
        self._joined = 0  # sessions joined so far: each gets the next phase of the model clock's grid
        self.step_frames = 0  # frames the model clock sent to the model (some superseded under load)
        self.steps_answered_at_once = 0  # of those, answered from the latest prediction (EngineConfig)
        self.rows_stepped = 0  # player rows the model stepped
        self.submitted = 0
        self.ticks = 0
        # Values that would have left the sidecar non-finite or out of range (each a bug, replaced).
        self.output_violations = 0

    @property
    def device(self) -> str:
        return str(self.runner.device)

    # -- lifecycle --------------------------------------------------------------------------
    async def start(self) -> None:
        self._task = asyncio.create_task(self._loop(), name="metabrain-engine")

    async def stop(self) -> None:
        """Answer every waiting frame, then stop."""
        self._stopping = True
        self._wake.set()
        if self._task is not None:
            await self._task
        self._executor.shutdown(wait=True)

    # -- sessions ---------------------------------------------------------------------------
    def join(self, session: Session, state_reset: bool = False) -> None:
        sid = session.session_id
        if self.sessions.get(sid) is session and session.director is not None and not state_reset:
            return  # resumed with its state intact
        session.director = Director(session, self.cfg.default_policy)
        # Phases spread by the golden ratio: any number of sessions that join together step spread over
        # the whole period, not all in one tick (clock.py). Over 0.4 of one (until 2026-12-03) the ticks
        # of 200 sessions at 60 Hz bunched into that share: p99 31 ms, 17 ms spread over all of it.
        session.clock = ModelClock(self.model_period_s, phase=(self._joined * _GOLDEN) % 1.0)
        self._joined += 1
        session.steps = []
        self.sessions[sid] = session
        self.scheduler.join(sid, explain=session.has(Capability.EXPLANATIONS))
        if state_reset:
            self.scheduler.reset_state(sid)

    def leave(self, session_id: str, by_player: bool = True) -> None:
        """The session is over: its state goes. by_player=False: cut short by something other than the
        player leaving (a time limit in a simulation), which an adaptive director does not count as a quit."""
        session = self.sessions.pop(session_id, None)
        self._awaited.discard(session_id)
        self._step_wall.pop(session_id, None)
        deferred: list[tuple[int, object]] = []
        if session is not None:
            if session.director is not None:
                session.director.finish(by_player)
            deferred = [(f.sequence, t) for step in session.steps for f, t, _ in step.after]
            session.director, session.clock, session.steps = None, None, []
            session.status = SessionStatus.FINISHED
        mine = [(f.sequence, t) for sid, f, t, _ in self._incoming if sid == session_id]
        if mine:
            self._incoming = [item for item in self._incoming if item[0] != session_id]
        for _seq, ticket in [*self.scheduler.leave(session_id), *mine, *deferred]:
            if isinstance(ticket, AnsweredAlready):
                continue
            assert isinstance(ticket, asyncio.Future)
            if not ticket.done():
                ticket.cancel()

    @property
    def model_rate_hz(self) -> float:
        """Model steps per second of a session's game time; 0: a step on every frame."""
        return 1.0 / self.model_period_s if self.model_period_s > 0 else 0.0

    def submit(self, accepted: FrameAccepted) -> Responses | asyncio.Future[Responses]:
        """An accepted frame: folded into its session's next model step and answered at once from the
        latest prediction (the answer is returned), or queued for the next tick, featurized with the rest
        of it (a future of the answer is returned). Most frames at 60 Hz are the first kind: no future
        to resolve and wait on for them."""
        fut: asyncio.Future[Responses] = asyncio.get_running_loop().create_future()
        self.submitted += 1
        due = self._route(
            accepted.session.session_id, accepted.frame, fut, accepted.received_at, self.cfg.answer_steps_at_once
        )
        if len(due) == 1 and due[0][0] is fut:
            return due[0][1]
        self._resolve(due)
        return fut

    def _route(
        self, sid: str, frame: FrameInput, ticket: object, received_at: float, at_once: bool = False
    ) -> list[tuple[object, Responses]]:
        """The model clock decides; returns the answers due now. at_once: a step frame of a session sending
        faster than the model rate in real time is answered now, like the frames between steps (EngineConfig)."""
        session = self.sessions.get(sid)
        if session is None or session.clock is None:
            return [(ticket, [])]  # left the engine already: no answer, as a frame of a session that leaves mid-step
        if session.director is not None:
            session.director.seen(frame.game_time)
        faster = session.clock.folded > 0  # frames were folded into this one, should it step
        last_step = session.clock.last_step
        step = session.clock.route(frame, self.cfg.compiled)
        flights = session.steps
        if step is None:
            if flights:  # its session's step is still to come: answered after it, in order
                flights[-1].after.append((frame, ticket, received_at))
                return []
            self.between_frames += 1
            return [(ticket, self._between(session, frame, received_at))]
        self.step_frames += 1
        # (the real-time check first: it notes every such step's arrival, whatever is decided)
        if (
            at_once
            and faster
            and self._real_time(sid, frame.game_time - last_step if last_step is not None else None, received_at)
            and not flights
            and session.director is not None
        ):
            # The step goes on without a frame waiting for it: its answer is the template for the frames
            # after it, and its errors go after the next one (AnsweredAlready). An earlier step still in
            # flight keeps the answers in order instead.
            self.steps_answered_at_once += 1
            self._incoming.append((sid, step, AnsweredAlready(session), received_at))
            self._wake.set()
            return [(ticket, self._between(session, frame, received_at))]
        flights.append(StepInFlight(frame.sequence))
        self._awaited.add(sid)
        _end_gathering(self._gathering)
        self._incoming.append((sid, step, ticket, received_at))
        self._wake.set()
        return []

    def _real_time(self, sid: str, game_s: float | None, received_at: float) -> bool:
        """Does the game run in real time: at least half of the game time since the session's last step
        (`game_s`) passed between the two step frames' arrivals (`received_at`, monotonic) too? A client that
        plays faster (a replay, a simulation as fast as it is answered) would otherwise send its next step
        before this one's tick and supersede it; its step frames wait for their steps, which paces it."""
        then = self._step_wall.get(sid)
        self._step_wall[sid] = received_at
        if then is None or game_s is None:
            return False
        return received_at - then >= 0.5 * game_s

    def _stepped(self, sid: str, sequence: int, by: int = 0) -> list[tuple[object, Responses]]:
        """Step `sequence` of the session was answered (or superseded `by` a newer one): answer the frames
        that came after it, from its prediction (or as superseded too)."""
        session = self.sessions.get(sid)
        if session is None or not session.steps or session.steps[0].sequence != sequence:
            return []
        done = session.steps.pop(0)
        if not session.steps:
            self._awaited.discard(sid)
        out: list[tuple[object, Responses]] = []
        for frame, ticket, received_at in done.after:
            if by:
                out.append((ticket, [wire.superseded(frame.sequence, by)]))
            else:
                self.between_frames += 1
                out.append((ticket, self._between(session, frame, received_at)))
        return out

    def _between(self, session: Session, frame: FrameInput, received_at: float) -> Responses:
        """A frame between two model steps: the latest prediction through the director's guard (knobs
        eased toward the current target at each knob's rate), the latest hints for the NPCs still in
        the frame, the latest insights. No featurizing, no model."""
        director = session.director
        if director is None:
            return []
        if director.last_time is None:  # before the session's first step: from where the game is
            director.start_from(frame.raw.knob_values)
        values, wrong = director.ease(frame.game_time, self.cfg.compiled)
        if wrong:
            self.output_violations += len(wrong)
            log.error("knob values out of range or not finite (%s): sent the defaults for them", ", ".join(wrong))
        us = min(int((time.monotonic() - received_at) * 1e6), 2**32 - 1)
        template = director.template
        if template is None:  # no step yet: the knobs alone
            knobs = (director.names, values)
            resp = wire.guidance(
                frame.sequence,
                self.model_version,
                director.policy_name,
                knobs,
                fallback=director.fallback,
                processing_us=us,
            )
            return [resp, *self._carried(session)]
        hints = None
        if director.last_hints:
            npcs = frame.raw.npcs[:, _NPC_ID].tolist() if len(frame.raw.npcs) else []
            if npcs != director.template_npcs:  # NPCs came or went: theirs only
                present = set(npcs)
                hints = [h for h in director.last_hints if h[0] in present]
        resp = wire.between(
            template,
            frame.sequence,
            values,
            fallback=director.fallback,
            hints=hints,
            processing_us=us,
        )
        return [resp, *self._carried(session)]

    @staticmethod
    def _carried(session: Session) -> Responses:
        """The errors of a step answered at once, for the answer being sent (AnsweredAlready)."""
        if not session.carried:
            return []
        out, session.carried = session.carried, []
        return out

    @property
    def waiting(self) -> int:
        """Frames not yet stepped (an upper bound: some will be superseded)."""
        return self.scheduler.waiting + len(self._incoming)

    def _admit(self) -> list[tuple[object, Responses]]:
        """Featurize every incoming frame in one call and queue them (latest wins) for the next plan.

        Returns the answers due now: frames superseded by newer ones of their session (or, should the
        featurizer fail, every incoming frame with an error)."""
        incoming, self._incoming = self._incoming, []
        if not incoming:
            return []
        try:
            features = featurize_many([frame for _, frame, _, _ in incoming], self.cfg.compiled)
        except Exception as exc:  # a featurizer bug must not stop the engine for every session
            log.exception("featurizing %d frames failed", len(incoming))
            failed = [(t, Internal(f"featurizing failed: {exc!r}", sequence=f.sequence)) for _, f, t, _ in incoming]
            out: list[tuple[object, Responses]] = []
            for (sid, frame, _, _), (ticket, err) in zip(incoming, failed, strict=True):
                out.append((ticket, [wire.error(err)]))
                out.extend(self._stepped(sid, frame.sequence))
            return out
        answers: list[tuple[object, Responses]] = []
        for (sid, _, ticket, received_at), f in zip(incoming, features, strict=True):
            for seq, old in self.scheduler.submit(sid, f, ticket, received_at):
                answers.append((old, [wire.superseded(seq, f.sequence)]))
                answers.extend(self._stepped(sid, seq, by=f.sequence))
        return answers

    def admit_now(self, frames: list[tuple[Session, FrameInput]]) -> dict[str, Responses]:
        """Route, featurize and queue frames for `step_now`; returns the answers due already, by session id."""
        now = time.monotonic()
        due: list[tuple[object, Responses]] = []
        for session, frame in frames:
            due.extend(self._route(session.session_id, frame, session.session_id, now))
        due.extend(self._admit())
        return {str(ticket): responses for ticket, responses in due}

    def step_now(self, frames: list[tuple[Session, FrameInput]]) -> dict[str, Responses]:
        """Synchronous stepping for in-process use (offline simulation, replay, training checks).

        The same featurizer, scheduler, runner and directors as the served path, without an event loop.
        """
        out = self.admit_now(frames)
        while (plan := self.scheduler.plan(self.cfg.max_batch)) is not None:
            for ticket, responses in self._process(plan):
                assert isinstance(ticket, str)
                out[ticket] = responses
        return out

    # -- the loop ---------------------------------------------------------------------------
    async def _loop(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            if not self.waiting:
                if self._stopping:
                    return
                self._wake.clear()
                await self._wake.wait()
                continue
            if self.cfg.max_wait_s > 0 and self.waiting < self.cfg.max_batch and not self._stopping:
                await asyncio.sleep(self.cfg.max_wait_s)
            elif (
                not self._awaited
                and self.cfg.gather_steps_s > 0
                and self._last_tick_rows < GATHER_BELOW_ROWS
                and self.waiting < self.cfg.max_batch
                and not self._stopping
            ):
                await self._gather_steps()
            else:
                await self._fill_batch()
            self._resolve(self._admit())
            plan = self.scheduler.plan(self.cfg.max_batch)
            if plan is None:
                continue
            if self.use_worker:
                answers = await loop.run_in_executor(self._executor, self._process, plan)
            else:
                answers = self._process(plan)
            self._resolve(answers)
            if not self.use_worker:
                await asyncio.sleep(0)  # one I/O pass between ticks: read what arrived meanwhile

    @staticmethod
    def _resolve(answers: list[tuple[object, Responses]]) -> None:
        for ticket, responses in answers:
            if isinstance(ticket, AnsweredAlready):
                ticket.deliver(responses)
                continue
            assert isinstance(ticket, asyncio.Future)
            if not ticket.done():
                ticket.set_result(responses)

    async def _gather_steps(self) -> None:
        """No frame waits for this tick: let more steps join it for up to gather_steps_s, unless a frame
        that waits for its step arrives meanwhile. (A future and a timer: `asyncio.wait_for` on an event
        made a task and cancelled it, two more event-loop passes a model step.)"""
        loop = asyncio.get_running_loop()
        self._gathering = gathering = loop.create_future()
        timer = loop.call_later(self.cfg.gather_steps_s, _end_gathering, gathering)
        try:
            await gathering
        finally:
            timer.cancel()
            self._gathering = None

    async def _fill_batch(self) -> None:
        """Read more frames into this tick while they keep coming, for at most as long as the last tick took."""
        deadline = time.monotonic() + min(self._last_tick_s, self.cfg.adaptive_wait_max_s)
        while self.waiting < self.cfg.max_batch and not self._stopping:
            before = self.submitted
            left = deadline - time.monotonic()
            if left <= 0:
                return
            # Under asyncio a 0.5 ms sleep; under uvloop one loop pass (its timers are whole
            # milliseconds and 0.5 rounds down: measured 4 us). Either way the tick starts as soon
            # as a pass brings no new frame, so the loop never spins waiting for frames.
            await asyncio.sleep(min(left, _FILL_STEP_S))
            if self.submitted == before:
                return

    def _process(self, plan: StepPlan) -> list[tuple[object, Responses]]:
        """One tick: one model step for the whole plan, then each session's director."""
        t0 = time.monotonic()
        answers: list[tuple[object, Responses]] = []
        for entry, why in plan.rejected:
            err = LimitExceeded(why, field="max_slots", sequence=entry.features.sequence)
            answers.append((entry.ticket, [wire.error(err)]))
            answers.extend(self._stepped(entry.session_id, entry.features.sequence))
        result: StepResult | None = None
        failure = ""
        if plan.batch:
            try:
                result = self.runner.step(plan)
            except Exception as exc:  # the device failing must not take the sidecar down
                failure = f"{type(exc).__name__}: {exc}"
                log.error("model step failed on tick %d (%d rows): %s", plan.tick, plan.batch, failure)
                if isinstance(exc, torch.cuda.OutOfMemoryError):
                    torch.cuda.empty_cache()
        live: list[tuple[PlanEntry, Director]] = []
        for e in plan.entries:
            session = self.sessions.get(e.session_id)
            d = session.director if session is not None else None
            if d is None:  # the session left while the step ran: its frame gets no answer
                answers.append((e.ticket, []))
            else:
                if d.last_time is None:
                    d.start_from(e.features.knob_values)
                live.append((e, d))
        directions: list[Direction | None] = [None] * len(live)
        if result is not None:
            bad = self._unfit_rows(result)
            if bad is None:
                directions = list(direct([d for _, d in live], [e for e, _ in live], plan, result))
            else:  # sessions whose predictions are not finite get the fallback; the others are directed
                fit = [i for i, (e, _) in enumerate(live) if not bad[e.rows].any()]
                directed = direct([live[i][1] for i in fit], [live[i][0] for i in fit], plan, result)
                for i, one in zip(fit, directed, strict=True):
                    directions[i] = one
                failure = "the model's predictions for this session were not finite numbers in [0, 1]"
        for (entry, director), direction in zip(live, directions, strict=True):
            answers.append((entry.ticket, self._answer(entry, director, direction, result, failure)))
            answers.extend(self._stepped(entry.session_id, entry.features.sequence))
        self.ticks += 1
        self.rows_stepped += plan.batch
        self._last_tick_s = time.monotonic() - t0
        self._last_tick_rows = plan.batch
        stats = TickStats(
            plan.tick, plan.batch, result.model_seconds if result else 0.0, time.monotonic() - t0, result is None
        )
        for cb in self.on_tick:
            cb(stats)
        return answers

    def _unfit_rows(self, result: StepResult) -> np.ndarray | None:
        """Rows whose predictions are not finite numbers in [0, 1] (a bug: counted and logged), or None."""
        heads = (result.p_fail, result.p_quit, result.frustration, result.engagement, result.skill)
        # The usual case in two reductions (NaN fails both comparisons); rows only when one fails.
        every = np.concatenate([a.ravel() for a in heads])
        tactics_finite = bool(np.isfinite(result.npc_tactic_p).all())
        if tactics_finite and (every.size == 0 or (every.min() >= 0.0 and every.max() <= 1.0)):
            return None
        if not tactics_finite:
            result.npc_tactic_p = np.nan_to_num(result.npc_tactic_p, nan=0.5, posinf=1.0, neginf=0.0)
        ok = np.ones(len(result.frustration), bool)
        for arr in heads:
            good = (arr >= 0.0) & (arr <= 1.0)  # NaN fails both
            ok &= good if good.ndim == 1 else good.all(axis=1)
        bad = ~ok
        self.output_violations += int(bad.sum())
        log.error("the model produced %d rows of non-finite or out-of-range predictions", int(bad.sum()))
        return bad

    def _answer(
        self,
        entry: PlanEntry,
        director: Director,
        direction: Direction | None,
        result: StepResult | None,
        failure: str,
    ) -> Responses:
        f = entry.features
        extra: Responses = []
        note, predictions = None, None
        if result is None or direction is None:
            values = director.toward_defaults(f.game_time)
            director.last_hints = []
            fallback = True
            err = ModelUnavailable(
                f"the model failed this tick ({failure}); sent the designer's defaults", sequence=f.sequence
            )
            extra.append(wire.error(err))
        else:
            values = direction.values
            director.fallback = fallback = False
            director.last_hints = direction.hints
            if director.session.has(Capability.INSIGHT):
                note = director.note
                predictions = _predictions(result, entry.rows, f.player_ids)
        values, wrong = director.checked(values)
        if wrong:
            self.output_violations += len(wrong)
            log.error("knob values out of range or not finite (%s): sent the defaults for them", ", ".join(wrong))
        resp = wire.guidance(
            f.sequence,
            self.model_version,
            director.policy_name,
            (director.names, values.tolist()),
            fallback=fallback,
            hints=director.last_hints,
            note=note,
            predictions=predictions,
            processing_us=min(int((time.monotonic() - entry.received_at) * 1e6), 2**32 - 1),
        )
        director.template, director.template_npcs = resp, f.all_npc_ids  # the frames until the next step
        return [resp, *extra, *self._carried(director.session)]


def _end_gathering(gathering: asyncio.Future[None] | None) -> None:
    if gathering is not None and not gathering.done():
        gathering.set_result(None)


def _predictions(result: StepResult, rows: slice, player_ids: list[str]) -> Predictions:
    """One frame's rows of a step's predictions, as plain lists."""
    return Predictions(
        player_ids,
        result.p_fail[rows, -1].tolist(),
        result.p_quit[rows, -1].tolist(),
        result.frustration[rows].tolist(),
        result.engagement[rows].tolist(),
        result.skill[rows].tolist(),
        [result.explanations.get(r, []) for r in range(rows.start, rows.stop)],
    )
