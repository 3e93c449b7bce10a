"""Sentencepiece subword models: trained once on the train split, cached by their inputs, stored in checkpoints.

Special ids are fixed for every model this project trains: PAD=0, UNK=1, BOS=2, EOS=3.
"""

from __future__ import annotations

import hashlib
import io
import itertools
import json
import logging
import random
import re
from collections.abc import Collection, Iterable, Iterator, Sequence
from pathlib import Path

import sentencepiece as spm

from nmt.config import DataConfig
from nmt.config.pairs import parse_pairs, tag, targets
from nmt.errors import NMTError

PAD, UNK, BOS, EOS = 0, 1, 2, 3
SAMPLE_SEED = 1234  # which sentences train sentencepiece when the corpus has more than spm_input_sentence_size

log = logging.getLogger("nmt.tokenizer")


class Tokenizer:
    """Source and target sentencepiece processors (the same object when the vocabulary is joint).

    :param src_model: serialized sentencepiece model for the source language.
    :param tgt_model: serialized model for the target language (``None``: joint, same as source).
    """

    def __init__(self, src_model: bytes, tgt_model: bytes | None = None) -> None:
        self.src_model = src_model
        self.tgt_model = tgt_model if tgt_model is not None else src_model
        self.src = spm.SentencePieceProcessor(model_proto=self.src_model)
        joint = self.tgt_model == self.src_model
        self.tgt = self.src if joint else spm.SentencePieceProcessor(model_proto=self.tgt_model)
        for sp in (self.src, self.tgt):
            if (sp.pad_id(), sp.unk_id(), sp.bos_id(), sp.eos_id()) != (PAD, UNK, BOS, EOS):
                raise NMTError("sentencepiece model has unexpected special ids (need pad=0 unk=1 bos=2 eos=3)")

    @property
    def src_vocab_size(self) -> int:
        return self.src.get_piece_size()

    @property
    def tgt_vocab_size(self) -> int:
        return self.tgt.get_piece_size()

    def encode_src(self, texts: Sequence[str]) -> list[list[int]]:
        """Source sentences to piece ids (no BOS/EOS; the encoder reads the sentence alone)."""
        return self.src.encode(list(texts))

    def encode_tgt(self, texts: Sequence[str]) -> list[list[int]]:
        """Target sentences to piece ids (no BOS/EOS; batching adds them)."""
        return self.tgt.encode(list(texts))

    def tag_id(self, lang: str) -> int:
        """The source piece of the tag that asks for target language ``lang`` (``<2lang>``, nmt.config.pairs)."""
        i = self.src.piece_to_id(tag(lang))
        if i == UNK:
            raise NMTError(f"the model's sentencepiece vocabulary has no tag {tag(lang)}: it was not trained into "
                           f"{lang}")
        return i

    def decode_tgt(self, ids: Sequence[Sequence[int]]) -> list[str]:
        """Target piece ids back to detokenized text."""
        return self.tgt.decode([list(x) for x in ids])

    def save(self, folder: Path) -> None:
        """Write ``src.model`` and ``tgt.model`` (a copy for inspection; checkpoints carry the bytes too)."""
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "src.model").write_bytes(self.src_model)
        (folder / "tgt.model").write_bytes(self.tgt_model)


def sample(texts: Iterable[str], n: int, k: int, seed: int = SAMPLE_SEED) -> Iterator[str]:
    """A uniform random sample of ``k`` of the ``n`` texts, in corpus order, the same on every run; all texts
    when ``n <= k`` or ``k <= 0``. Selection sampling (Knuth's algorithm S): one pass, nothing held.

    Sentencepiece's own sampling (``input_sentence_size``) differs from run to run, even after
    ``set_random_generator_seed``, so the same corpus would give different subword models.
    """
    if k <= 0 or n <= k:
        yield from texts
        return
    rng, need = random.Random(seed), k
    for seen, text in enumerate(texts):
        if rng.random() * (n - seen) < need:  # take it with probability need / remaining
            yield text
            need -= 1
            if need == 0:
                return


def _train_one(sentences: Iterable[str], n: int, cfg: DataConfig, vocab_size: int) -> bytes:
    """A sentencepiece model from ``n`` sentences (a sample of ``cfg.spm_input_sentence_size`` of them)."""
    buf = io.BytesIO()
    try:
        spm.SentencePieceTrainer.train(
            sentence_iterator=sample(sentences, n, cfg.spm_input_sentence_size),
            model_writer=buf,
            vocab_size=vocab_size,
            model_type=str(cfg.spm_model_type),
            character_coverage=cfg.character_coverage,
            input_sentence_size=cfg.spm_input_sentence_size,
            shuffle_input_sentence=True,
            pad_id=PAD, unk_id=UNK, bos_id=BOS, eos_id=EOS,
            **({"user_defined_symbols": symbols(cfg)} if cfg.pairs else {}),  # single pair: the model as before
            minloglevel=2,
            num_threads=2,
        )
    except RuntimeError as err:
        raise _training_error(str(err), vocab_size) from None
    return buf.getvalue()


def _training_error(message: str, vocab_size: int) -> NMTError:
    """Sentencepiece's failed assertion (``INTERNAL: src/x.cc(N) [condition] text``) as one line that says what
    the corpus allows and which key to set."""
    text = re.sub(r"^\w+: \S+\(\d+\) \[.*?\] ", "", message.strip().splitlines()[0] if message.strip() else "")
    asked = f"data.vocab_size={vocab_size}"
    if high := re.search(r"too high \(\d+\)\. Please set it to a value <= (\d+)", text):
        return NMTError(f"{asked} is too large for this corpus: sentencepiece can make at most {high[1]} pieces "
                        f"of it; set data.vocab_size={high[1]} or less")
    if low := re.search(r"smaller than required_chars\. \d+ vs (\d+)", text):
        return NMTError(f"{asked} is too small for this corpus: sentencepiece needs at least {low[1]} pieces "
                        f"(its characters and the 4 special pieces); set data.vocab_size={low[1]} or more, "
                        "or lower data.character_coverage")
    return NMTError(f"sentencepiece training failed with {asked}: {text or 'no message'}")


def symbols(cfg: DataConfig) -> list[str]:
    """The pieces sentencepiece must keep whole: the target-language tags of a multilingual config (none else)."""
    return [tag(lang) for lang in targets(parse_pairs(cfg.pairs))]


def cache_key(src_texts: Iterable[str], tgt_texts: Iterable[str], cfg: DataConfig) -> str:
    """Hash of the training text (read once, streaming) and the settings that shape the model."""
    h = hashlib.sha256()
    settings = [cfg.vocab_size, cfg.spm_model_type, cfg.joint_vocab, cfg.character_coverage,
                cfg.spm_input_sentence_size, spm.__version__]
    if cfg.pairs:  # a single-pair config keeps the key it always had
        settings.append(symbols(cfg))
    h.update(json.dumps(settings).encode())
    for side in (src_texts, tgt_texts):
        h.update(b"\x00side\x00")
        for t in side:
            h.update(t.encode())
            h.update(b"\n")
    return h.hexdigest()[:20]


def train_or_load(src_texts: Collection[str], tgt_texts: Collection[str], cfg: DataConfig) -> Tokenizer:
    """Train sentencepiece on the train split, or reuse the cached model for the same inputs.

    The texts are iterated over twice (hash, then training: give lists or nmt.data.prepare.TextColumn, sized
    and re-iterable) and never copied into a list; sentencepiece sees a fixed random sample of
    ``cfg.spm_input_sentence_size`` sentences (:func:`sample`), so memory stays bounded on large corpora.
    """
    folder = Path(cfg.cache_dir).expanduser() / "spm" / cache_key(src_texts, tgt_texts, cfg)
    src_file, tgt_file = folder / "src.model", folder / "tgt.model"
    if src_file.is_file() and tgt_file.is_file():
        try:
            return Tokenizer(src_file.read_bytes(), tgt_file.read_bytes())
        except (RuntimeError, NMTError) as err:  # a damaged cache is a cache miss
            log.warning("sentencepiece cache %s is unreadable (%s): training again", folder, err)
    if cfg.joint_vocab:
        src_model = _train_one(itertools.chain(src_texts, tgt_texts), len(src_texts) + len(tgt_texts), cfg,
                               cfg.vocab_size)
        tgt_model = src_model
    else:
        src_model = _train_one(src_texts, len(src_texts), cfg, cfg.vocab_size)
        tgt_model = _train_one(tgt_texts, len(tgt_texts), cfg, cfg.vocab_size)
    tok = Tokenizer(src_model, tgt_model)
    folder.mkdir(parents=True, exist_ok=True)
    for path, blob in ((src_file, src_model), (tgt_file, tgt_model)):
        tmp = path.with_suffix(".tmp")
        tmp.write_bytes(blob)
        tmp.replace(path)
    return tok
