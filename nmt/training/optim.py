"""The optimizer and the learning-rate schedule, as pure functions of the training config."""

from __future__ import annotations

import math

import torch

from nmt.choices import Optimizer, Schedule
from nmt.config import TrainConfig


def learning_rate(step: int, cfg: TrainConfig, lr_scale: float) -> float:
    """Learning rate at update ``step`` (1-based): linear warm-up, then the schedule, times plateau drops."""
    warm = min(1.0, step / cfg.warmup_steps) if cfg.warmup_steps > 0 else 1.0
    decay = 1.0
    if cfg.schedule == Schedule.inverse_sqrt:
        decay = math.sqrt(max(cfg.warmup_steps, 1) / max(step, cfg.warmup_steps, 1))
    return max(cfg.lr * warm * decay * lr_scale, cfg.min_lr if cfg.schedule == Schedule.plateau else 0.0)


def make_optimizer(model: torch.nn.Module, cfg: TrainConfig) -> torch.optim.Optimizer:
    """Adam or Adadelta (Cho et al. 2014's choice) over the model's parameters."""
    if cfg.optimizer == Optimizer.adadelta:
        return torch.optim.Adadelta(model.parameters(), lr=cfg.lr, rho=cfg.adadelta_rho, eps=cfg.adadelta_eps,
                                    weight_decay=cfg.weight_decay)
    return torch.optim.Adam(model.parameters(), lr=cfg.lr, betas=tuple(cfg.adam_betas), weight_decay=cfg.weight_decay)
