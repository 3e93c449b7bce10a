"""`python -m nmt.bench.peers`: the legs run with the same window and threads, their figures are read back, and the
table's ratios compare each peer with its matched nmt leg. The harnesses are stand-ins here (the real ones install
their own environments and train for minutes)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from nmt.bench import peers

STATS = {"trg_tok_per_s": 1000.0, "s_per_step": 2.5, "mean_trg_tok_per_batch": 2500.0, "params": {"total": 12345}}


def fake_harness(root: Path, name: str, body: str) -> None:
    (root / name).mkdir(parents=True)
    (root / name / "run.sh").write_text(body)


RECORDING = """set -eu
RUN=$BASE/work/$TAG; mkdir -p "$RUN"
KNOBS="$MAX_STEPS $WARMUP $MEASURE_STEPS $THREADS $SKIP_DECODE ${HID:-}"
echo "JOEYBENCH {\\"trg_tok_per_s\\": 1000.0, \\"s_per_step\\": 2.5, \\"mean_trg_tok_per_batch\\": 2500.0, \
\\"params\\": {\\"total\\": 12345}, \\"knobs\\": \\"$KNOBS\\"}" > "$RUN/train_stats.txt"
echo "	Maximum resident set size (kbytes): 2048000" > "$RUN/train.time"
"""


def test_a_peer_gets_the_window_and_its_figures_are_read_back(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    fake_harness(tmp_path / "bench", "opennmt", RECORDING)
    monkeypatch.setenv("BASE", str(tmp_path / "base"))
    monkeypatch.chdir(tmp_path)  # --peers relative to the working folder, as in `make bench-peers`
    leg = next(leg for leg in peers.LEGS if leg.name == "onmt1024if1")
    got = peers.run_peer(leg, Path("bench"), warmup=3, measure=7, threads=1, log=tmp_path / "leg.log")
    assert got == {"tgt_tok_s": 1000.0, "s_per_update": 2.5, "tgt_tokens_per_update": 2500.0, "params": 12345,
                   "peak_rss_mb": 2000.0}
    stats = (tmp_path / "base" / "work" / "peers-onmt1024if1" / "train_stats.txt").read_text()
    assert json.loads(stats.split(" ", 1)[1])["knobs"] == "11 3 7 1 1 1024"  # warmup + measure + 1 updates


def test_a_failing_or_silent_peer_stops_with_its_log_named(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BASE", str(tmp_path / "base"))
    fake_harness(tmp_path / "bench", "joeynmt", "echo no venv; exit 3\n")
    leg = peers.select("joeynmt")[0]
    with pytest.raises(SystemExit, match=r"joeynmt failed \(exit 3\); see .*joey\.log"):
        peers.run_peer(leg, tmp_path / "bench", 1, 1, 1, tmp_path / "joey.log")
    assert "no venv" in (tmp_path / "joey.log").read_text()
    (tmp_path / "bench" / "joeynmt" / "run.sh").write_text("exit 0\n")  # ran, but too few updates for a window
    with pytest.raises(SystemExit, match="no throughput figures in .*train_stats.txt"):
        peers.run_peer(leg, tmp_path / "bench", 1, 1, 1, tmp_path / "joey.log")
    with pytest.raises(SystemExit, match="not found"):
        peers.run_peer(leg, tmp_path / "elsewhere", 1, 1, 1, tmp_path / "joey.log")


def test_nmt_leg_passes_its_settings_to_nmt_bench(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    fake_python = tmp_path / "python"
    fake_python.write_text(f"""#!{sys.executable}
import json, sys
args = dict(a.split("=", 1) for a in sys.argv[4:])
json.dump({{"train": {{"tgt_tok_s": 3000.0, "s_per_update": 1.0, "tgt_tokens_per_update": 3000.0,
           "peak_rss_mb": 900.0, "params": 13, "useful_gflop_s": 150.0}}, "ceiling": {{"large": 200.0}},
           "argv": sys.argv[1:]}}, open(args["output"], "w"))
""")
    fake_python.chmod(0o755)
    monkeypatch.setattr(sys, "executable", str(fake_python))
    leg = peers.select("nmt1024")[0]
    got = peers.run_nmt(leg, "/data/m30k", 4, 9, 2, tmp_path / "nmt1024.log")
    assert got["tgt_tok_s"] == 3000.0 and got["ceiling_gflop_s"] == 200.0
    argv = json.loads((tmp_path / "nmt1024.json").read_text())["argv"]
    assert argv[:3] == ["-m", "nmt", "bench"]
    assert {"warmup=4", "measure=9", "threads=2", "contention=false", "data.local_dir=/data/m30k",
            "model.hidden_dim=1024", "model.attention_dim=1024"} <= set(argv)


def test_each_peer_is_compared_with_its_matched_nmt_leg() -> None:
    legs = peers.select("all")
    row = {"s_per_update": 1.0, "tgt_tokens_per_update": 100.0, "params": 1, "peak_rss_mb": 1.0}
    speeds = {"nmt": 3000.0, "nmt1024": 1000.0, "joeynmt": 1000.0, "onmt512if1": 1500.0, "onmt512if0": 3000.0,
              "onmt1024if1": 250.0, "onmt1024if0": 500.0, "nmtbf16": 6000.0}  # nmt1024bf16 not run
    text = peers.table([leg for leg in legs if leg.name in speeds],
                       {name: {**row, "tgt_tok_s": v} for name, v in speeds.items()})
    cells = {line.split("|")[1].strip(): [c.strip() for c in line.split("|")[7:9]] for line in text.splitlines()[2:]}
    assert cells == {"nmt": ["", ""], "nmtbf16": ["", ""], "nmt1024": ["", ""],
                     "joeynmt": ["3.00× (vs nmt)", "6.00× (vs nmtbf16)"],
                     "onmt512if1": ["2.00× (vs nmt)", "4.00× (vs nmtbf16)"],
                     "onmt512if0": ["1.00× (vs nmt)", "2.00× (vs nmtbf16)"],
                     "onmt1024if1": ["4.00× (vs nmt1024)", ""], "onmt1024if0": ["2.00× (vs nmt1024)", ""]}
    assert all(leg.match in {None, "nmt", "nmt1024"} for leg in peers.LEGS)
    assert {f"{leg.match}bf16" for leg in peers.LEGS if leg.match} <= {leg.name for leg in peers.LEGS}


def test_unknown_legs_are_named() -> None:
    with pytest.raises(SystemExit, match=r"unknown leg\(s\) \['onmt2048'\]; choose from"):
        peers.select("nmt,onmt2048")
    assert [leg.name for leg in peers.select("onmt512if1,nmt")] == ["nmt", "onmt512if1"]
