"""Admission: who may hold a stream slot, for how long. Plain data, no I/O, no clock reads.

Every stream, and every WebSocket opening handshake on its way to becoming one, holds a slot counted
against max_connections and against its client address's max_connections_per_client. A handshake
that ends without an upgrade gives its slot back at once (the transport says so); one that never
ends is forgotten after hello_timeout_s, so a flood of half-open connections cannot hold the door.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

from sidecar.errors import ConnectionLimitExceeded
from sidecar.limits import Limits

__all__ = ["Admissions", "client_of_grpc_peer"]


@dataclass
class _Slot:
    client: str
    since: float
    stream: bool  # False while a WebSocket handshake is still on its way


@dataclass
class Admissions:
    limits: Limits
    slots: dict[object, _Slot] = field(default_factory=dict)
    per_client: Counter[str] = field(default_factory=Counter)

    @property
    def open(self) -> int:
        return len(self.slots)

    @property
    def streams(self) -> int:
        return sum(1 for s in self.slots.values() if s.stream)

    @property
    def handshakes(self) -> int:
        return len(self.slots) - self.streams

    def admit(self, key: object, client: str, now: float, stream: bool = True) -> None:
        """Take a slot for `key` or raise ConnectionLimitExceeded naming the limit."""
        limits = self.limits
        if len(self.slots) >= limits.max_connections:
            raise ConnectionLimitExceeded(
                f"{len(self.slots)} streams are open or opening; the limit is max_connections={limits.max_connections}",
                field="max_connections",
            )
        if self.per_client[client] >= limits.max_connections_per_client:
            raise ConnectionLimitExceeded(
                f"this client address holds {self.per_client[client]} streams; the limit is "
                f"max_connections_per_client={limits.max_connections_per_client}",
                field="max_connections_per_client",
            )
        self.slots[key] = _Slot(client, now, stream)
        self.per_client[client] += 1

    def became_stream(self, key: object) -> None:
        slot = self.slots.get(key)
        if slot is not None:
            slot.stream = True

    def release(self, key: object) -> None:
        slot = self.slots.pop(key, None)
        if slot is not None:
            self.per_client[slot.client] -= 1
            if self.per_client[slot.client] <= 0:
                del self.per_client[slot.client]

    def sweep(self, now: float) -> None:
        """Forget handshakes that never became streams within hello_timeout_s."""
        late = [k for k, s in self.slots.items() if not s.stream and now - s.since > self.limits.hello_timeout_s]
        for key in late:
            self.release(key)


def client_of_grpc_peer(peer: str) -> str:
    """The address part of a gRPC peer string ('ipv4:127.0.0.1:5000', 'ipv6:[::1]:5000', 'unix:...')."""
    kind, _, rest = peer.partition(":")
    if kind == "ipv6" and rest.startswith("["):
        return rest[1 : rest.find("]")]
    if kind == "ipv4":
        return rest.rpartition(":")[0]
    return rest or peer
