"""``nmt score phrase_table=``: a Moses phrase table comes back with p(tgt|src) (and p(src|tgt)) appended to each
entry's scores, everything else as it was; the table is read in chunks; bad lines are named and leave no output."""

from __future__ import annotations

import gzip
import itertools
import math
import random
import tracemalloc
from collections.abc import Iterator
from pathlib import Path

import pytest
import torch

from nmt.bench import phrase_table as bench
from nmt.cli.main import main
from nmt.config import ScoreConfig
from nmt.data.batching import collate
from nmt.decoding.translate import Translator
from nmt.errors import ConfigValueError, NMTError
from nmt.evaluation.phrase_table import read_chunks, score_table, with_columns
from nmt.evaluation.score import score_pairs

XX = "ka lo mi ne ru ta po si vu de".split()
YY = "cat dog sun moon tree river stone bird fish house".split()
# 5, 4 and 3 fields; Moses's empty trailing fields, and a 6th (sparse features) and 7th (properties) kept as written
ENTRIES = ["ka lo ||| cat dog ||| 0.5 0.25 0.5 0.125 ||| 0-0 1-1 ||| 2 4 1",
           "mi ||| sun ||| 1 0.5 1 0.5 ||| 0-0",
           "ne ru ta ||| moon tree river ||| 0.1 0.2 0.3 0.4",
           "po ||| stone ||| 0.5 0.5 0.5 0.5 ||| 0-0 ||| 1 1 1 ||| |||",
           "si vu ||| bird fish ||| 0.01 1e-05 0.3 2.718 ||| 0-0 1-1 ||| 3 3 3 ||| dlm_0=1 ||| {{Counts 3 3}}"]


def _pairs(n: int, seed: int) -> list[tuple[str, str]]:
    rng = random.Random(seed)
    out = []
    for _ in range(n):
        idx = [rng.randrange(len(XX)) for _ in range(rng.randint(1, 6))]
        out.append((" ".join(XX[i] for i in idx), " ".join(YY[i] for i in idx)))
    return out


@pytest.fixture(scope="module")
def models(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A fresh tiny xx -> yy checkpoint and a yy -> xx one (untrained: scores are what is compared, not quality)."""
    tmp = tmp_path_factory.mktemp("phrase-models")
    pairs = _pairs(200, 0)
    forward = bench.fresh_checkpoint(pairs, tmp / "fwd.pt", tmp / "cache", vocab_size=40, emb_dim=8, hidden_dim=16)
    reverse = bench.fresh_checkpoint([(t, s) for s, t in pairs], tmp / "rev.pt", tmp / "cache", vocab_size=40,
                                     emb_dim=8, hidden_dim=16, seed=1)
    return forward, reverse


def _write(path: Path, lines: list[str]) -> Path:
    data = "".join(f"{line}\n" for line in lines).encode("utf-8")
    path.write_bytes(gzip.compress(data) if path.suffix == ".gz" else data)
    return path


def _read(path: Path) -> list[str]:
    data = path.read_bytes()
    return (gzip.decompress(data) if path.suffix == ".gz" else data).decode("utf-8").splitlines()


def _nmt_score(ckpt: Path, src: list[str], tgt: list[str], tmp: Path) -> list[float]:
    """What ``nmt score src= tgt=`` prints: total log p of each pair."""
    s, t = _write(tmp / "pairs.s", src), _write(tmp / "pairs.t", tgt)
    main(["score", f"checkpoint={ckpt}", f"src={s}", f"tgt={t}", f"output={tmp / 'scores'}", "threads=1"])
    return [float(line.split("\t")[0]) for line in _read(tmp / "scores")]


@pytest.mark.parametrize(("src_name", "out_name"), [("pt", "scored"), ("pt.gz", "scored.gz"), ("pt.gz", "scored")])
def test_columns_are_appended_and_equal_nmt_score(models: tuple[Path, Path], tmp_path: Path, src_name: str,
                                                  out_name: str) -> None:
    table, out = _write(tmp_path / src_name, ENTRIES), tmp_path / out_name
    main(["score", f"checkpoint={models[0]}", f"phrase_table={table}", f"reverse={models[1]}", f"output={out}",
          "threads=1"])
    if out_name.endswith(".gz"):
        assert out.read_bytes()[:2] == b"\x1f\x8b"
    lines = _read(out)
    assert len(lines) == len(ENTRIES)
    src = [e.split(" ||| ")[0] for e in ENTRIES]
    tgt = [e.split(" ||| ")[1] for e in ENTRIES]
    forward, backward = _nmt_score(models[0], src, tgt, tmp_path), _nmt_score(models[1], tgt, src, tmp_path)
    for line, entry, lp, back in zip(lines, ENTRIES, forward, backward, strict=True):
        fields, old = line.split(" ||| "), entry.split(" ||| ")
        assert fields[:2] + fields[3:] == old[:2] + old[3:]  # all but the scores as they were
        scores = fields[2].split(" ")
        assert scores[:-2] == old[2].split(" ")  # the old scores as written, the new ones at the end
        p_fwd, p_back = map(float, scores[-2:])
        assert 0 < p_fwd <= 1 and 0 < p_back <= 1  # probabilities: Moses takes their log when it loads the table
        assert math.log(p_fwd) == pytest.approx(lp, abs=1e-3) and math.log(p_back) == pytest.approx(back, abs=1e-3)


def test_with_columns_keeps_every_byte_but_the_new_scores() -> None:
    assert with_columns("a ||| b ||| 0.5 ||| 0-0 ||| 1 1 1".split("|||"), [0.25]) == \
        "a ||| b ||| 0.5 0.25 ||| 0-0 ||| 1 1 1"
    assert with_columns("a b ||| c ||| 1 2".split("|||"), [0.5, 1e-07]) == "a b ||| c ||| 1 2 0.5 1e-07"
    assert with_columns("a ||| b |||".split("|||"), [1.0]) == "a ||| b ||| 1"
    assert with_columns("a ||| b ||| 0.5  |||  0-0 |||".split("|||"), [0.125]) == "a ||| b ||| 0.5 0.125  |||  0-0 |||"


def test_phrase_eos_false_leaves_the_end_of_sentence_term_out(models: tuple[Path, Path], tmp_path: Path) -> None:
    translator = Translator.open(str(models[0]))
    src = [e.split(" ||| ")[0] for e in ENTRIES]
    tgt = [e.split(" ||| ")[1] for e in ENTRIES]
    with_eos = score_pairs(translator, src, tgt)
    without = score_pairs(translator, src, tgt, eos=False)
    ids = translator.tokenizer.encode_tgt(tgt)
    for (lp, n), (lp_no, n_no), s, y in zip(with_eos, without, src, ids, strict=True):
        assert n == len(y) + 1 and n_no == len(y)
        batch = collate(translator.tokenizer.encode_src([s]), [y], [0])
        with torch.no_grad():
            eos = translator.model.token_logprobs(batch)[0, len(y), batch.tgt_out[0, len(y)]].item()
        assert lp_no == pytest.approx(lp - eos, abs=1e-4) and lp_no > lp
    table, out = _write(tmp_path / "pt", ENTRIES), tmp_path / "scored"
    main(["score", f"checkpoint={models[0]}", f"phrase_table={table}", f"output={out}", "phrase_eos=false",
          "threads=1"])
    got = [math.log(float(line.split(" ||| ")[2].split()[-1])) for line in _read(out)]
    assert got == pytest.approx([lp for lp, _ in without], abs=1e-4)


def test_the_reader_holds_one_chunk_and_chunking_changes_nothing(models: tuple[Path, Path], tmp_path: Path) -> None:
    consumed: list[int] = []

    def endless() -> Iterator[str]:  # a table without end
        for n in itertools.count():
            consumed.append(n)
            yield "ka ||| cat ||| 0.5"

    first = next(read_chunks(endless(), "endless", size=1000))
    assert len(first) == 1000 and len(consumed) == 1000  # what was read of the table is one chunk, no more
    pairs = _pairs(3000, 7)
    lines = [f"{s} ||| {t} ||| 0.5 0.5 ||| 0-0 ||| 1 1 1" for s, t in pairs]
    table = _write(tmp_path / "big.pt", lines)
    translator = Translator.open(str(models[0]))
    sizes: list[int] = []
    assert score_table([translator], table, tmp_path / "small-chunks", chunk_lines=250,
                       on_chunk=sizes.append) == (3000, 2)
    assert sizes == [250] * 12
    score_table([translator], table, tmp_path / "one-chunk")
    small, whole = _read(tmp_path / "small-chunks"), _read(tmp_path / "one-chunk")
    # the same entries in the same order; the new score differs only in float rounding (other batch companions)
    assert [line.rsplit(" ||| ", 2)[0].rsplit(" ", 1)[0] for line in small] == \
        [line.rsplit(" ||| ", 2)[0].rsplit(" ", 1)[0] for line in whole]
    assert [float(line.split(" ||| ")[2].split()[-1]) for line in small] == \
        pytest.approx([float(line.split(" ||| ")[2].split()[-1]) for line in whole], rel=1e-4)


def test_python_memory_stays_at_one_chunk(models: tuple[Path, Path], tmp_path: Path) -> None:
    """The Python objects alive at the peak (the text of the entries, their fields, pieces and scores) are those
    of one chunk: with chunks 20 times smaller the peak is several times lower, whatever the table's length."""
    lines = [f"{s} ||| {t} ||| 0.5 0.5 0.5 0.5 ||| 0-0 ||| 1 1 1" for s, t in _pairs(4000, 3)]
    table = _write(tmp_path / "pt", lines)
    translator = Translator.open(str(models[0]))
    peaks = []
    for chunk in (200, 4000):
        tracemalloc.start()
        score_table([translator], table, tmp_path / f"out{chunk}", chunk_lines=chunk, batch_tokens=2048)
        peaks.append(tracemalloc.get_traced_memory()[1])
        tracemalloc.stop()
    assert peaks[0] * 4 < peaks[1], peaks


BAD = {
    "two fields": (b"ka ||| cat", "not a Moses phrase-table entry: 2 field(s)"),
    "no fields": (b"", "not a Moses phrase-table entry: 1 field(s)"),
    "a word as score": (b"ka ||| cat ||| 0.5 high", "score 'high' is not a number"),
    "nan": (b"ka ||| cat ||| nan 0.5", "score 'nan' is not a number"),
    "empty source": (b"  ||| cat ||| 0.5 0.5", "empty source phrase"),
    "empty target": (b"ka |||  ||| 0.5 0.5", "empty target phrase"),
    "score count": (b"ka ||| cat ||| 0.5", "1 scores where the entries before have 2"),
    "utf-8": (b"ka \xff ||| cat ||| 0.5 0.5", "invalid UTF-8"),
}


@pytest.mark.parametrize(("bad", "message"), BAD.values(), ids=BAD.keys())
@pytest.mark.parametrize("suffix", ["", ".gz"])
def test_a_bad_line_is_named_and_nothing_is_written(models: tuple[Path, Path], tmp_path: Path, bad: bytes,
                                                    message: str, suffix: str) -> None:
    good = [f"{s} ||| {t} ||| 0.5 0.5" for s, t in _pairs(3, 1)]
    data = "".join(f"{line}\n" for line in good[:2]).encode() + bad + b"\n" + f"{good[2]}\n".encode()
    table = tmp_path / f"pt{suffix}"
    table.write_bytes(gzip.compress(data) if suffix else data)
    (tmp_path / "out").mkdir()
    previous = _write(tmp_path / "out" / "scored", ["an older table"])
    with pytest.raises(NMTError) as err:
        score_table([Translator.open(str(models[0]))], table, previous, chunk_lines=2)  # a chunk is written first
    assert str(err.value).startswith(f"{table}:3: ") and message in str(err.value)
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["scored"]  # no temporary file is left
    assert _read(previous) == ["an older table"]


def test_the_command_names_the_bad_line_and_refuses_an_input_as_output(models: tuple[Path, Path], tmp_path: Path,
                                                                       capsys: pytest.CaptureFixture,
                                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    table = _write(tmp_path / "pt", [*ENTRIES[:3], "ka ||| cat"])
    before = table.read_bytes()
    cases = {f"output={tmp_path / 'scored'}": "pt:4: not a Moses phrase-table entry",
             "output=./pt": "output=./pt would overwrite phrase_table",
             f"output={models[0]}": "would overwrite checkpoint",
             "output=-": "phrase_table needs output=FILE"}
    for output, message in cases.items():
        with pytest.raises(SystemExit) as exit_:
            main(["score", f"checkpoint={models[0]}", "phrase_table=pt", output, "threads=1"])
        assert exit_.value.code == 2
        err = capsys.readouterr().err
        assert err.startswith("nmt score: error: ") and message in err and err.count("\n") == 1, err
    assert table.read_bytes() == before and sorted(p.name for p in tmp_path.iterdir()) == ["pt"]


def test_phrase_table_does_not_go_with_other_inputs() -> None:
    with pytest.raises(ConfigValueError, match="without src, tgt, tsv or nbest"):
        ScoreConfig(checkpoint="x", phrase_table="pt", src="a")
    with pytest.raises(ConfigValueError, match="give phrase_table too"):
        ScoreConfig(checkpoint="x", src="a", tgt="b", reverse="y")


def test_the_bench_scores_a_synthetic_table(models: tuple[Path, Path], tmp_path: Path, lines_writer,
                                            capsys: pytest.CaptureFixture) -> None:
    pairs = _pairs(50, 2)
    lines_writer(tmp_path / "corpus" / "train.xx", [s for s, _ in pairs])
    lines_writer(tmp_path / "corpus" / "train.yy", [t for _, t in pairs])
    bench.main(["--entries", "600", "--chunk-lines", "200", "--checkpoint", str(models[0]), "--corpus",
                str(tmp_path / "corpus"), "--src-lang", "xx", "--tgt-lang", "yy", "--gz", "--threads", "1",
                "--out-dir", str(tmp_path / "bench")])
    assert "600 entries in" in capsys.readouterr().err
    assert len(_read(tmp_path / "bench" / "scored.gz")) == 600
    assert all(len(line.split(" ||| ")) == 5 for line in _read(tmp_path / "bench" / "table.gz"))
