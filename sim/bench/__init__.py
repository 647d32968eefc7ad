"""Benchmarks: the model step alone (`bench-model`) and whole servers under load (`bench`)."""

# The servers `metabrain bench` compares, and the transports it drives them over.
SERVERS = ("echo", "naive", "sidecar", "sidecar-every-frame", "sidecar-pure-python")
TRANSPORTS = ("grpc", "ws")
