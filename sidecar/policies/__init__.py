"""Director policies (difficulty) and the NPC hint policy."""
