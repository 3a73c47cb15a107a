"""The training engine: checkpoints, exact resume state, RNG capture, the distributed runtime and launcher, speed settings."""
