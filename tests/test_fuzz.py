"""Property tests (hypothesis): translation never crashes and keeps one output line per input line, the
tokenizer round-trips the text its normaliser keeps, and the corpus reader fails only with NMTError.

Example counts are bounded so the module runs in seconds; ``-m slow`` runs the same properties with more.
"""

from __future__ import annotations

import gzip
import tempfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_bad_input import tiny_run

from nmt.cli.translate import run_translate
from nmt.config import DecodeConfig, TranslateConfig
from nmt.data.load import check_parallel, check_tsv, decode_lines, read_lines
from nmt.decoding.translate import Translator
from nmt.errors import NMTError

FAST = settings(max_examples=150, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow])


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory, corpus_writer) -> Path:
    return tiny_run(tmp_path_factory.mktemp("fuzz"), corpus_writer)


@pytest.fixture(scope="module")
def translator(run: Path) -> Translator:
    return Translator.open(str(run))


# Characters that break naive text handling: controls, line and paragraph separators, bidi marks, right-to-left
# scripts, combining marks, emoji with modifiers and joiners, the BOM, the sentencepiece meta symbol,
# non-characters, the highest code point, lone surrogates and NUL.
NASTY = list("\x00\x01\x07\x1b\x7f\t\r\x0b\x0c\x1c\x85\u2028\u2029\u200b\u200d\u200e\u200f\u202a\u202e\u2066"
             "\u0301\u0308\u20dd\u05d0\u05e9\u0645\u0631\u062d\ufeff\ufffd\ufffe\u2581\U0010ffff\ud800\udfff"
             "😀👍🏽👨‍👩‍👧ｋａ ") + ["ka ", "lo ", "mi"]
LINE = st.one_of(
    st.text(max_size=40),  # arbitrary code points (hypothesis excludes surrogates here)
    st.lists(st.sampled_from(NASTY), max_size=30).map("".join),
    st.text(alphabet=st.characters(codec=None, categories=["Cs", "Cc", "Mn", "So", "Zl", "Zp"]), max_size=20),
    st.builds(lambda word, n: word * n, st.sampled_from(["ka lo ", "é", "😀", "\u0301", "x"]),
              st.integers(200, 3000)),  # very long lines
    st.just(""),
)


def _check_translate(translator: Translator, lines: list[str], beam: bool) -> None:
    dc = DecodeConfig(method="beam" if beam else "greedy", beam=2)
    out = translator.translate(lines, dc, max_input_len=100)
    assert len(out) == len(lines)
    assert all(isinstance(o, str) and "\n" not in o and "\r" not in o for o in out)
    assert [o for o, line in zip(out, lines, strict=True) if not line] == [""] * lines.count("")


@FAST
@given(lines=st.lists(LINE, max_size=6), beam=st.booleans())
def test_translate_never_crashes_and_keeps_one_line_per_line(translator: Translator, lines: list[str],
                                                             beam: bool) -> None:
    _check_translate(translator, lines, beam)


@pytest.mark.slow
@settings(FAST, max_examples=1500)
@given(lines=st.lists(LINE, max_size=12), beam=st.booleans())
def test_translate_never_crashes_many_examples(translator: Translator, lines: list[str], beam: bool) -> None:
    _check_translate(translator, lines, beam)


FILE_LINE = st.text(alphabet=st.characters(codec="utf-8", exclude_characters="\n\x00"), max_size=30)


@settings(FAST, max_examples=40)
@given(lines=st.lists(FILE_LINE, max_size=8), crlf=st.booleans())
def test_translate_command_writes_one_line_per_input_line(run: Path, lines: list[str], crlf: bool) -> None:
    """Through files: whatever the lines hold (CR, U+2028, a BOM, ...), one output line per input line."""
    with tempfile.TemporaryDirectory() as tmp:
        src, out = Path(tmp) / "in.txt", Path(tmp) / "out.txt"
        src.write_bytes("".join(line + ("\r\n" if crlf else "\n") for line in lines).encode())
        run_translate(TranslateConfig(checkpoint=str(run), input=str(src), output=str(out), max_input_len=30,
                                      decode=DecodeConfig(max_len_ratio=0.5, max_len_extra=3)))
        written = out.read_bytes().decode("utf-8")
    assert written.count("\n") == len(lines) and written.endswith("\n") == bool(lines)


# --------------------------------------------------------------------------- tokenizer round trip


@pytest.fixture(scope="module")
def alphabet(translator: Translator) -> list[str]:
    """Characters of the tokenizer's ordinary pieces (not the meta symbol ▁ that stands for a space)."""
    sp = translator.tokenizer.src
    pieces = [sp.id_to_piece(i) for i in range(sp.get_piece_size())
              if not (sp.is_control(i) or sp.is_unknown(i) or sp.is_unused(i))]
    return sorted({c for p in pieces for c in p} - {"\u2581"})


def _known_text(alphabet: list[str]) -> st.SearchStrategy[str]:
    # the vocabulary's characters, whitespace the normaliser folds, and forms NFKC maps onto the alphabet
    fullwidth = [chr(ord(c) + 0xFEE0) for c in alphabet if "!" <= c <= "~"]
    return st.lists(st.sampled_from([*alphabet, *fullwidth, " ", "  ", "\t", "\u3000", "\u00a0"]),
                    max_size=60).map("".join)


@given(data=st.data())
@FAST
def test_tokenizer_round_trips_what_the_normaliser_keeps(translator: Translator, alphabet: list[str],
                                                         data: st.DataObject) -> None:
    sp = translator.tokenizer.src
    text = data.draw(_known_text(alphabet))
    normal = sp.normalize(text).replace("\u2581", " ").removeprefix(" ")
    ids = translator.tokenizer.encode_src([text])[0]
    assert 1 not in ids  # no unknown piece
    assert translator.tokenizer.decode_tgt([ids])[0] == normal
    if normal == text:  # text the normaliser keeps comes back unchanged
        assert translator.tokenizer.decode_tgt([ids])[0] == text


@FAST
@given(text=st.text(max_size=80))
def test_tokenizer_takes_any_text(translator: Translator, alphabet: list[str], text: str) -> None:
    tok = translator.tokenizer
    ids = tok.encode_src([text])[0]
    assert all(0 <= i < tok.src_vocab_size for i in ids)
    back = tok.decode_tgt([ids])[0]
    assert set(back) <= {*alphabet, " ", "\u2047"}  # unknown characters come back as ⁇
    assert tok.encode_src([back])[0] == ids or "\u2047" in back  # decoded known text encodes the same


# --------------------------------------------------------------------------- corpus reader


def _mangled_text() -> st.SearchStrategy[bytes]:
    """Mostly-text bytes with damage: random bytes spliced into UTF-8 text."""
    return st.builds(lambda text, junk, at: (lambda b: b[:at] + junk + b[at:])(text.encode()),
                     st.text(max_size=60), st.binary(max_size=6), st.integers(0, 80))


BYTES = st.one_of(st.binary(max_size=200), _mangled_text())


@FAST
@given(data=BYTES)
def test_decode_lines_gives_lines_or_nmt_error(data: bytes) -> None:
    import io

    try:
        lines = list(decode_lines(io.BytesIO(data), "fuzz.txt"))
    except NMTError as err:
        assert str(err).startswith("fuzz.txt:") and "\n" not in str(err)
        return
    assert len(lines) == data.count(b"\n") + (not data.endswith(b"\n") and data != b"")
    assert all("\n" not in line and not line.endswith("\r") for line in lines)


def _check_corpus_reader(src: bytes, tgt: bytes, gz: str, cut: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        paths = []
        for side, data in (("src", src), ("tgt", tgt)):
            if gz == "both" or gz == side:
                data = gzip.compress(data)
                data = data[:-cut] if cut else data
            path = folder / (f"c.{side}.gz" if gz in ("both", "fake") or gz == side else f"c.{side}")
            path.write_bytes(data)
            paths.append(path)
        try:
            n = check_parallel(*paths)
            assert n == len(list(read_lines(paths[0]))) == len(list(read_lines(paths[1]))) > 0
            check_tsv(paths[0])
        except NMTError as err:
            assert "\n" not in str(err) and any(str(p) in str(err) for p in paths), str(err)


CORPUS = dict(src=BYTES, tgt=BYTES, gz=st.sampled_from(["", "src", "both", "fake"]), cut=st.integers(0, 40))


@settings(FAST, max_examples=300)
@given(**CORPUS)
def test_corpus_reader_fails_only_with_nmt_error(src: bytes, tgt: bytes, gz: str, cut: int) -> None:
    """Random bytes as a parallel corpus, plain or gzip (whole, cut short, or not gzip at all): the checks
    return a line count or raise NMTError, never anything else."""
    _check_corpus_reader(src, tgt, gz, cut)


@pytest.mark.slow
@settings(FAST, max_examples=5000)
@given(**CORPUS)
def test_corpus_reader_many_examples(src: bytes, tgt: bytes, gz: str, cut: int) -> None:
    _check_corpus_reader(src, tgt, gz, cut)


@settings(FAST, max_examples=25, suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(lines=st.lists(st.tuples(FILE_LINE, FILE_LINE), min_size=1, max_size=6))
def test_what_the_checks_accept_loads_unchanged(lines: list[tuple[str, str]]) -> None:
    """Text that passes validation loads as datasets rows, line for line (the BOM and CR rules applied)."""
    from nmt.data.load import load_text_pair

    with tempfile.TemporaryDirectory() as tmp:
        for i, lang in enumerate(("xx", "yy")):
            (Path(tmp) / f"train.{lang}").write_bytes("".join(pair[i] + "\n" for pair in lines).encode())
        ds = load_text_pair(Path(tmp), "train", "xx", "yy")
        expected = [(s.rstrip("\r"), t.rstrip("\r")) for s, t in lines]
        expected[0] = (expected[0][0].removeprefix("\ufeff"), expected[0][1].removeprefix("\ufeff"))
        assert list(zip(ds["src"], ds["tgt"], strict=True)) == expected
