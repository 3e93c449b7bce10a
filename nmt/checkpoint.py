"""Self-describing checkpoints, written atomically and loaded without running pickled code.

A checkpoint file holds a dict of plain values and tensors (``torch.load(weights_only=True)`` reads it):
``format``, ``model`` (state dict), ``model_info`` (config and vocabulary sizes), ``config`` (the resolved
run config), ``tokenizer`` (serialized sentencepiece models), ``step``, ``target_pieces``, and for ``last.pt``
the training state (``train_state``, ``optimizer``, ``rng``). :func:`weights_payload` and
:func:`training_payload` build them, :func:`save` writes them and :func:`read` reads one back as stored;
:func:`load` reads it into a typed :class:`Checkpoint`, which every reader of checkpoints uses.

Format 2 named the model's modules by what they are (``decoder.bridge``, ``decoder.readout.from_state``, ...);
:func:`read` renames the weights of a format-1 checkpoint, so older runs keep loading and resuming.
"""

from __future__ import annotations

import os
import pickle
import random
import tempfile
import typing
import warnings
from dataclasses import asdict, dataclass, fields, is_dataclass, replace
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from nmt.choices import to_plain
from nmt.config import Config, DataConfig, ModelConfig
from nmt.data.tokenizer import Tokenizer
from nmt.errors import NMTError
from nmt.model import build_model
from nmt.model.base import TranslationModel

FORMAT = "nmt-checkpoint-2"
# format 1 -> 2: the old module names (prefixes of state-dict keys) and the new ones
RENAMED_IN_2 = {"encoder.summary.": "encoder.to_summary.", "decoder.init.": "decoder.bridge.",
                "decoder.o_h.": "decoder.readout.from_state.", "decoder.o_s.": "decoder.readout.from_state.",
                "decoder.o_y.": "decoder.readout.from_prev_word.", "decoder.o_c.": "decoder.readout.from_context."}


def save(obj: dict[str, Any], path: Path) -> None:
    """Write ``obj`` to ``path`` atomically: a temporary file in the same folder, fsync, then rename.

    A failure at any point leaves an existing ``path`` untouched.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            torch.save({"format": FORMAT, **obj}, f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException as err:
        Path(tmp).unlink(missing_ok=True)
        if isinstance(err, OSError):
            raise NMTError(f"cannot write checkpoint {path}: {err.strerror or err}; the previous one is kept") from None
        raise


@dataclass(frozen=True)
class Checkpoint:
    """A checkpoint read once into typed parts (:func:`load`)."""

    path: Path  # the file read (a run directory's best.pt or last.pt)
    config: Config  # the run's resolved configuration; ``config.model`` builds the model
    tokenizer: Tokenizer
    src_vocab: int
    tgt_vocab: int
    step: int | None
    target_pieces: Tensor | None  # (N,) the pieces seen on the target side in training; None in older files
    payload: dict[str, Any]  # the file as stored: weights (``model``), and for last.pt the training state

    @property
    def weights(self) -> dict[str, Tensor]:
        return self.payload["model"]

    def build_model(self) -> TranslationModel:
        """The model with its weights, in eval mode; a mismatch between weights and settings is one line."""
        model = build_model(self.config.model, self.src_vocab, self.tgt_vocab)
        try:
            model.load_state_dict(self.weights)
        except RuntimeError as err:  # "Error(s) in loading state_dict ...:" then one line per problem
            detail = [line.strip() for line in str(err).splitlines() if line.strip()]
            raise NMTError(f"{self.path}: checkpoint weights do not fit its model settings: "
                           f"{detail[1] if len(detail) > 1 else err}") from None
        return model.eval()


def load(path: str | Path) -> Checkpoint:
    """The checkpoint file at ``path``, or the ``best.pt`` (else ``last.pt``) of a run directory, as a
    :class:`Checkpoint`; what is missing, damaged or inconsistent is one line naming the file."""
    path = resolve(path)
    payload = read(path)
    try:
        info = payload["model_info"]
        tokenizer = Tokenizer(payload["tokenizer"]["src"], payload["tokenizer"]["tgt"])
        config = replace(typed(Config, payload.get("config", {})), model=typed(ModelConfig, info["config"]))
        sizes = (int(info["src_vocab"]), int(info["tgt_vocab"]))
        weights = payload["model"]
    except (KeyError, TypeError, ValueError, RuntimeError) as err:  # RuntimeError: sentencepiece cannot parse it
        first = str(err).strip().splitlines()[0] if str(err).strip() else ""
        raise NMTError(f"{path}: incomplete or damaged checkpoint ({type(err).__name__}: {first})") from None
    if not isinstance(weights, dict):
        raise NMTError(f"{path}: incomplete or damaged checkpoint (its weights are not a state dict)")
    if (tokenizer.src_vocab_size, tokenizer.tgt_vocab_size) != sizes:
        raise NMTError(f"{path}: checkpoint's tokenizer ({tokenizer.src_vocab_size}, {tokenizer.tgt_vocab_size} "
                       f"pieces) and model ({sizes[0]}, {sizes[1]}) disagree on vocabulary sizes")
    pieces = payload.get("target_pieces")
    return Checkpoint(path, config, tokenizer, *sizes, payload.get("step"),
                      None if pieces is None else torch.as_tensor(pieces), payload)


def typed(cls: type, plain: dict[str, Any]) -> Any:
    """A config dataclass from the plain values a checkpoint stores: nested dataclasses and tuples rebuilt, keys
    this version does not know (written by another one) dropped, missing ones at their defaults."""
    if not isinstance(plain, dict):
        raise TypeError(f"{cls.__name__} settings are not a mapping")
    hints, values = typing.get_type_hints(cls), {}
    for f in fields(cls):
        if f.name not in plain:
            continue
        kind, value = hints[f.name], plain[f.name]
        if is_dataclass(kind) and isinstance(value, dict):
            value = typed(kind, value)
        elif typing.get_origin(kind) is tuple and isinstance(value, list):
            value = tuple(value)
        values[f.name] = value
    return cls(**values)


def resolve(path: str | Path) -> Path:
    """A checkpoint file, or the ``best.pt`` (else ``last.pt``) of a run directory."""
    path = Path(path)
    if path.is_dir():
        for name in ("best.pt", "last.pt"):
            if (path / name).is_file():
                path = path / name
                break
        else:
            raise NMTError(f"no checkpoint (best.pt or last.pt) in run directory {path}")
    return path


def read(path: str | Path) -> dict[str, Any]:
    """The dict a checkpoint file (or a run directory's, see :func:`resolve`) holds, in the current format."""
    path = resolve(path)
    if not path.is_file():
        raise NMTError(f"checkpoint not found: {path}")
    with open(path, "rb") as f:
        magic = f.read(4)
    if magic != b"PK\x03\x04" and magic[:1] != b"\x80":  # neither torch's zip format nor its older pickle
        raise NMTError(f"{path} is not an nmt checkpoint (not a file written by torch.save)")
    try:
        with warnings.catch_warnings():  # torch warns about pickle protocols and unsafe globals: the error says it
            warnings.simplefilter("ignore")
            ckpt = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError:  # weights_only met a Python object other than tensors and plain values
        raise NMTError(f"corrupt or unsafe checkpoint {path}: it holds pickled Python objects besides tensors and "
                       "plain values, which nmt never loads (they could run code)") from None
    except Exception as err:  # damaged bytes surface as many types (IndexError, KeyError, zlib.error, ...)
        first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        detail = "damaged file" if "weights_only" in first else first  # never relay torch's advice to unpickle
        raise NMTError(f"corrupt or unsafe checkpoint {path}: {detail}") from None
    return _upgrade(ckpt, path)


def _upgrade(ckpt: Any, path: Path) -> dict[str, Any]:
    """A loaded checkpoint in the current format: format 1 gets its renamed weights; others are refused."""
    fmt = ckpt.get("format") if isinstance(ckpt, dict) else None
    if fmt == "nmt-checkpoint-1" and isinstance(ckpt.get("model"), dict):
        ckpt["model"] = {renamed_key(k): v for k, v in ckpt["model"].items()}
        ckpt["format"] = FORMAT
    elif isinstance(fmt, str) and fmt.startswith("nmt-checkpoint-") and fmt != FORMAT:
        raise NMTError(f"{path} is an nmt checkpoint of format {fmt!r}, which this version ({FORMAT}) cannot read: "
                       "use the nmt version that wrote it")
    elif fmt != FORMAT:
        raise NMTError(f"{path} is not an nmt checkpoint (format {FORMAT})")
    return ckpt


def renamed_key(key: str) -> str:
    """A format-1 state-dict key under its format-2 name."""
    for old, new in RENAMED_IN_2.items():
        if key.startswith(old):
            return new + key[len(old) :]
    return key


def weights_payload(model: nn.Module, cfg: Config, tokenizer: Tokenizer, step: int,
                    target_pieces: list[int] | None = None, init_from: dict[str, Any] | None = None) -> dict[str, Any]:
    """What ``best.pt`` and ``step-<N>.pt`` hold: weights, the model's and run's settings, the tokenizer, and the
    ids of the pieces seen on the target side in training (``target_pieces``: search scores only these); a
    fine-tuned run's also say which checkpoint it started from (``init_from``: nmt.training.finetune.origin)."""
    extra = {} if target_pieces is None else {"target_pieces": torch.tensor(target_pieces, dtype=torch.int32)}
    if init_from is not None:
        extra["init_from"] = init_from
    return {"model": model.state_dict(), "model_info": model.describe(), "config": to_plain(cfg),
            "tokenizer": {"src": tokenizer.src_model, "tgt": tokenizer.tgt_model}, "step": step, **extra}


def training_payload(model: nn.Module, cfg: Config, tokenizer: Tokenizer, state: Any, opt: torch.optim.Optimizer,
                     device: torch.device, target_pieces: list[int] | None = None,
                     init_from: dict[str, Any] | None = None) -> dict[str, Any]:
    """What ``last.pt`` holds: :func:`weights_payload` plus the training state (a dataclass), the optimizer and the
    random generators, so that a resumed run continues exactly."""
    rng: dict[str, Any] = {"torch": torch.get_rng_state(), "python": random.getstate()}
    if device.type == "cuda":
        rng["cuda"] = torch.cuda.get_rng_state(device)
    return {**weights_payload(model, cfg, tokenizer, state.step, target_pieces, init_from),
            "train_state": asdict(state), "optimizer": opt.state_dict(), "rng": rng}


def restore_rng(ckpt: dict[str, Any], device: torch.device) -> None:
    """Put the random generators back where :func:`training_payload` found them (``ckpt``: the stored dict)."""
    torch.set_rng_state(ckpt["rng"]["torch"])
    random.setstate(ckpt["rng"]["python"])
    if "cuda" in ckpt["rng"] and device.type == "cuda":
        torch.cuda.set_rng_state(ckpt["rng"]["cuda"], device)


def check_compatible(ckpt: dict[str, Any], model_cfg: ModelConfig, data_cfg: DataConfig | None = None) -> None:
    """Refuse to continue a checkpoint (``ckpt``: the stored dict, Checkpoint.payload) whose model settings (all
    but ``ModelConfig.RESUMABLE``) or vocabulary settings (``DataConfig.VOCABULARY_KEYS``) differ from the
    requested ones. Keys missing from an older checkpoint had their default value."""
    saved = {**to_plain(ModelConfig()), **ckpt["model_info"]["config"]}
    wanted = to_plain(model_cfg)
    diffs = [f"{k}: checkpoint {saved[k]!r} vs requested {wanted[k]!r}" for k in wanted
             if k not in ModelConfig.RESUMABLE and saved[k] != wanted[k]]
    saved_data = ckpt.get("config", {}).get("data")
    if data_cfg is not None and saved_data:  # the checkpoint's sentencepiece models were made with these
        saved_data = {"pairs": [], **saved_data}  # a checkpoint from before data.pairs is a single-pair one
        wanted_data = to_plain(data_cfg)
        diffs += [f"data.{k}: checkpoint {saved_data[k]!r} vs requested {wanted_data[k]!r}"
                  for k in DataConfig.VOCABULARY_KEYS if k in saved_data and saved_data[k] != wanted_data[k]]
    if diffs:
        raise NMTError("checkpoint does not match the requested run (" + "; ".join(diffs) + ")")


def step_checkpoints(run_dir: Path) -> list[Path]:
    """The ``step-<N>.pt`` files of a run directory, oldest step first."""
    found = [(int(p.stem.split("-", 1)[1]), p) for p in Path(run_dir).glob("step-*.pt")
             if p.stem.split("-", 1)[1].isdigit()]
    return [p for _, p in sorted(found)]
