"""Release tools run from the repository (``python -m scripts.build_wheels``); never installed."""
