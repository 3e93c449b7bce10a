"""``nmt score phrase_table=FILE output=FILE``: Cho et al. (2014)'s use of the RNN Encoder-Decoder in phrase-based
SMT. Every pair of a Moses phrase table (``source ||| target ||| scores [||| alignment [||| counts ...]]``) gets
the model's p(target|source), and with ``reverse=`` (a model trained the other way) p(source|target), as new
columns at the end of its scores field; every other byte of the entry stays as it was, the entries in their order.

The columns are probabilities, exp(log p), as Moses's own are: Moses takes the natural log of every phrase-table
score when it loads the table (and floors it at -100), so the feature it tunes is log p itself. Moses's
``moses.ini`` then needs one more feature and one more weight per column (README: Scoring a Moses phrase table).

Streaming: ``CHUNK_LINES`` entries are read and checked, scored in length-sorted batches of ``batch_tokens`` pieces
(nmt.evaluation.score.score_pairs) and written in their order; memory holds one chunk, whatever the table's size.
The output goes to a temporary file beside it, renamed at the end: a bad line, an error or an interruption
leaves no half table (and an existing output as it was).

Phrases are Moses's tokens, space-separated; they go to the model's sentencepiece tokenizer as they are, without
detokenization or unescaping of Moses's entities (``&apos;``, ``&#124;``, ...): sentencepiece cuts at spaces
anyway, so a tokenized phrase ("l' homme") differs from the raw text the model was trained on ("l'homme") only
where the tokenizer split a word.
"""

from __future__ import annotations

import gzip
import math
import os
import sys
import tempfile
import zlib
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager, nullcontext
from pathlib import Path
from typing import IO

from tqdm import tqdm

from nmt.config import ScoreConfig
from nmt.data.load import decode_lines, existing_file, refuse_overwrite, resolve_path
from nmt.decoding.translate import Translator
from nmt.errors import NMTError
from nmt.evaluation.score import score_pairs
from nmt.runtime.process import Runtime
from nmt.runtime.threads import Threads

CHUNK_LINES = 100_000  # entries read, scored and written together: what memory holds of the table
SEP = "|||"  # Moses's field separator (written " ||| "; the spaces around it belong to the fields here)


def parse_entry(line: str, where: str) -> tuple[list[str], int]:
    """The ``|||`` fields of one phrase-table line, as written (their spaces kept), and its number of scores;
    checked: at least source, target and scores, neither phrase empty, every score a number. ``where``
    (``file:line``) starts the error."""
    fields = line.split(SEP)
    if len(fields) < 3:
        raise NMTError(f"{where}: not a Moses phrase-table entry: {len(fields)} field(s), where "
                       "'source ||| target ||| scores [||| alignment ||| counts]' has at least 3")
    for name, text in (("source", fields[0]), ("target", fields[1])):
        if not text.strip():
            raise NMTError(f"{where}: empty {name} phrase")
    scores = fields[2].split()
    for value in scores:
        try:
            number = float(value)
        except ValueError:
            number = math.nan
        if math.isnan(number):  # Moses refuses NaN too ("Bad score")
            raise NMTError(f"{where}: score {value!r} is not a number")
    return fields, len(scores)


def read_chunks(lines: Iterator[str], name: str, size: int = CHUNK_LINES) -> Iterator[list[list[str]]]:
    """The checked entries of ``lines`` (:func:`parse_entry`) in lists of at most ``size``, read as they are
    needed: a chunk is all that is held. Every entry must have as many scores as the first (Moses needs it)."""
    chunk: list[list[str]] = []
    expected = -1
    try:
        for n, line in enumerate(lines, start=1):
            fields, count = parse_entry(line, f"{name}:{n}")
            if expected < 0:
                expected = count
            elif count != expected:
                raise NMTError(f"{name}:{n}: {count} scores where the entries before have {expected}")
            chunk.append(fields)
            if len(chunk) == size:
                yield chunk
                chunk = []
    except (OSError, EOFError, zlib.error) as err:  # a damaged or truncated .gz
        raise NMTError(f"cannot read {name}: {err}") from None
    if chunk:
        yield chunk


def with_columns(fields: list[str], values: Sequence[float]) -> str:
    """The entry again, ``values`` appended to its scores field (6 significant digits, as Moses writes them)."""
    raw = fields[2]
    lead = raw[: len(raw) - len(raw.lstrip())] or " "
    trail = raw[len(raw.rstrip()):] or (" " if len(fields) > 3 else "")
    scores = " ".join([*raw.split(), *(f"{v:.6g}" for v in values)])
    return SEP.join([fields[0], fields[1], lead + scores + trail, *fields[3:]])


def score_chunk(models: Sequence[Translator], entries: list[list[str]], batch_tokens: int, eos: bool,
                threads: Threads | None = None, on_batch: Callable[[int], None] | None = None) -> list[list[float]]:
    """The new columns of each entry: p(tgt|src) from ``models[0]``, and p(src|tgt) from ``models[1]`` (a model
    trained tgt -> src) when it is given."""
    src, tgt = [e[0].strip() for e in entries], [e[1].strip() for e in entries]
    columns = []
    for model, (x, y) in zip(models, [(src, tgt), (tgt, src)], strict=False):
        scored = score_pairs(model, x, y, batch_tokens, threads, eos=eos, on_batch=on_batch)
        columns.append([math.exp(lp) for lp, _ in scored])
    return [list(row) for row in zip(*columns, strict=True)]


@contextmanager
def open_table(path: Path) -> Iterator[tuple[Iterator[str], Callable[[], int]]]:
    """The lines of a phrase table, plain or .gz (nmt.data.load.decode_lines: UTF-8 checked, errors name the line),
    and a function telling how many bytes of the file (compressed ones for .gz) have been read."""
    with open(path, "rb") as raw:
        stream = gzip.GzipFile(fileobj=raw, mode="rb") if path.suffix == ".gz" else nullcontext(raw)
        with stream as f:
            yield decode_lines(f, str(path)), raw.tell


@contextmanager
def atomic_output(path: Path) -> Iterator[IO[bytes]]:
    """A binary file that becomes ``path`` only when the block ends without an error (gzip-compressed when the name
    ends in .gz): a temporary file beside it, synced, then renamed; on any failure it is removed, and an
    existing ``path`` stays as it was."""
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    except OSError as err:
        raise NMTError(f"cannot write {path}: {err.strerror or err}") from None
    try:
        with os.fdopen(fd, "wb") as raw:
            packed = gzip.GzipFile(fileobj=raw, mode="wb", compresslevel=6) if path.suffix == ".gz" else None
            with packed or nullcontext(raw) as out:
                yield out
            raw.flush()
            os.fsync(raw.fileno())
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)  # mkstemp's file is private (0600); an output is not
        os.replace(tmp, path)
    except BaseException as err:
        Path(tmp).unlink(missing_ok=True)
        if isinstance(err, OSError):
            raise NMTError(f"cannot write {path}: {err.strerror or err}; nothing was written") from None
        raise


class Progress:
    """The progress bar on a terminal: the table's bytes (compressed ones for .gz, so that it has a total and an
    ETA without reading the table twice), advanced as each batch is scored, with the entries per second."""

    def __init__(self, total_bytes: int, passes: int) -> None:
        self.bar = tqdm(total=total_bytes, unit="B", unit_scale=True, unit_divisor=1024, desc="scoring",
                        dynamic_ncols=True, disable=not sys.stderr.isatty())
        self.passes, self.entries, self.bytes_per_entry = passes, 0.0, 0.0

    def chunk(self, entries: int, nbytes: int) -> None:
        """A chunk of ``entries`` that took ``nbytes`` of the file was read."""
        self.bytes_per_entry = nbytes / entries

    def batch(self, entries: int) -> None:
        """One model scored a batch of ``entries``."""
        self.entries += entries / self.passes
        if not self.bar.disable:
            rate = self.entries / max(self.bar.format_dict["elapsed"], 1e-9)
            self.bar.set_postfix(entries_s=f"{rate:,.0f}", refresh=False)
            self.bar.update(entries * self.bytes_per_entry / self.passes)

    def finish(self) -> None:
        """The whole table is scored (the batches' shares of bytes, rounded, may not add up to it)."""
        self.bar.update(self.bar.total - self.bar.n)

    def close(self) -> None:
        self.bar.close()


def score_table(models: Sequence[Translator], table: Path, output: Path, *, batch_tokens: int = 4096,
                eos: bool = True, chunk_lines: int = CHUNK_LINES, threads: Threads | None = None,
                on_chunk: Callable[[int], None] | None = None) -> tuple[int, int]:
    """Write ``table`` with one more score per model (:func:`score_chunk`) to ``output``, whole or not at all;
    ``on_chunk`` is told the size of each chunk written. The number of entries and of scores each had before."""
    progress = Progress(table.stat().st_size, len(models))
    entries = scores = 0
    try:
        with open_table(table) as (lines, position), atomic_output(output) as out:
            start = 0
            for chunk in read_chunks(lines, str(table), chunk_lines):
                progress.chunk(len(chunk), position() - start)
                start = position()
                if not entries:
                    scores = len(chunk[0][2].split())
                columns = score_chunk(models, chunk, batch_tokens, eos, threads, progress.batch)
                out.write("".join(with_columns(e, c) + "\n" for e, c in zip(chunk, columns, strict=True))
                          .encode("utf-8"))
                entries += len(chunk)
                if on_chunk is not None:
                    on_chunk(len(chunk))
            if not entries:
                raise NMTError(f"empty phrase table: {table}")
            progress.finish()
    finally:
        progress.close()
    return entries, scores


def run_phrase_table(sc: ScoreConfig) -> None:
    """``nmt score phrase_table=FILE output=FILE [reverse=CHECKPOINT]``."""
    if sc.output == "-":
        raise NMTError("phrase_table needs output=FILE (.gz: compressed): the scored table is written whole, or "
                       "not at all")
    refuse_overwrite(sc.output, {"phrase_table": sc.phrase_table, "checkpoint": sc.checkpoint,
                                 "reverse": sc.reverse})
    table = existing_file(sc.phrase_table or "", "phrase table")
    threads = Runtime.install(sc.threads, tune_memory=False, signals=False).threads
    models = [Translator.open(sc.checkpoint, device=sc.device)]
    if sc.reverse:
        models.append(Translator.open(sc.reverse, device=sc.device))
    # phrase_eos (default true): the score counts the EOS after the target phrase, as `nmt score` of the pair does.
    # The model was trained to end what it translated, so p(EOS | target, source) says the target phrase covers the
    # source phrase; without it a shorter target always scores higher (fewer factors below 1). Cho 2014's model,
    # trained on phrase pairs, ended phrases too; a sentence-trained one also calls a fragment "not finished",
    # which the tuned weight (with the word and phrase penalties) absorbs. phrase_eos=false leaves the term out.
    entries, scores = score_table(models, table, resolve_path(sc.output), batch_tokens=sc.batch_tokens,
                                  eos=sc.phrase_eos, threads=threads)
    total = scores + len(models)
    print(f"{entries:,} phrase pairs scored into {sc.output}: {total} scores each, {len(models)} of them new "
          f"(moses.ini: num-features={total}, and {total} weights on the table's [weight] line)", file=sys.stderr)
