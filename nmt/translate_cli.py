"""``nmt translate``: files or stdin in, translations out, one line per line; a prompt on a terminal."""

from __future__ import annotations

import sys
from pathlib import Path

import torch

from nmt.config import TranslateConfig
from nmt.data.load import decode_lines, read_lines, resolve_path
from nmt.errors import NMTError
from nmt.translate import Translator, chunks

CHUNK = 2000  # lines translated together: bounded memory, good batches


def _interactive(translator: Translator, tc: TranslateConfig) -> None:
    print("Type a sentence and press Enter (Ctrl-D to quit).", file=sys.stderr)
    while True:
        try:
            line = input("> ")
        except EOFError:
            print(file=sys.stderr)
            return
        print(translator.translate([line], tc.decode, max_input_len=tc.max_input_len)[0], flush=True)


def run_translate(tc: TranslateConfig) -> None:
    """Translate ``tc.input`` to ``tc.output`` with the model in ``tc.checkpoint``."""
    if tc.threads > 0:
        torch.set_num_threads(tc.threads)
    translator = Translator.load(str(resolve_path(tc.checkpoint)), tc.quantize)
    if tc.input == "-" and sys.stdin.isatty():
        _interactive(translator, tc)
        return
    if tc.input == "-":
        lines = decode_lines(sys.stdin.buffer, "<stdin>")
    else:
        path = Path(tc.input).expanduser()
        if not path.is_file():
            raise NMTError(f"input file not found: {path}")
        lines = read_lines(path)
    out = sys.stdout if tc.output == "-" else open(Path(tc.output).expanduser(), "w", encoding="utf-8")
    try:
        done = 0
        for chunk in chunks(lines, CHUNK):
            if tc.decode.n_best > 1:
                texts = translator.nbest(chunk, tc.decode, max_input_len=tc.max_input_len, first_line=done + 1)
            else:
                texts = translator.translate(chunk, tc.decode, max_input_len=tc.max_input_len, first_line=done + 1)
            out.write("".join(text + "\n" for text in texts))
            out.flush()
            done += len(chunk)
    finally:
        if out is not sys.stdout:
            out.close()
