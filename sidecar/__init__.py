"""metabrain sidecar: the streaming player model and adaptive director that runs beside a game."""

__version__ = "0.1.0"
