"""Data-parallel training with PyTorch's own engine: torchrun, ``torch.distributed`` and DistributedDataParallel.

``torchrun --nproc_per_node=N -m nmt train ...`` starts N processes and gives each the environment variables
RANK, WORLD_SIZE, LOCAL_RANK, MASTER_ADDR and MASTER_PORT; :func:`session` reads them, picks the device
(``cuda:LOCAL_RANK`` or the CPU) and joins the process group (NCCL on GPUs, gloo on CPUs). Without torchrun
everything here is a no-op for a single process, so ``nmt train`` behaves exactly as before.

How a step is shared: every rank builds the same shuffled batch list from the same seed; at each update rank r
takes global batch ``b + r`` (``b`` = batches already used this epoch), so the N ranks use N disjoint batches.
Each rank sums its loss over its target tokens, the token counts are summed over ranks (all-reduce), and each
rank back-propagates ``loss_r / (T / N)`` with T the total; DDP averages gradients over the N ranks, so the
update equals one process's update on the union of the N batches with loss ``sum_r loss_r / T``.
With ``train.accumulate=K`` each rank runs K micro-batches (global batches ``b + k N + r``) before the update, T
counts the tokens of all N K batches, and DDP syncs gradients on the last micro-batch only (:meth:`Dist.no_sync`).

Only rank 0 logs, validates and writes checkpoints; the others wait for it, then take its training state, so
early stopping, learning-rate drops, time budgets and stop signals end every rank at the same update.
"""

from __future__ import annotations

import contextlib
import gc
import logging
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import torch
from torch import Tensor, nn

from nmt.choices import Device, DistBackend
from nmt.errors import NMTError

# Ranks other than 0 wait this long for rank 0 to validate and write checkpoints (torch's default is 10-30 min).
TIMEOUT = timedelta(hours=2)


def resolve_device(name: str, local_rank: int = 0) -> torch.device:
    """``train.device``: ``auto`` (a GPU when one is visible, else the CPU), ``cpu`` or ``cuda``.

    Under torchrun each process takes GPU ``LOCAL_RANK``.
    """
    name = Device.parse(name, "train.device")
    if name == Device.cpu or (name == Device.auto and not torch.cuda.is_available()):
        return torch.device("cpu")
    if not torch.cuda.is_available():
        raise NMTError("train.device=cuda but no CUDA GPU is visible (torch.cuda.is_available() is False); "
                       "use train.device=cpu or auto")
    if local_rank >= torch.cuda.device_count():
        raise NMTError(f"LOCAL_RANK {local_rank} but only {torch.cuda.device_count()} GPUs are visible: "
                       "give torchrun --nproc_per_node at most the number of GPUs")
    return torch.device("cuda", local_rank)


def resolve_backend(name: str, device: torch.device) -> str:
    """``train.dist_backend``: ``auto`` (NCCL with GPUs, gloo on CPUs), ``nccl`` or ``gloo``."""
    name = DistBackend.parse(name, "train.dist_backend")
    if name == DistBackend.nccl and device.type != "cuda":
        raise NMTError("train.dist_backend=nccl needs CUDA GPUs but training runs on the CPU; "
                       "use train.dist_backend=gloo (or auto)")
    if name == DistBackend.auto:
        return "nccl" if device.type == "cuda" else "gloo"
    return str(name)


class _Loss(nn.Module):
    """The model's summed loss as ``forward``, so DistributedDataParallel can hook gradient syncing into it."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, batch, label_smoothing: float) -> Tensor:
        return self.model.loss(batch, label_smoothing)


@dataclass
class Dist:
    """This process's place in the job: rank, number of processes, device. ``Dist()`` is a single process."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    device: torch.device = field(default_factory=lambda: torch.device("cpu"))

    @property
    def enabled(self) -> bool:
        """True when several processes train together."""
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        """Rank 0: the one that logs, validates and writes checkpoints."""
        return self.rank == 0

    def wrap(self, model: nn.Module) -> Callable[..., Tensor]:
        """``loss_fn(batch, label_smoothing)``: ``model.loss`` (looked up at each call), through DDP when several
        processes train (DDP starts every rank from rank 0's weights and averages gradients in ``backward``)."""
        if not self.enabled:
            return _Loss(model)
        from torch.nn.parallel import DistributedDataParallel

        ids = [self.device.index] if self.device.type == "cuda" else None
        return DistributedDataParallel(_Loss(model), device_ids=ids)

    def sum_loss_tokens(self, loss: Tensor, n_tokens: int) -> tuple[float, int]:
        """This update's loss and target tokens summed over the ranks (one all-reduce)."""
        if not self.enabled:
            return loss.item(), n_tokens
        both = torch.stack([loss.detach().double(), torch.tensor(float(n_tokens), dtype=torch.float64,
                                                                  device=loss.device)]).to(self.device)
        torch.distributed.all_reduce(both)
        total, tokens = both.tolist()
        return total, int(round(tokens))

    def sum_over_ranks(self, value: Tensor | int) -> float | int:
        """``value`` (a 0-dim tensor or a number) summed over the ranks in float64, one all-reduce; with one process,
        the value itself (a number as it is, a tensor as ``.item()``)."""
        if not self.enabled:
            return value.item() if isinstance(value, Tensor) else value
        total = torch.as_tensor(value).detach().to(self.device, torch.float64)
        torch.distributed.all_reduce(total)
        return total.item()

    def no_sync(self, loss_fn: Callable[..., Tensor], last: bool) -> contextlib.AbstractContextManager:
        """Around a micro-batch's forward and backward: DDP's ``no_sync`` for all but the ``last`` micro-batch of an
        update, so gradients sum locally and the ranks average them once; nothing with one process."""
        if self.enabled and not last:
            return loss_fn.no_sync()  # type: ignore[attr-defined]
        return contextlib.nullcontext()

    def loss_denominator(self, total_tokens: int) -> float | int:
        """What each rank divides its summed loss by before ``backward``: T / N, since DDP averages the N
        gradients; with one process, the token count itself (exactly as a plain training step)."""
        return total_tokens if not self.enabled else total_tokens / self.world_size

    def from_main(self, value: Any) -> Any:
        """Rank 0's ``value`` on every rank (any picklable object); identity with one process."""
        if not self.enabled:
            return value
        box = [value]
        torch.distributed.broadcast_object_list(box, src=0, device=self.device)
        return box[0]

    def barrier(self) -> None:
        if self.enabled:
            torch.distributed.barrier(device_ids=[self.device.index] if self.device.type == "cuda" else None)

    @contextlib.contextmanager
    def main_first(self) -> Iterator[None]:
        """Run the block in three waves: rank 0 (trains sentencepiece, fills the caches), then the first process
        of every other node (fills that node's caches, if they are not shared), then all other processes
        (which find everything cached). Each process meets the same two barriers."""
        wave = 0 if self.is_main else 1 if self.local_rank == 0 else 2
        for _ in range(wave):
            self.barrier()
        yield
        for _ in range(2 - wave):
            self.barrier()


def from_env(device_name: str, backend_name: str) -> Dist:
    """The Dist of this process from torchrun's environment variables; a single process without them."""
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    device = resolve_device(device_name, local_rank)
    if world_size <= 1:
        return Dist(device=device)
    if not torch.distributed.is_available():
        raise NMTError("WORLD_SIZE > 1 but this torch build has no torch.distributed")
    backend = resolve_backend(backend_name, device)
    if device.type == "cuda":
        torch.cuda.set_device(device)
    if not torch.distributed.is_initialized():
        torch.distributed.init_process_group(backend=backend, init_method="env://", timeout=TIMEOUT)
    return Dist(rank=torch.distributed.get_rank(), world_size=torch.distributed.get_world_size(),
                local_rank=local_rank, device=device)


@contextlib.contextmanager
def session(device_name: str = "auto", backend_name: str = "auto") -> Iterator[Dist]:
    """Join the process group for the block (when started by torchrun) and leave it afterwards."""
    dist = from_env(device_name, backend_name)
    if not dist.is_main:  # one voice: the other ranks report warnings and errors only
        logging.getLogger("nmt").setLevel(logging.WARNING)
    try:
        yield dist
        dist.barrier()  # leave together: no rank tears its connections down while another still talks to it
    finally:
        if dist.enabled and torch.distributed.is_initialized():
            # DDP's reducer sits in reference cycles; freed at interpreter exit, after the group, its gloo work can
            # abort the process ("terminate called without an active exception"), so free it while the group lives
            gc.collect()
            torch.distributed.destroy_process_group()
