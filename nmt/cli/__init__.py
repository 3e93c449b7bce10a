"""The ``nmt`` command: Hydra at the edge, one small function per verb."""
