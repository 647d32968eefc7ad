"""How the engine runs: device, batch and wait limits, threads, the model clock."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["EngineConfig"]


@dataclass
class EngineConfig:
    device: str = "cpu"
    max_batch: int = 8192
    max_wait_s: float = 0.0
    # While frames keep arriving, read them into the coming tick for up to as long as the last tick
    # took (at most this long): under load the batch grows instead of the per-tick cost repeating
    # for a handful of frames; when a pass over the sockets brings nothing, the tick runs at once.
    adaptive_wait_max_s: float = 0.004
    max_slots: int = 16384
    default_policy: str = "portfolio"  # per game: the candidate its players stay longest with (portfolio.py)
    levels: int = 11  # candidate difficulty levels scored per player per tick
    cuda_graphs: bool = True
    torch_threads: int = 1
    bf16: bool = False  # run the model in bfloat16 (GPUs)
    # Step on a worker thread (None: only on CUDA). On a CPU every torch op hands the GIL back and
    # forth, and with the event loop busy each hand-back waits a switch interval (profiled under
    # load: the runner thread spent its time waiting for the GIL; BENCHMARKS.md), so the CPU engine
    # steps on the loop thread between I/O passes. On CUDA (or with a runner process) the worker
    # lets the loop read frames while the model computes.
    worker_thread: bool | None = None
    # Model steps per second of a session's game time: None takes the checkpoint's (the rate it was
    # trained at); 0 steps the model on every frame (`serve --model-every-frame`).
    model_rate_hz: float | None = None
    # Fold and ease the frames between model steps, featurize a tick's frames and step a small tick's
    # model with the compiled kernels where they are built (between.py, features/_frame_kernel.c,
    # model_step.py); False: the Python and torch versions (`serve --pure-python`, for comparison).
    compiled: bool = True
    # A frame that takes a model step while the game sends faster than the model rate (frames were folded
    # into it), in real time, is answered at once from the session's latest prediction, as the frames
    # between steps are; its step's prediction answers the frames after it. So no frame waits for a tick:
    # a step's answer comes one frame later (16.7 ms at 60 Hz). False: such a frame waits for its step, as
    # at the model rate or slower, or from a client faster than real time (`serve --wait-for-steps`).
    answer_steps_at_once: bool = True
    # When no frame waits for the coming tick's answers (every step in it was answered at once), the tick
    # waits this long for more steps to join it: at 60 Hz the steps are spread over the model period, and
    # a tick of a few rows costs nearly what one of dozens does (measured: 100-150 WebSocket sessions at
    # 60 Hz, ~300 ticks/s of ~2 rows; gathered over 8 ms, ~85 ticks/s and 12-16% less CPU; BENCHMARKS.md).
    # A frame that does wait (a game at the model rate or slower) ends the wait at once.
    gather_steps_s: float = 0.008
