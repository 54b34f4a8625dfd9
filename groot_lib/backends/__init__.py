"""torch, inside a kernel: the backend contract, process setup, noise, and the two implementations."""
