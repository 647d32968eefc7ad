"""Transports: gRPC and WebSocket, both over the same protocol core and engine."""
