"""``make bench``: what the workbench costs next to the model work it wraps (see bench/run.py)."""
