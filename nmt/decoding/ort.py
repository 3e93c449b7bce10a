"""Decoding with onnxruntime (``backend=onnxruntime``): :class:`OrtModel` runs the two graphs of an ``nmt export``
directory (nmt.decoding.export) behind the decoding contract (nmt.model.contract.Decodable), so that greedy,
beam, n-best, sampling, prefixes and constraints (nmt.decoding.search) run over them unchanged.

The state stays a torch NamedTuple between steps (search reorders it with torch); tensors become numpy arrays at
the sessions' boundary and back, without copies where the memory allows. CPU only, fp32.
Letters: B batch, S source length, V' output columns.
"""

from __future__ import annotations

import json
from pathlib import Path
from types import ModuleType
from typing import Any

import torch
from torch import Tensor

from nmt.checkpoint import typed
from nmt.choices import Arch
from nmt.config import Config
from nmt.data.batching import Batch
from nmt.data.tokenizer import Tokenizer
from nmt.errors import NMTError
from nmt.model.base import TranslationModel
from nmt.model.contract import State, Step
from nmt.model.decoders import AttentionState, SummaryState

FORMAT = "nmt-onnx-1"  # the manifest's format version
MANIFEST = "manifest.json"
INSTALL = "pip install 'nmt[onnx]' (onnx and onnxruntime)"


def onnxruntime() -> ModuleType:
    """The onnxruntime module, or one line saying what to install."""
    try:
        import onnxruntime as ort
    except ImportError:
        raise NMTError(f"backend=onnxruntime needs onnxruntime: {INSTALL}") from None
    return ort


def read_manifest(folder: str | Path) -> tuple[Path, dict[str, Any]]:
    """An export directory and its manifest; a folder that is not one (a run directory, say) is one line."""
    folder = Path(folder)
    path = folder / MANIFEST
    if not path.is_file():
        hint = " (a checkpoint or run directory: use backend=torch, or `nmt export` it first)" if (
            folder.is_file() or (folder / "best.pt").is_file() or (folder / "last.pt").is_file()) else ""
        raise NMTError(f"{folder}: not an nmt export directory, no {MANIFEST}{hint}")
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
        raise NMTError(f"{path}: unreadable manifest ({type(err).__name__})") from None
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        got = manifest.get("format") if isinstance(manifest, dict) else None
        raise NMTError(f"{path}: manifest format {got!r}, this nmt reads {FORMAT!r}: export the checkpoint again")
    return folder, manifest


class OrtModel:
    """An export's encoder and step graphs in onnxruntime sessions, as a :class:`~nmt.model.contract.Decodable`.

    :param folder: the export directory. :param manifest: its manifest (:func:`read_manifest`).
    :param threads: onnxruntime's intra-op threads; 0: its default.
    """

    def __init__(self, folder: Path, manifest: dict[str, Any], threads: int = 0) -> None:
        ort = onnxruntime()
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        options.log_severity_level = 3  # errors only: onnxruntime warns about unused initializers
        graphs = manifest["graphs"]
        try:
            self.encoder, self.decoder = (
                ort.InferenceSession(str(folder / graphs[name]["file"]), options, providers=["CPUExecutionProvider"])
                for name in ("encoder", "step"))
        except Exception as err:  # onnxruntime raises its own exception types (a missing or damaged file)
            raise NMTError(f"{folder}: cannot load the ONNX graphs ({str(err).strip().splitlines()[0]})") from None
        self.arch = Arch.parse(manifest["arch"], "arch")
        self.state_type = SummaryState if self.arch == Arch.cho2014 else AttentionState
        self.step_inputs = tuple(graphs["step"]["inputs"])
        self._columns = torch.tensor(manifest["columns"], dtype=torch.long)

    @property
    def columns(self) -> Tensor:
        """(V',) the piece id of each column of the step graph's log-probabilities."""
        return self._columns

    @property
    def device(self) -> torch.device:
        return torch.device("cpu")

    @property
    def attends(self) -> bool:
        return self.arch == Arch.rnnsearch

    def encode(self, src: Tensor, src_len: Tensor) -> State:
        """The state before the first target piece for (B, S) source ids of lengths (B,)."""
        out = self.encoder.run(None, {"src": _numpy(src, torch.long), "src_len": _numpy(src_len, torch.long)})
        return self.state_type(*(torch.from_numpy(x) for x in out))

    def step(self, prev: Tensor, state: State, *, normalize: bool = True) -> Step:
        """Log-probabilities (B, V') of the piece after ``prev`` (B,) (also for ``normalize=False``: the same
        order), the new state, and the attention (B, S) or None."""
        feed = {"prev": _numpy(prev, torch.long)}
        feed.update((name, _numpy(getattr(state, name))) for name in self.step_inputs[1:])
        out = [torch.from_numpy(x) for x in self.decoder.run(None, feed)]
        new = state._replace(**{state._fields[0]: out[1]})
        return Step(out[0], new, out[2] if len(out) > 2 else None)

    reorder = staticmethod(TranslationModel.reorder)

    def score(self, batch: Batch) -> Tensor:
        raise NMTError("scoring (log p(y|x) over the whole vocabulary) needs backend=torch and the checkpoint")


def _numpy(t: Tensor, dtype: torch.dtype | None = None) -> Any:
    """A CPU numpy view of ``t`` (a copy only where the dtype or the layout asks for one)."""
    t = t.detach().cpu()
    return (t if dtype is None else t.to(dtype)).contiguous().numpy()


def open_export(folder: str | Path, threads: int = 0) -> tuple[OrtModel, Tokenizer, Config, int | None, Path]:
    """The model, tokenizer, run config and training step of an export directory, and the directory."""
    folder, manifest = read_manifest(folder)
    try:
        names = manifest["tokenizer"]
        tokenizer = Tokenizer((folder / names["src"]).read_bytes(), (folder / names["tgt"]).read_bytes())
        config = typed(Config, manifest["config"])
    except (OSError, KeyError, TypeError, ValueError, RuntimeError) as err:
        raise NMTError(f"{folder}: incomplete export ({type(err).__name__}: {err})") from None
    return OrtModel(folder, manifest, threads), tokenizer, config, manifest.get("train_step"), folder
