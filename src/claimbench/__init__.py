"""claimbench: re-run published deep-learning claims and judge them against pre-registered criteria."""

__version__ = "0.1.0"
