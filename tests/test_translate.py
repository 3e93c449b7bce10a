"""`nmt translate` and `nmt evaluate` on a tiny trained run: counts, order, stdin = file, errors, reports."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
import torch
from test_cli import _env, last_line, nmt, train_args

from nmt import checkpoint
from nmt.config import DecodeConfig
from nmt.decoding.search import decode_best
from nmt.decoding.translate import Translator
from nmt.errors import NMTError
from nmt.evaluation.score import score_pairs


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory, corpus_writer: Callable[..., Path]) -> Path:
    tmp = tmp_path_factory.mktemp("translate")
    corpus_writer(tmp / "corpus")
    out = nmt(*train_args(tmp / "corpus", tmp / "run", tmp / "cache", "train.max_steps=20", "train.eval_every=10"),
              cwd=tmp)
    assert out.returncode == 0, out.stderr
    return tmp / "run"


LINES = ["ka lo mi", "", "ne ru ta po si vu", "de", "ka ka ka ka lo lo", ""]


@pytest.mark.parametrize("method", ["greedy", "beam"])
def test_one_line_out_per_line_in_and_order_kept(run: Path, method: str) -> None:
    t = Translator.open(str(run))
    dc = DecodeConfig(method=method, beam=3, batch_tokens=12)  # small batches: several per call
    out = t.translate(LINES, dc)
    assert len(out) == len(LINES)
    assert [o for o, line in zip(out, LINES, strict=True) if not line] == ["", ""]
    assert out == [t.translate([line], dc)[0] for line in LINES]  # batching and sorting change nothing


def test_checkpoints_list_the_target_pieces_and_search_scores_only_them(run: Path, tmp_path: Path) -> None:
    """Training stores the pieces seen on the target side (a joint vocabulary has source-only ones), the
    translator restricts its search to them; the members of an ensemble score the union of the pieces they saw."""
    seen = {p for line in (run.parent / "corpus" / "train.yy").read_text().splitlines()
            for p in Translator.open(str(run)).tokenizer.encode_tgt([line])[0]}
    for name in ("best.pt", "last.pt", "step-20.pt"):
        assert set(checkpoint.read(run / name)["target_pieces"].tolist()) == seen, name
    t = Translator.open(str(run))
    assert set(t.model.output_ids.tolist()) == seen | {0, 1, 2, 3} and len(seen) + 4 < t.tokenizer.tgt_vocab_size
    full = Translator.open(str(run))
    full.restrict(None)
    ids, dc = t.encode(LINES, 250), DecodeConfig(method="greedy")
    for mine, whole in zip(decode_best(t.model, ids, dc), decode_best(full.model, ids, dc), strict=True):
        assert set(mine) <= seen
        assert mine == whole or not set(whole) <= seen  # the argmax differs only where it was a left-out piece
    ensemble = Translator.open(f"[{run / 'best.pt'},{run / 'step-20.pt'}]").model
    assert all(set(m.output_ids.tolist()) == seen | {0, 1, 2, 3} for m in ensemble.members)
    assert torch.equal(ensemble.columns, t.model.columns)


def test_a_checkpoint_with_damaged_target_pieces_is_named(run: Path, tmp_path: Path) -> None:
    ckpt = checkpoint.read(run / "best.pt")
    ckpt = {k: v for k, v in ckpt.items() if k != "format"}
    ckpt["target_pieces"] = torch.tensor([5, 10**6], dtype=torch.int32)
    checkpoint.save(ckpt, tmp_path / "bad.pt")
    with pytest.raises(NMTError, match=r"bad\.pt: damaged checkpoint: its target_pieces") as err:
        Translator.open(str(tmp_path / "bad.pt"))
    assert "\n" not in str(err.value)


def test_stdin_and_file_give_the_same_output(run: Path, tmp_path: Path, lines_writer) -> None:
    src = lines_writer(tmp_path / "in.xx", LINES)
    by_file = nmt("translate", f"checkpoint={run}", f"input={src}", f"output={tmp_path / 'out'}", cwd=tmp_path)
    assert by_file.returncode == 0, by_file.stderr
    piped = subprocess.run([sys.executable, "-m", "nmt", "translate", f"checkpoint={run}"], input=src.read_bytes(),
                           capture_output=True, cwd=tmp_path, env=_env(tmp_path), timeout=120)
    assert piped.returncode == 0, piped.stderr
    text = (tmp_path / "out").read_text(encoding="utf-8")
    assert piped.stdout.decode() == text and len(text.splitlines()) == len(LINES)
    assert not (tmp_path / "outputs").exists()  # translate leaves no Hydra folders behind


def test_long_line_is_truncated_with_one_warning(run: Path, tmp_path: Path, lines_writer) -> None:
    src = lines_writer(tmp_path / "in.xx", ["ka lo", "ka lo mi ne ru ta po si vu de ka", "mi ne ru ta po si vu"])
    out = nmt("translate", f"checkpoint={run}", f"input={src}", "max_input_len=4", cwd=tmp_path)
    assert out.returncode == 0 and len(out.stdout.splitlines()) == 3
    warnings = [line for line in out.stderr.splitlines() if "truncated" in line]
    assert len(warnings) == 1 and "line 2" in warnings[0]


def test_bad_input_and_missing_checkpoint_fail_in_one_line(run: Path, tmp_path: Path) -> None:
    bad = tmp_path / "bad.xx"
    bad.write_bytes(b"ka lo\n\xff\xfe mi\n")
    out = nmt("translate", f"checkpoint={run}", f"input={bad}", cwd=tmp_path)
    assert out.returncode == 2 and "bad.xx:2: invalid UTF-8" in last_line(out.stderr)
    out = nmt("translate", f"checkpoint={tmp_path / 'nope'}", cwd=tmp_path)
    assert out.returncode == 2 and "nope" in last_line(out.stderr) and "Traceback" not in out.stderr


def test_evaluate_writes_scores_signatures_and_hypotheses(run: Path, tmp_path: Path) -> None:
    out = nmt("evaluate", f"checkpoint={run}", "splits=[dev,test]", "decode=beam5", f"out_dir={tmp_path / 'ev'}",
              "bootstrap=50", cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    report = json.loads((tmp_path / "ev" / "report.beam5.json").read_text())
    assert set(report["sets"]) == {"dev", "test"} and report["decode"]["beam"] == 5
    for name, res in report["sets"].items():
        assert res["sentences"] == 8
        assert len((tmp_path / "ev" / f"{name}.beam5.hyp").read_text().splitlines()) == 8
        assert "tok:13a" in res["bleu"]["signature"] and "ci95" in res["bleu"]
        assert {"chrf", "ter"} <= set(res)


def test_evaluate_rejects_misaligned_references(run: Path, tmp_path: Path, lines_writer) -> None:
    src = lines_writer(tmp_path / "s.xx", ["ka", "lo", "mi"])
    ref = lines_writer(tmp_path / "r.yy", ["cat", "dog"])
    out = nmt("evaluate", f"checkpoint={run}", "splits=[]", f"src={src}", f"ref={ref}", cwd=tmp_path)
    assert out.returncode == 2
    assert "s.xx has 3 lines" in last_line(out.stderr) and "r.yy has 2" in last_line(out.stderr)


def test_score_files_and_tsv_agree_and_match_the_model(run: Path, tmp_path: Path, lines_writer) -> None:
    src = ["ka lo", "mi ne ru", "ta"]
    tgt = ["cat dog", "sun moon tree", "river"]
    s, t = lines_writer(tmp_path / "p.xx", src), lines_writer(tmp_path / "p.yy", tgt)
    tsv = lines_writer(tmp_path / "p.tsv", [f"{a}\t{b}" for a, b in zip(src, tgt, strict=True)])
    by_files = nmt("score", f"checkpoint={run}", f"src={s}", f"tgt={t}", cwd=tmp_path)
    by_tsv = nmt("score", f"checkpoint={run}", f"tsv={tsv}", cwd=tmp_path)
    assert by_files.returncode == 0, by_files.stderr
    assert by_files.stdout == by_tsv.stdout
    rows = [tuple(map(float, line.split("\t"))) for line in by_files.stdout.splitlines()]
    assert len(rows) == 3 and all(total < 0 and per < 0 for total, per in rows)
    t_ = Translator.open(str(run))
    pieces = t_.tokenizer.encode_tgt(tgt)
    for (total, per), (lp, n), ids in zip(rows, score_pairs(t_, src, tgt), pieces, strict=True):
        assert abs(total - lp) < 1e-3 and n == len(ids) + 1 and abs(per - lp / n) < 1e-3


def test_nbest_rescoring_appends_feature_and_reranks(run: Path, tmp_path: Path, lines_writer) -> None:
    s = lines_writer(tmp_path / "s.xx", ["ka lo", "mi"])
    nb = lines_writer(tmp_path / "nb", ["0 ||| cat dog ||| lm= -1 ||| -1", "0 ||| sun sun sun sun ||| lm= -1 ||| -1",
                                        "1 ||| sun ||| lm= -2 ||| -2"])
    out = nmt("score", f"checkpoint={run}", f"src={s}", f"nbest={nb}", cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    assert len(lines) == 3 and all(" nmt= -" in line for line in lines)
    ranked = nmt("score", f"checkpoint={run}", f"src={s}", f"nbest={nb}", "rerank=true", "weight=1", cwd=tmp_path)
    totals = [(int(x.split("|||")[0]), float(x.split("|||")[3])) for x in ranked.stdout.splitlines()]
    assert [i for i, _ in totals] == [0, 0, 1] and totals[0][1] >= totals[1][1]
    bad = lines_writer(tmp_path / "bad", ["0 ||| cat ||| lm= -1", "7 ||| dog ||| lm= -1"])
    out = nmt("score", f"checkpoint={run}", f"src={s}", f"nbest={bad}", cwd=tmp_path)
    assert out.returncode == 2 and "bad:2:" in last_line(out.stderr)


def test_average_of_the_last_step_checkpoints_translates(run: Path, tmp_path: Path) -> None:
    assert sorted(p.name for p in run.glob("step-*.pt")) == ["step-10.pt", "step-20.pt"]
    out = nmt("average", f"run={run}", "k=2", f"output={tmp_path / 'avg.pt'}", cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    t = Translator.open(str(tmp_path / "avg.pt"))
    assert len(t.translate(LINES, DecodeConfig())) == len(LINES)
    out = nmt("average", f"run={tmp_path}", cwd=tmp_path)
    assert out.returncode == 2 and "no step-<N>.pt" in last_line(out.stderr)


def test_nbest_output_is_moses_format_sorted_per_line(run: Path, tmp_path: Path, lines_writer) -> None:
    src = lines_writer(tmp_path / "in.xx", ["ka lo", "", "mi ne ru"])
    out = nmt("translate", f"checkpoint={run}", f"input={src}", "decode=beam5", "decode.n_best=3", cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    rows = [line.split(" ||| ") for line in out.stdout.splitlines()]
    assert [int(r[0]) for r in rows] == [0, 0, 0, 2, 2, 2]  # the empty line 1 has no hypotheses
    assert all(len(r) == 4 and r[2].startswith("logprob= -") for r in rows)  # id ||| hyp ||| features ||| total
    for i in (0, 2):
        scores = [float(r[3]) for r in rows if int(r[0]) == i]
        assert scores == sorted(scores, reverse=True)
    out = nmt("translate", f"checkpoint={run}", f"input={src}", "decode.n_best=2", cwd=tmp_path)
    assert out.returncode == 2 and "needs beam search" in last_line(out.stderr)


def test_nbest_round_trips_through_score_rerank(run: Path, tmp_path: Path, lines_writer) -> None:
    src = lines_writer(tmp_path / "in.xx", ["ka lo", "mi ne ru"])
    nb = nmt("translate", f"checkpoint={run}", f"input={src}", "decode=beam5", "decode.n_best=3",
             f"output={tmp_path / 'nb'}", cwd=tmp_path)
    assert nb.returncode == 0, nb.stderr
    out = nmt("score", f"checkpoint={run}", f"src={src}", f"nbest={tmp_path / 'nb'}", "rerank=true", "weight=0.5",
              cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    rows = [[f.strip() for f in line.split("|||")] for line in out.stdout.splitlines()]
    before = {(r[0], r[1]): r for r in (line.split(" ||| ") for line in (tmp_path / "nb").read_text().splitlines())}
    assert len(rows) == 6 and all(len(r) == 4 for r in rows)
    sources = (tmp_path / "in.xx").read_text().splitlines()
    expected = score_pairs(Translator.open(str(run)), [sources[int(r[0])] for r in rows], [r[1] for r in rows])
    for r, (lp, _) in zip(rows, expected, strict=True):
        old = before[(r[0], r[1])]
        nmt_lp = float(r[2].split("nmt=")[1])
        assert r[2] == f"{old[2]} nmt= {lp:.4f}"  # the beam's features kept, log p(y|x) appended
        assert abs(float(r[3]) - (float(old[3]) + 0.5 * nmt_lp)) < 1e-3  # total = beam score + weight * log p
    for i in ("0", "1"):
        totals = [float(r[3]) for r in rows if r[0] == i]
        assert totals == sorted(totals, reverse=True)


def test_a_folder_as_input_is_named(run: Path, tmp_path: Path) -> None:
    out = nmt("translate", f"checkpoint={run}", f"input={tmp_path}", cwd=tmp_path)
    assert out.returncode == 2 and last_line(out.stderr) == f"nmt translate: error: input is a folder, not a file: " \
        f"{tmp_path}"


def test_evaluations_with_other_settings_keep_their_own_files(run: Path, tmp_path: Path) -> None:
    for args in (["decode=beam5"], ["decode=beam5", "decode.beam=2", "quantize=int8"], ["decode=greedy"]):
        out = nmt("evaluate", f"checkpoint={run}", "splits=[test]", f"out_dir={tmp_path}", *args, cwd=tmp_path)
        assert out.returncode == 0, out.stderr
    reports = {p.name: json.loads(p.read_text())["decode"]["beam"] for p in tmp_path.glob("report.*.json")}
    assert reports == {"report.beam5.json": 5, "report.beam2-int8.json": 2, "report.greedy.json": 1}
    assert {p.name for p in tmp_path.glob("*.hyp")} == {"test.beam5.hyp", "test.beam2-int8.hyp", "test.greedy.hyp"}


def test_a_sacrebleu_set_without_the_pair_names_the_pairs_it_has(run: Path, tmp_path: Path) -> None:
    out = nmt("evaluate", f"checkpoint={run}", "splits=[]", "sacrebleu_set=wmt14", cwd=tmp_path)
    line = last_line(out.stderr)
    assert out.returncode == 2 and "wmt14 has no xx-yy pair" in line and "de-en" in line and "internet" not in line
