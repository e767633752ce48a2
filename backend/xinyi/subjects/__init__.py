"""The shared core: subjects, their blind index and per-partner pseudonyms."""
