"""Serving: how sessions reach the protocol core and the engine (transports, the stream handler,
the server and its front ends, admission and auth)."""
