"""Temporal workflows: deterministic; all I/O goes through activities."""
