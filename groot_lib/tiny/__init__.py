"""The embedded tiny GR00T N1.7 default: its layout (every env) and its generator (original env)."""
