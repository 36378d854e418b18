"""aebench: train auto-encoder-family models on standard tasks, measure them, rank them against baselines."""

__version__ = "0.1.0"
