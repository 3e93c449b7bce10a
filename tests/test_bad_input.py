"""Bad input, one case a test: a one-line error naming the file and line, or a documented handling.

Covered elsewhere: invalid UTF-8, a missing or empty corpus file, misaligned files and a BOM/CRLF text corpus
(tests/data/test_load.py, tests/test_cli.py); a missing checkpoint for translate and misaligned src/ref files
for evaluate (tests/test_translate.py).
"""

from __future__ import annotations

import gzip
import io
import logging
from dataclasses import replace
from pathlib import Path

import pytest
from test_cli import last_line, nmt
from test_train import _config

from nmt.cli.main import main
from nmt.cli.translate import run_translate
from nmt.config import DataConfig, DecodeConfig, EvaluateConfig, ScoreConfig, TranslateConfig
from nmt.data.load import decode_lines, load_table
from nmt.data.prepare import prepare
from nmt.decoding.translate import Translator
from nmt.errors import NMTError
from nmt.evaluation import evaluate as evaluate_mod
from nmt.training.train import train


def tiny_run(folder: Path, corpus_writer) -> Path:
    """A run directory with a 2-update model on the tiny corpus (its own Hugging Face and nmt caches)."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("HF_DATASETS_CACHE", str(folder / "hf-datasets"))
        mp.setattr("datasets.config.HF_DATASETS_CACHE", folder / "hf-datasets")
        data = replace(DataConfig(), name="tiny", format="text", path=str(corpus_writer(folder / "corpus")),
                       src_lang="xx", tgt_lang="yy", vocab_size=40, cache_dir=str(folder / "nmt-cache"))
        train(_config(data, folder / "run", max_steps=2, eval_every=2))
    return folder / "run"


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory, corpus_writer) -> Path:
    return tiny_run(tmp_path_factory.mktemp("bad-input"), corpus_writer)


def _translate_file(run: Path, tmp_path: Path, data: bytes, **kw) -> list[str]:
    src = tmp_path / "in.txt"
    src.write_bytes(data)
    out = tmp_path / "out.txt"
    run_translate(TranslateConfig(checkpoint=str(run), input=str(src), output=str(out), **kw))
    return out.read_bytes().decode("utf-8").split("\n")


# --------------------------------------------------------------------------- binary and mis-encoded input

BINARY = {
    "gzip": gzip.compress(b"ka lo mi\n" * 20),
    "png": b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x00\x10",
    "utf16": "ka lo\nmi ne\n".encode("utf-16"),  # with its byte-order mark
    "utf16-no-bom": "ka lo\nmi ne\n".encode("utf-16-le"),  # valid UTF-8, but NUL bytes
    "nul-in-line-3": b"ka lo\nmi\nne\x00ru\n",
}
EXPECTED_LINE = {"gzip": 1, "png": 1, "utf16": 1, "utf16-no-bom": 1, "nul-in-line-3": 3}


@pytest.mark.parametrize("kind", BINARY)
def test_binary_input_names_file_and_line(kind: str) -> None:
    with pytest.raises(NMTError) as err:
        list(decode_lines(io.BytesIO(BINARY[kind]), "in.bin"))
    msg = str(err.value)
    assert msg.startswith(f"in.bin:{EXPECTED_LINE[kind]}: ") and "\n" not in msg
    assert any(word in msg for word in ("UTF-8", "UTF-16", "binary"))


def test_binary_input_to_translate_is_one_line_exit_2(run: Path, tmp_path: Path) -> None:
    (tmp_path / "photo.png").write_bytes(BINARY["png"])
    out = nmt("translate", f"checkpoint={run}", "input=photo.png", cwd=tmp_path)
    assert out.returncode == 2 and out.stdout == ""
    line = last_line(out.stderr)
    assert line.startswith("nmt translate: error: photo.png:1: invalid UTF-8") and "Traceback" not in out.stderr


def test_binary_on_stdin_is_refused(run: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    class Stdin:
        buffer = io.BytesIO(b"ka lo\n" + BINARY["utf16-no-bom"])

        def isatty(self) -> bool:
            return False

    monkeypatch.setattr("sys.stdin", Stdin())
    with pytest.raises(NMTError, match=r"<stdin>:2: NUL byte"):
        run_translate(TranslateConfig(checkpoint=str(run), output=str(tmp_path / "out")))


# --------------------------------------------------------------------------- BOM, CRLF, empty and long lines


def test_translate_strips_a_bom_and_crlf(run: Path, tmp_path: Path) -> None:
    """A UTF-8 byte-order mark at the start of the input and CR before LF are dropped: the output is the same
    as for a plain LF file, with LF line ends."""
    plain = _translate_file(run, tmp_path, b"ka lo\nmi ne ru\n\nde\n")
    windows = _translate_file(run, tmp_path, "\ufeffka lo\r\nmi ne ru\r\n\r\nde\r\n".encode())
    assert windows == plain and len(plain) == 5 and plain[-1] == "" and plain[2] == ""


@pytest.mark.parametrize("fmt", ["tsv", "jsonl"])
def test_tables_with_bom_and_crlf(tmp_path: Path, fmt: str) -> None:
    body = ("\ufeffhola\thello\r\nadiós\tbye\r\n" if fmt == "tsv" else
            '\ufeff{"es": "hola", "en": "hello"}\r\n{"es": "adiós", "en": "bye"}\r\n')
    path = tmp_path / f"train.{fmt}"
    path.write_bytes(body.encode())
    ds = load_table(str(path), fmt, "train", "es", "en")
    assert list(zip(ds["src"], ds["tgt"], strict=True)) == [("hola", "hello"), ("adiós", "bye")]


def test_empty_input_gives_empty_output(run: Path, tmp_path: Path) -> None:
    assert _translate_file(run, tmp_path, b"") == [""]  # no lines in, no lines out
    with pytest.raises(NMTError, match=r"input file not found: .*nope\.txt"):
        run_translate(TranslateConfig(checkpoint=str(run), input=str(tmp_path / "nope.txt")))


def test_pairs_with_an_empty_side_are_dropped_from_training(tiny_data_cfg: DataConfig, lines_writer) -> None:
    """Training drops a pair whose source or target is empty (or only spaces); dev keeps every line."""
    folder = Path(tiny_data_cfg.path)
    for split, empty_src, empty_tgt in (("train", [2, 7], [4, 9, 11]), ("dev", [1], [5])):
        for lang, empty in (("xx", empty_src), ("yy", empty_tgt)):
            lines = (folder / f"{split}.{lang}").read_text().splitlines()
            for i in empty:
                lines[i] = "" if i != 11 else "   "
            lines_writer(folder / f"{split}.{lang}", lines)
    corpus = prepare(tiny_data_cfg)
    assert corpus.n_train_raw == 60 and len(corpus.train_src) == 55
    assert all(corpus.train_src) and all(corpus.train_tgt)
    assert len(corpus.dev_src) == 8 and corpus.dev_refs[5] == "" and corpus.dev_src[1] == []


def test_a_10000_token_line_is_dropped_from_training(tiny_data_cfg: DataConfig, tmp_path: Path,
                                                     lines_writer) -> None:
    folder = Path(tiny_data_cfg.path)
    for lang, word in (("xx", "ka"), ("yy", "cat")):
        lines = (folder / f"train.{lang}").read_text().splitlines()
        lines_writer(folder / f"train.{lang}", [*lines, " ".join([word] * 10_000)])
    corpus = prepare(tiny_data_cfg)
    assert corpus.n_train_raw == 61 and len(corpus.train_src) == 60
    assert max(len(x) for x in corpus.train_src) <= tiny_data_cfg.max_len
    assert train(_config(tiny_data_cfg, tmp_path / "run", max_steps=2, eval_every=2)).step == 2


def test_a_10000_token_line_is_truncated_by_translate(run: Path, caplog: pytest.LogCaptureFixture) -> None:
    t = Translator.open(str(run))
    lines = ["ka lo", " ".join(["ka lo mi ne ru"] * 2000), "mi"]
    with caplog.at_level(logging.WARNING, logger="nmt.translate"):
        out = t.translate(lines, DecodeConfig(max_len_ratio=0.1), max_input_len=50, first_line=101)
    assert len(out) == 3 and all("\n" not in o for o in out)
    warnings = [r.getMessage() for r in caplog.records]
    assert warnings == ["line 102 (and 0 more) longer than 50 pieces: truncated"]


# --------------------------------------------------------------------------- command lines and files


@pytest.mark.parametrize(("argv", "expected"), [
    (["train", "train.lrr=1"], "Key 'lrr' not in 'TrainConfig'"),
    (["train", "model=nope"], "Could not find 'model/nope'; options: cho2014, "),
    (["train", "train.max_steps=many"], "Value 'many' of type 'str' could not be converted to Integer"),
    (["translate", "checkpoint=x", "decode=wide"], "Could not find 'decode/wide'; options: beam5, greedy"),
    (["evaluate", "checkpoint=x", "bootstrapp=5"], "Key 'bootstrapp' not in 'EvaluateConfig'"),
], ids=["key", "group", "type", "translate-group", "evaluate-key"])
def test_unknown_config_key_or_group_is_one_line_exit_2(argv: list[str], expected: str, tmp_path: Path,
                                                        capsys: pytest.CaptureFixture) -> None:
    with pytest.raises(SystemExit) as exit_:
        main([*argv, f"hydra.run.dir={tmp_path / 'run'}"])
    assert exit_.value.code == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1, err
    assert err.startswith(f"nmt {argv[0]}: error: bad command line: ") and expected in err
    assert not (tmp_path / "run").exists()


def test_unknown_group_through_the_command(tmp_path: Path) -> None:
    out = nmt("train", "model=huge", f"hydra.run.dir={tmp_path / 'run'}", cwd=tmp_path)
    assert out.returncode == 2 and out.stderr.count("\n") == 1
    assert "model/huge" in out.stderr and "Traceback" not in out.stderr


@pytest.mark.parametrize("command", ["evaluate", "score", "resume"])
def test_nonexistent_checkpoint(command: str, tmp_path: Path, tiny_data_cfg: DataConfig) -> None:
    missing = tmp_path / "no-such-run"
    with pytest.raises(NMTError, match="no-such-run"):
        if command == "evaluate":
            evaluate_mod.evaluate(EvaluateConfig(checkpoint=str(missing)))
        elif command == "score":
            from nmt.evaluation.score import run_score

            run_score(ScoreConfig(checkpoint=str(missing / "best.pt"), src="a", tgt="b"))
        else:
            train(_config(tiny_data_cfg, missing, resume=True))


def test_reference_count_must_match_the_sources(run: Path, tmp_path: Path,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(evaluate_mod, "_sacrebleu_set", lambda *a: (["ka lo", "mi", "ne"], ["cat dog", "sun"]))
    ec = EvaluateConfig(checkpoint=str(run), splits=[], sacrebleu_set="wmt99", out_dir=str(tmp_path / "ev"))
    with pytest.raises(NMTError, match="test set wmt99: 3 source sentences but 2 references"):
        evaluate_mod.evaluate(ec)
    assert not list((tmp_path / "ev").glob("*.hyp"))  # nothing translated or written


def test_damaged_sentencepiece_cache_is_trained_again(tiny_data_cfg: DataConfig,
                                                      caplog: pytest.LogCaptureFixture) -> None:
    first = prepare(tiny_data_cfg).tokenizer
    cached = list(Path(tiny_data_cfg.cache_dir).glob("spm/*/src.model"))
    assert len(cached) == 1
    cached[0].write_bytes(b"\x00damaged")
    with caplog.at_level(logging.WARNING, logger="nmt.tokenizer"):
        again = prepare(tiny_data_cfg).tokenizer
    assert again.src_model == cached[0].read_bytes() and again.src_vocab_size == first.src_vocab_size == 40
    assert any("unreadable" in r.getMessage() for r in caplog.records)
