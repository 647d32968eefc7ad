"""Operations: what watches and keeps what happens (metrics, the dashboard, logs, recordings, the
experiment report)."""
