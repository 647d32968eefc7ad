"""Training pipeline: recordings -> examples -> trained checkpoint -> evaluation report."""
