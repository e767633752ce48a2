"""xinyi+ (信易+): the backend of the citizen honesty-card app."""

__version__ = "0.1.0"
