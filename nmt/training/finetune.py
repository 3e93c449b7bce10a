"""Fine-tuning (``train.init_from``): a new run that starts from a trained model (its *parent*), taking its weights,
its model settings and its tokenizer (the sentencepiece models, byte for byte: none is trained), on whatever data the
run's config gives. The optimizer, the learning-rate schedule, the step counter and the best score start fresh,
unless ``train.init_keep`` names them (they need the parent's ``last.pt``: ``best.pt`` holds weights only).

The model settings are the parent's: a ``model.*`` key left at its default takes the parent's value, and one given
another value must equal it, except the run settings that do not shape the weights (``ModelConfig.RESUMABLE``:
dropout, cell, init), which are this run's to choose. A resumed fine-tuning run takes them from its own ``last.pt``
the same way (nmt.training.run.setup), so the command that started it continues it with ``train.resume=true``.
"""

from __future__ import annotations

import logging
from dataclasses import replace
from pathlib import Path
from typing import Any

import torch

from nmt import checkpoint
from nmt.choices import InitKeep, to_plain
from nmt.config import Config, DataConfig, ModelConfig
from nmt.data.load import resolve_path
from nmt.errors import NMTError
from nmt.model.base import TranslationModel

log = logging.getLogger("nmt.train")

# the TrainState fields each train.init_keep item takes from the parent's last.pt
KEPT_STATE = {InitKeep.schedule: ("step", "lr_scale", "plateau_bad"), InitKeep.best: ("best", "best_step", "bad_evals")}
LANGUAGES = ("src_lang", "tgt_lang", "pairs")  # the direction(s) the parent translates: the new data must have them


def load_parent(cfg: Config) -> checkpoint.Checkpoint:
    """The checkpoint ``train.init_from`` names (a run directory: its best.pt), checked against ``train.init_keep``."""
    tc = cfg.train
    parent = checkpoint.load(resolve_path(str(tc.init_from)))
    keep = ", ".join(str(k) for k in tc.init_keep)
    if tc.init_keep and "train_state" not in parent.payload:
        raise NMTError(f"train.init_keep=[{keep}] needs a checkpoint with the training state (a last.pt), but "
                       f"{parent.path} holds weights only: give train.init_from=RUN_DIR/last.pt")
    if InitKeep.optimizer in tc.init_keep and parent.config.train.optimizer != tc.optimizer:
        raise NMTError(f"train.init_keep=[{keep}] cannot keep the optimizer state of {parent.path}: train.optimizer: "
                       f"parent {parent.config.train.optimizer} vs requested {tc.optimizer}")
    return parent


def inherit(cfg: Config, source: checkpoint.Checkpoint, init_from: str | None, init_keep: list[InitKeep]) -> Config:
    """``cfg`` with the model settings and the tokenizer's data settings of ``source`` (the parent, or the last.pt
    of the fine-tuning run being resumed), and ``train.init_from`` and ``train.init_keep`` as given (what the run
    records: the parent's resolved path, and what it took from it).

    A model key that differs from both its default and the source's value is refused in one line naming the key and
    both values (unless it is in ``ModelConfig.RESUMABLE``), as are other languages (``data.src_lang``,
    ``data.tgt_lang``); the vocabulary settings (``data.vocab_size``, ...) are the source's, since its tokenizer is.
    """
    model = _merged_model(cfg.model, source)
    data = _merged_data(cfg.data, source)
    return replace(cfg, model=model, data=data, train=replace(cfg.train, init_from=init_from, init_keep=init_keep))


def _merged_model(requested: ModelConfig, source: checkpoint.Checkpoint) -> ModelConfig:
    want, have, default = to_plain(requested), to_plain(source.config.model), to_plain(ModelConfig())
    merged, conflicts = dict(have), []
    for key, value in want.items():
        if value == default[key] or value == have[key]:
            continue
        if key in ModelConfig.RESUMABLE:
            merged[key] = value
        else:
            conflicts.append(f"model.{key}: checkpoint {have[key]!r} vs requested {value!r}")
    if conflicts:
        raise NMTError(f"cannot fine-tune {source.path}: its architecture is fixed ({'; '.join(conflicts)}): leave "
                       "these model keys out, the checkpoint's settings are used")
    return ModelConfig(**merged)


def _merged_data(requested: DataConfig, source: checkpoint.Checkpoint) -> DataConfig:
    saved = source.payload.get("config", {}).get("data") or {}  # older checkpoints: nothing to check
    saved = {"pairs": [], **saved} if saved else saved  # from before data.pairs: a single-pair model
    want = to_plain(requested)
    wrong = [f"data.{k}: checkpoint {saved[k]!r} vs requested {want[k]!r}" for k in LANGUAGES
             if k in saved and saved[k] != want[k]]
    if wrong:
        raise NMTError(f"cannot fine-tune {source.path}: it translates another language pair ({'; '.join(wrong)})")
    taken = {k: saved[k] for k in DataConfig.VOCABULARY_KEYS if k in saved and k not in LANGUAGES}
    changed = [f"data.{k}={want[k]} ({saved[k]})" for k in taken if want[k] != saved[k]]
    if changed:
        log.info("fine-tuning: the tokenizer is the checkpoint's, so %s are its values", ", ".join(changed))
    return replace(requested, **taken)


def start(parent: checkpoint.Checkpoint, model: TranslationModel, opt: torch.optim.Optimizer,
          keep: list[InitKeep]) -> dict[str, Any]:
    """Put the parent's weights into ``model`` (and its optimizer state into ``opt``, with this run's
    hyperparameters, if ``keep`` says so); returns the TrainState fields taken from the parent."""
    try:
        model.load_state_dict(parent.weights)
    except RuntimeError as err:  # "Error(s) in loading state_dict ...:" then one line per problem
        detail = [line.strip() for line in str(err).splitlines() if line.strip()]
        raise NMTError(f"cannot fine-tune {parent.path}: its weights do not fit its model settings: "
                       f"{detail[1] if len(detail) > 1 else err}") from None
    if InitKeep.optimizer in keep:
        ours = opt.state_dict()["param_groups"]  # this run's lr, betas, weight decay; the parent's moments
        try:
            opt.load_state_dict({"state": parent.payload["optimizer"]["state"], "param_groups": ours})
        except (KeyError, ValueError) as err:
            raise NMTError(f"cannot keep the optimizer state of {parent.path}: {err}") from None
    saved = parent.payload.get("train_state", {})
    kept = {f: saved[f] for item in keep for f in KEPT_STATE.get(item, ()) if f in saved}
    log.info("fine-tuning from %s (step %s): its weights and tokenizer%s; the rest starts fresh", parent.path.resolve(),
             parent.step, f", and its {', '.join(str(k) for k in keep)}" if keep else "")
    return kept


def origin(parent: checkpoint.Checkpoint, keep: list[InitKeep]) -> dict[str, Any]:
    """What every checkpoint of a fine-tuning run records of its parent (``init_from`` in the payload)."""
    return {"path": str(Path(parent.path).resolve()), "step": parent.step, "run": parent.config.name,
            "kept": [str(k) for k in keep]}
