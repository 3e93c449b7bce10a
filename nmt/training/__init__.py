"""Training: the loop, a run's setup and files, validation, optimisation, DDP, averaging."""
