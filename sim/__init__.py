"""The headless simulator: a seeded arena game, simulated players, clients, replay and the demo."""
