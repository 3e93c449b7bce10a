"""``nmt translate``: files or stdin in, translations out, one line per line; a prompt with line editing and
history on a terminal; a progress bar on stderr when it is a terminal."""

from __future__ import annotations

import gzip
import itertools
import sys
from collections.abc import Iterable, Iterator
from pathlib import Path

from tqdm import tqdm

from nmt.config import TranslateConfig
from nmt.data.load import check_parallel, decode_lines, existing_file, read_lines, refuse_overwrite, resolve_path
from nmt.decoding.terms import Glossary, constraint_line, sentence_terms
from nmt.decoding.translate import Translator, chunks
from nmt.errors import NMTError
from nmt.runtime.process import Runtime

CHUNK = 2000  # lines translated together: bounded memory, good batches
HISTORY = Path("~/.cache/nmt/translate_history").expanduser()  # the prompt's history, kept between sessions


def _interactive(translator: Translator, tc: TranslateConfig, glossary: Glossary | None) -> None:
    """A prompt: one sentence a line, with readline's editing (arrows, Ctrl-R) and history when available."""
    try:
        import readline  # noqa: F401  (importing it gives input() line editing)

        HISTORY.parent.mkdir(parents=True, exist_ok=True)
        if HISTORY.is_file():
            readline.read_history_file(HISTORY)
    except (ImportError, OSError):
        readline = None
    print("Type a sentence and press Enter (Ctrl-D to quit).", file=sys.stderr)
    try:
        while True:
            try:
                line = input("> ")
            except EOFError:
                print(file=sys.stderr)
                return
            print(translator.translate([line], tc.decode, max_input_len=tc.max_input_len,
                                       terms=sentence_terms([line], None, glossary), target=tc.tgt_lang)[0], flush=True)
    finally:
        if readline is not None:
            try:
                readline.set_history_length(1000)
                readline.write_history_file(HISTORY)
            except OSError:
                pass


def _lines(tc: TranslateConfig) -> tuple[Iterable[str], int | None]:
    """The input lines and, for a file read with a progress bar on the terminal, about how many there are."""
    if tc.input == "-":
        return decode_lines(sys.stdin.buffer, "<stdin>"), None
    path = existing_file(tc.input, "input")
    if not sys.stderr.isatty():
        return read_lines(path), None
    with (gzip.open if path.suffix == ".gz" else open)(path, "rb") as f:
        newlines = sum(block.count(b"\n") for block in iter(lambda: f.read(1 << 20), b""))
    return read_lines(path), newlines


def _prefixes(tc: TranslateConfig) -> Iterator[str] | None:
    """The prefix file's lines (checked against a file input's line count first), or None."""
    if tc.prefix is None:
        return None
    path = existing_file(tc.prefix, "prefix")
    if tc.input != "-":
        check_parallel(existing_file(tc.input, "input"), path)
    return iter(read_lines(path))


def _take(lines: Iterator[str], n: int, name: str, what: str = "prefix") -> list[str]:
    """The next ``n`` lines of a per-line file; one shorter than the input is named."""
    got = list(itertools.islice(lines, n))
    if len(got) < n:
        raise NMTError(f"{what} file {name} has fewer lines than the input: give one per input line (empty: none)")
    return got


def _constraints(tc: TranslateConfig) -> Iterator[str] | None:
    """The constraint file's lines (checked against a file input's line count first), or None."""
    if tc.constraints is None:
        return None
    path = existing_file(tc.constraints, "constraints")
    if tc.input != "-":
        check_parallel(existing_file(tc.input, "input"), path)
    return iter(read_lines(path))


def _terms(chunk: list[str], lines: Iterator[str] | None, tc: TranslateConfig,
           glossary: Glossary | None) -> list[list[str]] | None:
    """The phrases each line of ``chunk`` must hold: the constraint file's, then the glossary's."""
    given = None if lines is None else [constraint_line(x) for x in _take(lines, len(chunk), tc.constraints,
                                                                           "constraints")]
    return sentence_terms(chunk, given, glossary)


def run_translate(tc: TranslateConfig) -> None:
    """Translate ``tc.input`` to ``tc.output`` with the model in ``tc.checkpoint``."""
    refuse_overwrite(tc.output, {"input": tc.input, "checkpoint": tc.checkpoint, "prefix": tc.prefix,
                                 "constraints": tc.constraints, "glossary": tc.glossary})
    glossary = None if tc.glossary is None else Glossary.read(tc.glossary)
    threads = Runtime.install(tc.threads, tune_memory=False, signals=False).threads
    translator = Translator.open(tc.checkpoint, tc.quantize, tc.device, tc.backend)
    translator.check_alignment(tc.decode.alignment)
    translator.source_tag(tc.tgt_lang)  # a language the model lacks is refused before any input is read
    if tc.input == "-" and sys.stdin.isatty() and tc.prefix is None and tc.constraints is None:
        _interactive(translator, tc, glossary)
        return
    lines, total = _lines(tc)
    starts, held = _prefixes(tc), _constraints(tc)
    out = sys.stdout if tc.output == "-" else open(resolve_path(tc.output), "w", encoding="utf-8")
    bar = tqdm(total=total, unit="sent", desc="translating", disable=not sys.stderr.isatty(), dynamic_ncols=True)
    pieces = [0]

    def advance(sentences: int, source_pieces: int) -> None:
        threads.tick(source_pieces)  # threads=auto: the search time of each batch
        pieces[0] += source_pieces
        bar.set_postfix(src_tok_s=f"{pieces[0] / max(bar.format_dict['elapsed'], 1e-9):,.0f}", refresh=False)
        bar.update(sentences)

    try:
        done = 0
        for chunk in chunks(lines, CHUNK):
            write = translator.nbest if tc.decode.n_best > 1 else translator.translate
            threads.restart()
            texts = write(chunk, tc.decode, max_input_len=tc.max_input_len, first_line=done + 1, on_batch=advance,
                          prefixes=None if starts is None else _take(starts, len(chunk), tc.prefix),
                          terms=_terms(chunk, held, tc, glossary), target=tc.tgt_lang)
            out.write("".join(text + "\n" for text in texts))
            out.flush()
            done += len(chunk)
            bar.update(done - bar.n)  # empty lines are not decoded, but they are done
    finally:
        bar.close()
        if out is not sys.stdout:
            out.close()
