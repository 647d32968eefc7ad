"""`metabrain replay`: re-send recorded frames to a sidecar and report how its guidance differs.

Frames are re-sent one at a time, each after the previous one's answer, so every frame gets guidance
and the comparison is frame by frame. The baseline is the guidance in the recording, or a second
sidecar (`--against`). A recording whose live session had superseded frames cannot match exactly:
those frames were folded into later ones live, and the report counts them.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import grpc
import numpy as np

from sidecar.features import KnobSet
from sidecar.features.knobs import values_in_order
from sidecar.operations.recording import read_recording
from sidecar.wire.schema import pb, pb_grpc


class LockstepClient:
    def __init__(self, target: str, token: str = "") -> None:
        self.channel = grpc.insecure_channel(target)
        grpc.channel_ready_future(self.channel).result(timeout=30)
        self._q: queue.Queue[pb.SessionRequest | None] = queue.Queue()
        md = (("authorization", f"Bearer {token}"),) if token else ()
        self._call = pb_grpc.BrainServiceStub(self.channel).Session(self._gen(), metadata=md)
        self._responses: Iterator[pb.SessionResponse] = iter(self._call)
        self._lock = threading.Lock()

    def _gen(self) -> Iterator[pb.SessionRequest]:
        while (item := self._q.get()) is not None:
            yield item

    def hello(self, h: pb.Hello) -> pb.Welcome:
        self._q.put(pb.SessionRequest(hello=h))
        resp = next(self._responses)
        if resp.WhichOneof("kind") != "welcome":
            raise RuntimeError(f"sidecar refused the replayed hello: {resp}")
        return resp.welcome

    def frame(self, f: pb.Frame) -> pb.SessionResponse:
        self._q.put(pb.SessionRequest(frame=f))
        for resp in self._responses:
            kind = resp.WhichOneof("kind")
            if kind == "guidance" and resp.guidance.sequence == f.sequence:
                return resp
            if kind in ("error", "superseded"):
                return resp
        raise RuntimeError("the sidecar closed the stream during replay")

    def close(self) -> None:
        self._q.put(None)
        self.channel.close()


@dataclass
class ReplayResult:
    file: str
    frames: int
    compared: int
    exact: int  # frames whose knobs and p_fail agree within 1e-6
    max_knob_diff: float  # in the knobs' own units
    mean_knob_diff: float
    max_p_fail_diff: float
    recorded_superseded: int
    baseline_difficulty: list[float] = field(default_factory=list)
    replay_difficulty: list[float] = field(default_factory=list)

    @property
    def max_difficulty_diff(self) -> float:
        """The largest difference of the overall difficulty level (0..1, the knobs combined)."""
        pairs = zip(self.baseline_difficulty, self.replay_difficulty, strict=True)
        return max((abs(a - b) for a, b in pairs), default=0.0)


def _difficulty(g: pb.Guidance, knobs: KnobSet) -> float:
    return knobs.to_difficulty(values_in_order(g.knobs, knobs.names))


def replay_file(
    path: str | Path, target: str, against: str | None = None, policy: str | None = None, token: str = ""
) -> ReplayResult:
    rec = read_recording(path)
    requests = [r for _, r in rec.requests()]
    hello = next(r.hello for r in requests if r.WhichOneof("kind") == "hello")
    h = pb.Hello()
    h.CopyFrom(hello)
    h.resume_token = ""
    h.recording_consent = False
    if policy:
        h.policy = policy
    knobs = KnobSet.from_specs(list(h.knobs))
    recorded = {r.guidance.sequence: r.guidance for _, r in rec.responses() if r.WhichOneof("kind") == "guidance"}
    superseded = sum(1 for _, r in rec.responses() if r.WhichOneof("kind") == "superseded")
    clients = [LockstepClient(target, token)] + ([LockstepClient(against, token)] if against else [])
    for c in clients:
        c.hello(h)
    res = ReplayResult(str(path), 0, 0, 0, 0.0, 0.0, 0.0, superseded)
    diffs: list[float] = []
    try:
        for r in requests:
            if r.WhichOneof("kind") != "frame":
                continue
            res.frames += 1
            answers = [c.frame(r.frame) for c in clients]
            new = answers[0].guidance if answers[0].WhichOneof("kind") == "guidance" else None
            base = (
                answers[1].guidance
                if len(answers) > 1 and answers[1].WhichOneof("kind") == "guidance"
                else recorded.get(r.frame.sequence)
                if not against
                else None
            )
            if new is None or base is None:
                continue
            res.compared += 1
            a = np.array([k.value for k in new.knobs])
            b = np.array([k.value for k in base.knobs])
            d = float(np.max(np.abs(a - b))) if a.shape == b.shape and a.size else float("inf")
            pf = abs(new.insights[0].p_fail - base.insights[0].p_fail) if new.insights and base.insights else 0.0
            diffs.append(d)
            res.max_p_fail_diff = max(res.max_p_fail_diff, pf)
            res.exact += d <= 1e-6 and pf <= 1e-6
            res.baseline_difficulty.append(_difficulty(base, knobs))
            res.replay_difficulty.append(_difficulty(new, knobs))
    finally:
        for c in clients:
            c.close()
    res.max_knob_diff = max(diffs) if diffs else 0.0
    res.mean_knob_diff = float(np.mean(diffs)) if diffs else 0.0
    return res


def report_table(results: list[ReplayResult], baseline: str, candidate: str) -> str:
    lines = [
        f"Each frame's guidance from {candidate} against {baseline}: the knob values, the overall difficulty",
        "level they make (0 easiest .. 1 hardest) and the insight's p_fail (a probability). 'identical': the",
        "frames whose knobs and p_fail agree within 1e-6. 'superseded live': frames the live session folded",
        "into later ones (latest wins), which a frame-by-frame replay cannot match exactly.",
        "",
        f"{'recording':<36} {'frames':>6} {'compared':>8} {'identical':>9} {'max |Δ level|':>13} "
        f"{'max |Δ knob| (knob units)':>25} {'max |Δ p_fail|':>14} {'superseded live':>15}",
    ]
    for r in results:
        lines.append(
            f"{Path(r.file).name[:36]:<36} {r.frames:>6} {r.compared:>8} {r.exact:>9} {r.max_difficulty_diff:>13.4f} "
            f"{r.max_knob_diff:>25.4f} {r.max_p_fail_diff:>14.4f} {r.recorded_superseded:>15}"
        )
    total = sum(r.compared for r in results)
    same = sum(r.exact for r in results)
    lines.append(f"\n{len(results)} recordings, {total} frames compared, {same} identical ({same / max(total, 1):.1%})")
    return "\n".join(lines)


PNG_FILES = 8  # recordings drawn in the PNG: those that differ most


def report_png(results: list[ReplayResult], path: str | Path, baseline: str, candidate: str) -> str:
    """Draws the recordings whose difficulty differs most (at most PNG_FILES); returns what it drew."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    shown = sorted(results, key=lambda r: -r.max_difficulty_diff)[:PNG_FILES]
    fig, axes = plt.subplots(len(shown), 1, figsize=(10, 2.2 * len(shown) + 0.8), squeeze=False)
    for ax, r in zip(axes[:, 0], shown, strict=True):
        ax.plot(r.baseline_difficulty, label=baseline, lw=2, alpha=0.7)
        ax.plot(r.replay_difficulty, label=candidate, lw=1, ls="--")
        ax.set_ylabel("difficulty")
        ax.set_title(f"{Path(r.file).name} (max |Δ level| {r.max_difficulty_diff:.3f})", fontsize=8)
        ax.set_ylim(-0.02, 1.02)
    axes[0, 0].legend(fontsize=8)
    axes[-1, 0].set_xlabel("frame")
    what = f"the {len(shown)} of {len(results)} recordings whose difficulty differs most"
    fig.suptitle(f"Replay: {candidate} against {baseline}: {what}", fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return what
