"""The typed config of ``nmt export`` (ONNX graphs of a trained model: nmt.decoding.export) and the decoding
backends a translating command may run (``backend=torch|onnxruntime``)."""

from __future__ import annotations

from dataclasses import dataclass

from omegaconf import MISSING

from nmt.choices import POSITIVE, RANGES, Checked, Choice, Range


class Backend(Choice):
    torch = "torch"  # the checkpoint's model in torch
    onnxruntime = "onnxruntime"  # the graphs of an ``nmt export`` directory in onnxruntime


@dataclass
class ExportConfig(Checked):
    """``nmt export``: a checkpoint's encoder and one-step decoder as ONNX graphs, beside its tokenizer and a
    manifest, in a new directory."""

    checkpoint: str = MISSING  # a checkpoint file, or a run directory (its best.pt)
    output: str = MISSING  # the directory to create: it must not exist, or be empty (nothing is overwritten)
    opset: int = 17  # the ONNX opset of the graphs (14-20: what torch's TorchScript exporter writes)
    check: bool = True  # run the graphs in onnxruntime against the model before writing, and refuse a mismatch
    tolerance: float = 1e-4  # the largest |difference| the check allows in states and log-probabilities


# the ranges of the export keys, beside the other configs' in nmt.choices.RANGES (at its size limit)
RANGES["ExportConfig"] = {"opset": Range(14, 20), "tolerance": POSITIVE}
