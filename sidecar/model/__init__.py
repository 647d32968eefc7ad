"""The streaming player model and its checkpoints."""
