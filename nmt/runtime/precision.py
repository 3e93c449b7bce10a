"""``train.precision``: which arithmetic training's forward pass runs in. ``auto`` takes bf16 autocast where the
device multiplies bf16 natively (a CPU with AVX512-BF16 or AMX, a GPU with bf16) and fp32 elsewhere: bf16 on a
device that emulates it would be slower than fp32, not faster."""

from __future__ import annotations

import logging

import torch

from nmt.choices import Precision

log = logging.getLogger("nmt.train")


def cpu_has_bf16() -> bool:
    """Whether this CPU multiplies bf16 natively (AVX512-BF16 or AMX), by oneDNN's own check."""
    try:
        return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except (AttributeError, RuntimeError):  # a torch without oneDNN
        return False


def native_bf16(device: torch.device) -> bool:
    """Whether ``device`` multiplies bf16 natively."""
    if device.type == "cuda":
        return torch.cuda.is_bf16_supported(including_emulation=False)
    return device.type == "cpu" and cpu_has_bf16()


def resolve(precision: Precision, device: torch.device, has_bf16=native_bf16) -> Precision:
    """``precision`` made concrete for ``device``: fp32 or bf16, said in the log (``has_bf16``: a test's stand-in
    for the hardware check)."""
    native, name = has_bf16(device), "CPU" if device.type == "cpu" else "GPU"
    if precision == Precision.auto:
        chosen = Precision.bf16 if native else Precision.fp32
        why = "multiplies bf16 natively" if native else "has no native bf16 (AVX512-BF16, AMX or a bf16 GPU)"
        log.info(f"train.precision=auto: {chosen.value}, as this {name} {why}")
        return chosen
    if precision == Precision.bf16 and not native:
        log.warning(f"train.precision=bf16: this {name} has no native bf16 (AVX512-BF16 or AMX): expect it "
                    "slower than fp32")
    return precision
