"""Sweep support: the end-of-sweep summary (Hydra callback)."""
