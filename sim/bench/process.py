"""A server in a child process: started with `--ports-file`, its ports read once it listens.

The bench runs its servers this way, and the tests run the sidecar this way to signal and kill it.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

from sidecar.serving.ports_file import read_ports_file
from sidecar.serving.transports.ws_server import WS_PATH


def _process_cpu_clock(pid: int) -> int:
    """The clock id of another process's CPU time (Linux: CPUCLOCK_SCHED of the whole process, as glibc's
    clock_getcpuclockid makes it)."""
    return (~pid << 3) | 2


class ServerProcess:
    def __init__(self, name: str, cmd: list[str], workdir: Path, cores: tuple[int, ...] = ()) -> None:
        """cmd: the server's command line without `--ports-file`; cores: pin it there (empty: anywhere)."""
        self.name = name
        ports_file = workdir / f"{name}.ports"
        ports_file.unlink(missing_ok=True)
        self.log_path = workdir / f"{name}.log"
        self._log = open(self.log_path, "w")  # noqa: SIM115 (closed in stop())
        usable = set(cores) & os.sched_getaffinity(0)
        if cores and not usable:
            # Pinning silently skipped would put the server on the load generator's core.
            print(
                f"{name}: cannot pin to cores {sorted(cores)}: this process may run only on "
                f"{sorted(os.sched_getaffinity(0))}; the server runs unpinned",
                file=sys.stderr,
            )
        self.proc = subprocess.Popen(
            [*cmd, "--ports-file", str(ports_file)],
            stdout=self._log,
            stderr=subprocess.STDOUT,
            preexec_fn=(lambda: os.sched_setaffinity(0, usable)) if usable else None,
        )
        deadline = time.time() + 90
        while not ports_file.exists():
            if self.proc.poll() is not None or time.time() > deadline:
                self.stop()
                raise RuntimeError(f"{name} did not start (exit {self.proc.poll()}):\n{self.log()}")
            time.sleep(0.05)
        self.ports = read_ports_file(ports_file)

    @property
    def pid(self) -> int:
        return self.proc.pid

    def target(self, transport: str) -> str:
        """Where a client connects: host:port for gRPC, a ws:// URL for WebSocket."""
        if transport == "grpc":
            return f"127.0.0.1:{self.ports['grpc']}"
        return f"ws://127.0.0.1:{self.ports['ws']}{WS_PATH}"

    def log(self) -> str:
        self._log.flush()
        return self.log_path.read_text()

    def _tree_stats(self) -> dict[int, list[str]]:
        """/proc/PID/stat fields (after the command name) of the server and its live descendants."""
        stats: dict[int, list[str]] = {}
        for stat in Path("/proc").glob("[0-9]*/stat"):
            try:
                stats[int(stat.parent.name)] = stat.read_text().rsplit(")", 1)[1].split()
            except (OSError, ValueError, IndexError):
                continue  # exited while we looked
        tree, frontier = {self.pid}, {self.pid}
        while frontier:
            frontier = {pid for pid, f in stats.items() if int(f[1]) in frontier}
            tree |= frontier
        return {pid: stats[pid] for pid in sorted(tree) if pid in stats}

    def processes(self) -> list[int]:
        """The server's pid and its live descendants (`serve --front-ends N` is a tree of processes)."""
        return [self.pid, *(pid for pid in self._tree_stats() if pid != self.pid)]

    def cpu_seconds(self) -> float:
        """CPU time of the whole process tree, to the nanosecond where Linux gives each process's CPU clock
        (/proc's utime + stime count 10 ms ticks: a 60 Hz session's ~0.02 cores over 6 s is 12 of them)."""
        total = 0.0
        for pid, fields in self._tree_stats().items():
            try:
                total += time.clock_gettime(_process_cpu_clock(pid))
            except OSError:  # exited, or no such clock here: its ticks
                total += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
        return total

    def rss_bytes(self) -> int:
        """Resident memory summed over the process tree (pages shared between them count more than once)."""
        total = 0
        for pid in self.processes():
            try:
                lines = Path(f"/proc/{pid}/status").read_text().splitlines()
            except OSError:
                continue
            total += sum(int(line.split()[1]) * 1024 for line in lines if line.startswith("VmRSS:"))
        if not total:
            raise RuntimeError(f"no VmRSS for {self.name} (pid {self.pid})")
        return total

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(15)
        self._log.close()
