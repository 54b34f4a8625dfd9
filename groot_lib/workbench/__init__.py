"""Tools env only (never torch): envs, kernels, notebook runner, pre-flight, HTML, CLI."""
