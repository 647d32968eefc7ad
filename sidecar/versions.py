"""The protocol versions this sidecar speaks (plain constants: the protocol core reads them without
importing the generated code)."""

PROTOCOL_VERSION = 1
SUPPORTED_PROTOCOL_VERSIONS = frozenset({1})

__all__ = ["PROTOCOL_VERSION", "SUPPORTED_PROTOCOL_VERSIONS"]
