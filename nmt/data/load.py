"""Parallel corpora as Hugging Face ``datasets``: one ``Dataset`` with string columns ``src`` and ``tgt`` per split.

Sources (``DataConfig.format``):

- ``text``: line-aligned files ``{path}/{split}.{lang}`` or ``.gz``, validated before loading;
- ``tsv`` / ``jsonl`` / ``parquet``: one file per split, ``path`` holding ``{split}`` (e.g. ``corpus/{split}.tsv``);
  TSV has two columns (source, target); JSONL and parquet have a ``translation`` column or one column per language;
- ``hub``: a Hugging Face hub dataset (``bentrevett/multi30k``, ``wmt14`` with config ``fr-en``), or, when
  ``local_dir`` is set, text files there named by ``local_splits``.
"""

from __future__ import annotations

import gzip
import os
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import IO, TYPE_CHECKING

from nmt.choices import DataFormat, Split
from nmt.config import DataConfig
from nmt.errors import NMTError
from nmt.resources import EMBEDDED, embedded_corpus

if TYPE_CHECKING:  # imported where used: translating needs none of it (about 110 MB and 0.4 s)
    import datasets

def resolve_path(path: str) -> Path:
    """A user path: absolute or relative to the working directory (``~`` expanded); ``embedded:NAME`` is a corpus
    that ships with nmt (nmt.resources)."""
    if path.startswith(EMBEDDED):
        return embedded_corpus(path[len(EMBEDDED) :])
    return Path(path).expanduser()


def existing_file(path: str, what: str) -> Path:
    """The user's ``what`` file at ``path`` (nmt.data.load.resolve_path); one-line errors when it is missing or
    a folder."""
    p = resolve_path(path)
    if p.is_dir():
        raise NMTError(f"{what} is a folder, not a file: {p}")
    if not p.is_file():
        raise NMTError(f"{what} file not found: {p}")
    return p


def refuse_overwrite(output: str | None, inputs: dict[str, str | None], key: str = "output") -> None:
    """Refuse an ``output`` path (config key ``key``) that names one of the ``inputs`` (config key -> path), also
    through another spelling, a symlink or a hard link: opening it for writing would empty the input. Call it
    before anything is opened or loaded. ``-`` (stdout, stdin) and unset paths never clash."""
    if not output or output == "-":
        return
    out = resolve_path(output)
    for name, path in inputs.items():
        if path and path != "-" and _same_file(out, resolve_path(path)):
            raise NMTError(f"{key}={output} would overwrite {name} ({out.resolve()}): give another {key}")


def _same_file(a: Path, b: Path) -> bool:
    try:
        return os.path.samefile(a, b)  # the same inode: hard links and symlinks too
    except OSError:  # one does not exist (yet): only the spelling can make them one
        return a.resolve() == b.resolve()


def find_text_file(folder: Path, stem: str) -> Path:
    """``folder/stem`` or ``folder/stem.gz``, whichever exists; the error names both."""
    for candidate in (folder / stem, folder / f"{stem}.gz"):
        if candidate.is_file():
            return candidate
    raise NMTError(f"missing corpus file: {folder / stem} (nor {stem}.gz)")


def _open_bytes(path: Path):
    return gzip.open(path, "rb") if path.suffix == ".gz" else open(path, "rb")


def decode_lines(stream: IO[bytes], name: str) -> Iterator[str]:
    """Yield the lines of a binary stream as text without line ends.

    A UTF-8 byte-order mark at the start and CR before LF are dropped. Invalid UTF-8 and NUL bytes (binary
    data, or UTF-16 text) raise NMTError naming ``name`` and the 1-based line number.
    """
    for lineno, raw in enumerate(stream, start=1):
        if lineno == 1 and raw[:2] in (b"\xff\xfe", b"\xfe\xff"):
            raise NMTError(f"{name}:1: UTF-16 byte-order mark: convert the file to UTF-8")
        try:
            line = raw.decode("utf-8")
        except UnicodeDecodeError as err:
            raise NMTError(f"{name}:{lineno}: invalid UTF-8 ({err.reason} at byte {err.start}; binary data?)"
                           ) from None
        if "\x00" in line:
            raise NMTError(f"{name}:{lineno}: NUL byte at byte {raw.index(0)} (binary data or UTF-16 text, not UTF-8)")
        if lineno == 1:
            line = line.removeprefix("\ufeff")
        yield line.rstrip("\n").rstrip("\r")


def read_lines(path: Path) -> Iterator[str]:
    """Yield the lines of a UTF-8 text file (plain or gzip), as :func:`decode_lines` does."""
    try:
        with _open_bytes(path) as f:
            yield from decode_lines(f, str(path))
    except (OSError, EOFError, zlib.error) as err:  # gzip.BadGzipFile is an OSError; bad deflate data is not
        raise NMTError(f"cannot read {path}: {err}") from None


def count_lines(path: Path) -> int:
    """Number of lines in ``path``, checking UTF-8 on the way; an empty file is an error."""
    n = sum(1 for _ in read_lines(path))
    if n == 0:
        raise NMTError(f"empty corpus file: {path}")
    return n


def check_parallel(src: Path, tgt: Path) -> int:
    """Validate a pair of line-aligned files and return their line count."""
    n_src, n_tgt = count_lines(src), count_lines(tgt)
    if n_src != n_tgt:
        raise NMTError(f"misaligned parallel files: {src} has {n_src} lines but {tgt} has {n_tgt}")
    return n_src


def _pairs(src: str, tgt: str, stamp: str) -> Iterator[dict[str, str]]:
    """Generator for ``Dataset.from_generator``; ``stamp`` (size and mtime) only keys the cache."""
    del stamp
    for s, t in zip(read_lines(Path(src)), read_lines(Path(tgt)), strict=True):
        yield {"src": s, "tgt": t}


def _stamp(*paths: Path) -> str:
    return ";".join(f"{p.resolve()}:{os.stat(p).st_size}:{os.stat(p).st_mtime_ns}" for p in paths)


def load_text_pair(folder: Path, stem: str, src_lang: str, tgt_lang: str) -> datasets.Dataset:
    """Load ``folder/{stem}.{src_lang}`` and ``.{tgt_lang}`` (plain or .gz) after validating them."""
    import datasets

    if not folder.is_dir():
        raise NMTError(f"corpus folder not found: {folder}")
    src = find_text_file(folder, f"{stem}.{src_lang}")
    tgt = find_text_file(folder, f"{stem}.{tgt_lang}")
    check_parallel(src, tgt)
    features = datasets.Features({"src": datasets.Value("string"), "tgt": datasets.Value("string")})
    kwargs = {"src": str(src), "tgt": str(tgt), "stamp": _stamp(src, tgt)}
    return datasets.Dataset.from_generator(_pairs, gen_kwargs=kwargs, features=features)


def _to_src_tgt(ds: datasets.Dataset, src_lang: str, tgt_lang: str, where: str) -> datasets.Dataset:
    """Normalise a ``translation`` column or per-language columns to ``src``/``tgt``."""
    cols = ds.column_names
    if "translation" in cols:
        ds = ds.map(
            lambda b: {
                "src": [t[src_lang] for t in b["translation"]],
                "tgt": [t[tgt_lang] for t in b["translation"]],
            },
            batched=True,
            remove_columns=cols,
        )
    elif src_lang in cols and tgt_lang in cols:
        ds = ds.select_columns([src_lang, tgt_lang]).rename_columns({src_lang: "src", tgt_lang: "tgt"})
    else:
        raise NMTError(f"{where}: no 'translation' column and no '{src_lang}'/'{tgt_lang}' columns (has {cols})")
    return ds.map(lambda b: {"src": [s or "" for s in b["src"]], "tgt": [t or "" for t in b["tgt"]]}, batched=True)


def check_tsv(path: Path) -> None:
    """Every line of a TSV corpus holds exactly one tab (source, target); UTF-8 is checked on the way."""
    for lineno, line in enumerate(read_lines(path), start=1):
        if line.count("\t") != 1:
            raise NMTError(f"{path}:{lineno}: expected 2 tab-separated columns (source, target), "
                           f"found {line.count(chr(9)) + 1}")


def load_table(pattern: str, fmt: str, split: str, src_lang: str, tgt_lang: str) -> datasets.Dataset:
    """A TSV, JSONL or parquet file for one split."""
    import datasets

    path = resolve_path(pattern.format(split=split))
    if not path.is_file():
        raise NMTError(f"missing corpus file: {path}")
    if path.stat().st_size == 0:
        raise NMTError(f"empty corpus file: {path}")
    if fmt == "tsv":
        check_tsv(path)
    try:
        if fmt == "tsv":
            ds = datasets.load_dataset(
                "csv", data_files=str(path), split="train", delimiter="\t", quoting=3,
                column_names=[src_lang, tgt_lang], keep_default_na=False,
            )
        else:
            ds = datasets.load_dataset("json" if fmt == "jsonl" else "parquet", data_files=str(path), split="train")
    except Exception as err:  # datasets wraps parser errors in several types
        while err.__cause__ is not None:  # the parser's own message names the bad line
            err = err.__cause__
        reason = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise NMTError(f"cannot read {path} as {fmt}: {reason}") from None
    return _to_src_tgt(ds, src_lang, tgt_lang, str(path))


def load_hub(name: str, config: str | None, split: str, src_lang: str, tgt_lang: str) -> datasets.Dataset:
    """A split of a Hugging Face hub dataset; offline, a one-line error says how to use local files."""
    import datasets

    try:
        ds = datasets.load_dataset(name, config, split=split)
    except Exception as err:
        offline = os.environ.get("HF_DATASETS_OFFLINE") == "1" or os.environ.get("HF_HUB_OFFLINE") == "1"
        reason = str(err).splitlines()[0] if str(err) else type(err).__name__
        hint = "offline mode is set" if offline else "no internet connection?"
        raise NMTError(
            f"cannot load hub dataset {name!r} (config {config!r}, split {split!r}): {reason} ({hint}); "
            "download it once with internet access, or point data.local_dir at local text files"
        ) from None
    return _to_src_tgt(ds, src_lang, tgt_lang, f"hub dataset {name}")


def load_split(cfg: DataConfig, split: str) -> datasets.Dataset:
    """The ``split`` ("train", "dev" or "test") of the configured corpus, with columns ``src`` and ``tgt``."""
    split = Split.parse(split, "split")
    if cfg.local_dir:
        stem = getattr(cfg.local_splits, split)
        return load_text_pair(resolve_path(cfg.local_dir), stem, cfg.src_lang, cfg.tgt_lang)
    stem = getattr(cfg.splits, split)
    if cfg.format == DataFormat.text:
        if not cfg.path:
            raise NMTError("data.path is not set: give the folder holding {split}.{lang} files")
        return load_text_pair(resolve_path(cfg.path), stem, cfg.src_lang, cfg.tgt_lang)
    if cfg.format in (DataFormat.tsv, DataFormat.jsonl, DataFormat.parquet):
        if not cfg.path or "{split}" not in cfg.path:
            raise NMTError(f"data.path must be a file pattern containing {{split}} for format={cfg.format}")
        return load_table(cfg.path, cfg.format, stem, cfg.src_lang, cfg.tgt_lang)
    if not cfg.hub_name:
        raise NMTError("data.hub_name is not set for format=hub")
    return load_hub(cfg.hub_name, cfg.hub_config, stem, cfg.src_lang, cfg.tgt_lang)
