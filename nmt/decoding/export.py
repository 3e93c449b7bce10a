"""``nmt export``: a checkpoint's encoder and one-step decoder as two ONNX graphs (nmt.model.export), beside its
sentencepiece models and a JSON manifest, for onnxruntime (nmt.decoding.ort: ``backend=onnxruntime``).

The directory holds ``encoder.onnx`` ((B, S) ids and (B,) lengths -> the decoder state's fields),
``step.onnx`` (the previous pieces (B,) and the state -> log-probabilities (B, V'), the new recurrent state and,
for RNNsearch, the attention (B, S)), ``src.model``/``tgt.model`` and ``manifest.json`` (format, arch and cell,
the output-column -> piece-id map, special ids, every graph input and output with its dtype and axes, opset,
versions, and the run config). Batch and source length are dynamic. The graphs are run against the model on
random sources before anything is written (``check``), so a wrong export is refused, not shipped. The directory
is written under a temporary name and renamed: a failure leaves nothing behind.
"""

from __future__ import annotations

import io
import json
import os
import shutil
import tempfile
import warnings
from pathlib import Path
from types import ModuleType
from typing import Any

import torch
from torch import Tensor

from nmt import __version__, checkpoint
from nmt.choices import to_plain
from nmt.config.export import ExportConfig
from nmt.data.load import resolve_path
from nmt.data.tokenizer import BOS, EOS, PAD, UNK
from nmt.decoding.ensemble import restrict_members
from nmt.decoding.ort import FORMAT, INSTALL, MANIFEST, OrtModel, onnxruntime, read_manifest
from nmt.errors import NMTError
from nmt.model.base import TranslationModel
from nmt.model.export import EncoderGraph, StepGraph, state_fields, step_outputs

FILES = {"encoder": "encoder.onnx", "step": "step.onnx"}
SOURCE_AXIS = ("values", "keys", "mask", "attention")  # the names whose axis 1 is the source length S


def onnx_module() -> ModuleType:
    """The onnx package, or one line saying what to install."""
    try:
        import onnx
    except ImportError:
        raise NMTError(f"nmt export needs onnx and onnxruntime: {INSTALL}") from None
    onnxruntime()
    return onnx


def _target(output: str) -> Path:
    """The directory to create: refused when it exists as a file or a non-empty folder."""
    out = resolve_path(output)
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise NMTError(f"output={output} exists{' and is not empty' if out.is_dir() else ''}: give a new directory "
                       "(nmt export overwrites nothing)")
    return out


def export(ec: ExportConfig) -> Path:
    """Write the export of ``ec.checkpoint`` to the new directory ``ec.output``; returns it."""
    onnx = onnx_module()
    if ec.checkpoint.startswith("["):
        raise NMTError("nmt export takes one checkpoint, not an ensemble: export each member")
    out = _target(ec.output)
    ckpt = checkpoint.load(resolve_path(ec.checkpoint))
    model = ckpt.build_model()
    restrict_members([model], [ckpt.target_pieces])  # the columns search scores, as the torch backend's
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.", suffix=".tmp", dir=out.parent))
    try:
        graphs = {name: _write_graph(onnx, model, name, tmp / FILES[name], ec.opset) for name in FILES}
        ckpt.tokenizer.save(tmp)
        manifest = _manifest(ckpt, model, graphs, ec.opset, onnx.__version__)
        (tmp / MANIFEST).write_text(json.dumps(manifest, indent=1) + "\n", encoding="utf-8")
        if ec.check:
            worst = compare(model, OrtModel(*read_manifest(tmp)), *random_sources(ckpt.src_vocab))
            if worst > ec.tolerance:
                raise NMTError(f"the ONNX graphs differ from the model by up to {worst:.2g} (tolerance={ec.tolerance})"
                               f": nothing written to {out}")
        if out.is_dir():
            out.rmdir()  # empty (_target): the rename takes its place
        os.replace(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return out


def _example(model: TranslationModel, name: str) -> tuple[tuple[Tensor, ...], list[str], list[str]]:
    """Inputs to trace graph ``name`` with, and its input and output names."""
    src, src_len = random_sources(model.src_vocab, batch=2, length=3)
    fields = list(state_fields(model.cfg.arch))
    if name == "encoder":
        return (src, src_len), ["src", "src_len"], fields
    with torch.no_grad():
        state = model.encode(src, src_len)
    return (torch.tensor([BOS, EOS]), *state), ["prev", *fields], list(step_outputs(model.cfg.arch))


def _write_graph(onnx: ModuleType, model: TranslationModel, name: str, path: Path, opset: int) -> list[dict]:
    """Export graph ``name`` ("encoder" or "step") of ``model`` to ``path``; its inputs and outputs (name, dtype,
    axes) for the manifest."""
    args, inputs, outputs = _example(model, name)
    axes = {n: {0: "B", 1: "S"} if n in SOURCE_AXIS or n == "src" else {0: "B"} for n in inputs + outputs}
    module = EncoderGraph(model) if name == "encoder" else StepGraph(model)
    buffer = io.BytesIO()
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the TorchScript exporter's deprecation and batch-size notes
        torch.onnx.export(module, args, buffer, dynamo=False, input_names=inputs, output_names=outputs,
                          dynamic_axes=axes, opset_version=opset)
    graph = onnx.load_from_string(buffer.getvalue())
    _set_reset_form(onnx, graph, model.cfg.reset_after)
    onnx.save(graph, str(path))
    return [_describe(onnx, v, io) for io, values in (("input", graph.graph.input), ("output", graph.graph.output))
            for v in values]


def _set_reset_form(onnx: ModuleType, graph: Any, reset_after: bool) -> None:
    """Mark every GRU node with the model's candidate form: ``linear_before_reset=1`` is torch's reset-after GRU,
    0 the paper's reset-before one (nmt.model.gru), which the graph computes through the same weights."""
    for node in graph.graph.node:
        if node.op_type == "GRU":
            kept = [a for a in node.attribute if a.name != "linear_before_reset"]
            del node.attribute[:]
            node.attribute.extend([*kept, onnx.helper.make_attribute("linear_before_reset", int(reset_after))])


def _describe(onnx: ModuleType, value: Any, kind: str) -> dict:
    """A graph input or output as plain values: name, input/output, dtype and axes (a name where dynamic)."""
    tensor = value.type.tensor_type
    dtype = onnx.helper.tensor_dtype_to_np_dtype(tensor.elem_type).name
    shape = [d.dim_param or d.dim_value for d in tensor.shape.dim]
    return {"name": value.name, "kind": kind, "dtype": dtype, "shape": shape}


def _manifest(ckpt: checkpoint.Checkpoint, model: TranslationModel, graphs: dict[str, list[dict]], opset: int,
              onnx_version: str) -> dict[str, Any]:
    cfg = model.cfg

    def names(name: str, kind: str) -> list[str]:
        return [v["name"] for v in graphs[name] if v["kind"] == kind]

    return {"format": FORMAT, "nmt_version": __version__, "opset": opset, "torch_version": torch.__version__,
            "onnx_version": onnx_version, "arch": str(cfg.arch), "cell_type": str(cfg.cell_type),
            "cell": str(cfg.cell), "reset_after": cfg.reset_after, "attends": model.attends,
            "special_ids": {"pad": PAD, "unk": UNK, "bos": BOS, "eos": EOS},
            "vocab": {"src": ckpt.src_vocab, "tgt": ckpt.tgt_vocab}, "columns": model.columns.tolist(),
            "tokenizer": {"src": "src.model", "tgt": "tgt.model"},
            "graphs": {name: {"file": FILES[name], "inputs": names(name, "input"), "outputs": names(name, "output"),
                              "values": graphs[name]} for name in FILES},
            "checkpoint": str(ckpt.path), "train_step": ckpt.step, "config": to_plain(ckpt.config)}


def random_sources(vocab: int, batch: int = 4, length: int = 9, seed: int = 0) -> tuple[Tensor, Tensor]:
    """(B, S) random source ids (no PAD, padding after each length) and lengths (B,), the first S and the last 1."""
    gen = torch.Generator().manual_seed(seed)
    src = torch.randint(1, max(vocab, 2), (batch, length), generator=gen)
    src_len = torch.randint(1, length + 1, (batch,), generator=gen)
    src_len[0], src_len[-1] = length, 1
    src[torch.arange(length).unsqueeze(0) >= src_len.unsqueeze(1)] = PAD
    return src, src_len


@torch.no_grad()
def compare(model: TranslationModel, ort_model: OrtModel, src: Tensor, src_len: Tensor, steps: int = 3) -> float:
    """The largest |difference| between the model and its graphs on sources (B, S) of lengths (B,): in the
    encoder's state, then in each of ``steps`` steps' log-probabilities, new state and attention (fed the
    model's greedy choices)."""
    want, got = model.encode(src, src_len), ort_model.encode(src, src_len)
    worst = max(float((a.float() - b.float()).abs().max()) for a, b in zip(want, got, strict=True))
    prev = torch.full((src.shape[0],), BOS, dtype=torch.long)
    for _ in range(steps):
        a, b = model.step(prev, want), ort_model.step(prev, want)
        pairs = [(a.scores, b.scores), (a.state[0], b.state[0])]
        if a.attention is not None:
            pairs.append((a.attention, b.attention))
        worst = max(worst, *(float((x - y).abs().max()) for x, y in pairs))
        want, prev = a.state, model.columns[a.scores.argmax(-1)]
    return worst
