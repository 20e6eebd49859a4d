"""Training shared by both families: the loop, checkpoints, mixing, objectives."""
