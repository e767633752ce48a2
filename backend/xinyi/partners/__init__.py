"""Partner merchants: per-partner pseudonyms of citizens."""
