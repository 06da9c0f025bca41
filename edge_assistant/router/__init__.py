"""Router: picks the modifier (or the base) for each message, and says why."""
