"""``make bench-peers``: nmt's training speed beside JoeyNMT 2.3 and OpenNMT-py 3.5.1, back to back in one run.

The peers are run by their harnesses in a folder such as ``../shared/bench`` (``joeynmt/run.sh``,
``opennmt/run.sh``: each installs its own virtual environment on first use, trains Multi30k de→en with the same
sentencepiece model and batch size, and writes its throughput to ``BASE/work/TAG/train_stats.txt``, which is
read back here). nmt is run by ``nmt bench``. Every leg gets the same thread count and the same throughput
window: ``warmup`` updates, then ``measure`` updates timed.

OpenNMT-py cannot build nmt's RNNsearch exactly: its decoder must be as wide as the encoder's output, so
``HID=512`` (256 units per encoder direction, decoder 512) and ``HID=1024`` (512 per direction, decoder 1,024)
bracket it, and ``INPUT_FEED`` switches Luong's input feeding. Each OpenNMT-py leg is compared with the nmt leg
at least as large: ``HID=512`` with nmt's spec (512 per direction, decoder 512) and ``HID=1024`` with nmt at
1,024 units (1,024 per direction, decoder 1,024, attention 1,024).

The ``nmtbf16`` and ``nmt1024bf16`` legs train nmt with bf16 autocast (``train.precision=bf16``, for CPUs with
native bf16); the peers train in fp32 (neither has a bf16 path on the CPU), and the table gives each peer's ratio
to its nmt leg in fp32 and, where run, in bf16.

    python -m nmt.bench.peers --peers ../shared/bench --legs nmt,nmtbf16,joeynmt,onmt512if1
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path


@dataclass(frozen=True)
class Leg:
    """One system at one setting. ``harness``: a peer's folder name (None for nmt); ``match``: the nmt leg that a
    peer is compared with."""

    name: str
    label: str
    harness: str | None = None
    env: dict[str, str] = field(default_factory=dict)
    nmt_args: tuple[str, ...] = ()
    match: str | None = None


LEGS = [
    Leg("nmt", "nmt, RNNsearch spec (512 per encoder direction, decoder 512)"),
    Leg("nmtbf16", "nmt, the spec, bf16 autocast (train.precision=bf16; CPUs with AVX512-BF16 or AMX)",
        nmt_args=("train.precision=bf16",)),
    Leg("joeynmt", "JoeyNMT 2.3.0, the same spec", "joeynmt", match="nmt"),
    Leg("onmt512if1", "OpenNMT-py 3.5.1, HID=512 (256 per direction, decoder 512), input feeding", "opennmt",
        {"HID": "512", "INPUT_FEED": "1"}, match="nmt"),
    Leg("onmt512if0", "OpenNMT-py 3.5.1, HID=512, no input feeding", "opennmt",
        {"HID": "512", "INPUT_FEED": "0"}, match="nmt"),
    Leg("nmt1024", "nmt, RNNsearch at 1,024 units (1,024 per direction, decoder 1,024, attention 1,024)",
        nmt_args=("model.hidden_dim=1024", "model.attention_dim=1024")),
    Leg("nmt1024bf16", "nmt at 1,024 units, bf16 autocast", nmt_args=("model.hidden_dim=1024",
        "model.attention_dim=1024", "train.precision=bf16")),
    Leg("onmt1024if1", "OpenNMT-py 3.5.1, HID=1024 (512 per direction, decoder 1,024), input feeding", "opennmt",
        {"HID": "1024", "INPUT_FEED": "1"}, match="nmt1024"),
    Leg("onmt1024if0", "OpenNMT-py 3.5.1, HID=1024, no input feeding", "opennmt",
        {"HID": "1024", "INPUT_FEED": "0"}, match="nmt1024"),
]


BASES = {"joeynmt": "joey-bench", "opennmt": "onmt-bench"}  # each harness's default BASE under ~/.cache
STATS_PREFIX = re.compile(r"^(?:JOEYBENCH|ONMTBENCH) (\{.*\})$")
RSS = re.compile(r"Maximum resident set size \(kbytes\): (\d+)")


def harness_stats(run_dir: Path) -> dict:
    """A harness run's training figures: the JSON line of its ``train_stats.txt`` and the peak resident memory
    that ``/usr/bin/time -v`` wrote to ``train.time``."""
    stats_file = run_dir / "train_stats.txt"
    lines = stats_file.read_text().splitlines() if stats_file.is_file() else []
    found = [json.loads(m.group(1)) for line in lines if (m := STATS_PREFIX.match(line))]
    if not found or "trg_tok_per_s" not in found[-1]:
        raise SystemExit(f"nmt.bench.peers: no throughput figures in {stats_file} (too few updates for the window?)")
    st = found[-1]
    rss = RSS.search((run_dir / "train.time").read_text()) if (run_dir / "train.time").is_file() else None
    return {"tgt_tok_s": st["trg_tok_per_s"], "s_per_update": st["s_per_step"],
            "tgt_tokens_per_update": st["mean_trg_tok_per_batch"], "params": st["params"]["total"],
            "peak_rss_mb": int(rss.group(1)) / 1024 if rss else float("nan")}


def run_peer(leg: Leg, peers: Path, warmup: int, measure: int, threads: int, log: Path) -> dict:
    """Run one peer harness (training only) and read its figures."""
    harness = str(leg.harness)
    script = (peers / harness / "run.sh").resolve()  # run from its own folder, so not relative to ours
    if not script.is_file():
        raise SystemExit(f"peers: {script} not found (--peers names the folder holding joeynmt/ and opennmt/)")
    tag = f"peers-{leg.name}"
    env = {**os.environ, **leg.env, "BUDGET_S": "0", "MAX_STEPS": str(warmup + measure + 1), "WARMUP": str(warmup),
           "MEASURE_STEPS": str(measure), "THREADS": str(threads), "SKIP_DECODE": "1", "TAG": tag}
    cache = Path(env.get("XDG_CACHE_HOME", Path.home() / ".cache"))
    base = Path(env["BASE"]) if "BASE" in env else cache / BASES[harness]
    with log.open("w") as out:
        code = subprocess.call(["bash", str(script)], cwd=script.parent, env=env, stdout=out, stderr=subprocess.STDOUT)
    if code != 0:
        raise SystemExit(f"nmt.bench.peers: {leg.name} failed (exit {code}); see {log}")
    return harness_stats(base / "work" / tag)


def run_nmt(leg: Leg, data: str, warmup: int, measure: int, threads: int, log: Path) -> dict:
    """``nmt bench`` (training only) at the leg's settings; its training figures and the matmul ceiling."""
    out_json = log.with_suffix(".json")
    cmd = [sys.executable, "-m", "nmt", "bench", f"warmup={warmup}", f"measure={measure}", f"threads={threads}",
           "contention=false", f"output={out_json}", f"data.local_dir={data}", *leg.nmt_args]
    with log.open("w") as out:
        code = subprocess.call(cmd, stdout=out, stderr=subprocess.STDOUT)
    if code != 0 or not out_json.is_file():
        raise SystemExit(f"nmt.bench.peers: {leg.name} failed (exit {code}); see {log}")
    res = json.loads(out_json.read_text())
    return {**{k: res["train"][k] for k in ("tgt_tok_s", "s_per_update", "tgt_tokens_per_update", "peak_rss_mb",
                                            "params", "useful_gflop_s")},
            "ceiling_gflop_s": res["ceiling"]["large"]}


def table(legs: list[Leg], results: dict[str, dict]) -> str:
    """A Markdown table: one row per leg, peers with the ratio of their matched nmt leg's tokens/s to theirs (in
    fp32, and with bf16 autocast where that leg ran too; the peers themselves train in fp32)."""
    lines = ["| leg | system and setting | parameters | target tokens per update | s per update | target tok/s "
             "| nmt ÷ this | nmt bf16 ÷ this |", "|---|---|---:|---:|---:|---:|---:|---:|"]
    for leg in legs:
        r = results[leg.name]
        ratios = []
        for match in (leg.match, f"{leg.match}bf16" if leg.match else None):
            ref = results.get(match or "")
            ratios.append(f"{ref['tgt_tok_s'] / r['tgt_tok_s']:.2f}× (vs {match})" if ref else "")
        lines.append(f"| {leg.name} | {leg.label} | {r['params']:,} | {r['tgt_tokens_per_update']:,.0f} "
                     f"| {r['s_per_update']:.2f} | {r['tgt_tok_s']:,.0f} | {ratios[0]} | {ratios[1]} |")
    return "\n".join(lines)


def select(names: str) -> list[Leg]:
    """The legs named (comma-separated, in the order of ``LEGS``); ``all`` for every one."""
    wanted = {leg.name for leg in LEGS} if names == "all" else set(names.split(","))
    unknown = wanted - {leg.name for leg in LEGS}
    if unknown:
        raise SystemExit(f"nmt.bench.peers: unknown leg(s) {sorted(unknown)}; choose from {[leg.name for leg in LEGS]}")
    return [leg for leg in LEGS if leg.name in wanted]


def main(argv: list[str] | None = None) -> dict[str, dict]:
    p = argparse.ArgumentParser(prog="python -m nmt.bench.peers", description=__doc__.split("\n\n")[0])
    p.add_argument("--peers", default="../shared/bench", help="folder holding the joeynmt/ and opennmt/ harnesses")
    p.add_argument("--data", default="../shared/data/multi30k", help="Multi30k files for nmt (the harnesses use "
                   "their own DATA_SRC, by default the same folder)")
    p.add_argument("--legs", default="all", help=f"comma-separated, from: {', '.join(leg.name for leg in LEGS)}")
    p.add_argument("--warmup", type=int, default=10, help="updates before the timed window (every leg)")
    p.add_argument("--measure", type=int, default=40, help="updates timed (every leg)")
    p.add_argument("--threads", type=int, default=2, help="torch threads (every leg)")
    p.add_argument("--output", default="runs/bench/peers.json", help="every figure, as JSON")
    a = p.parse_args(argv)
    legs, results = select(a.legs), {}
    out = Path(a.output)
    logs = out.parent / "peers-logs"
    logs.mkdir(parents=True, exist_ok=True)
    for leg in legs:
        print(f"{time.strftime('%H:%M:%S')} {leg.name}: {leg.label} ...", flush=True)
        log = logs / f"{leg.name}.log"
        results[leg.name] = (run_peer(leg, Path(a.peers), a.warmup, a.measure, a.threads, log) if leg.harness
                             else run_nmt(leg, a.data, a.warmup, a.measure, a.threads, log))
    print(table(legs, results))
    out.write_text(json.dumps({"date": time.strftime("%Y-%m-%d %H:%M"), "warmup": a.warmup, "measure": a.measure,
                               "threads": a.threads, "results": results}, indent=2))
    print(f"figures written to {out}")
    return results


if __name__ == "__main__":
    main()
