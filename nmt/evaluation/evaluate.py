"""``nmt evaluate``: translate test sets, score them with sacrebleu, write hypotheses and a JSON report."""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import datasets
from tqdm import tqdm

from nmt.choices import DecodeMethod, Quantize, to_plain
from nmt.config import DataConfig, EvaluateConfig
from nmt.config.pairs import parse_pair, parse_pairs, shown
from nmt.data.load import check_parallel, existing_file, load_split, read_lines, resolve_path
from nmt.data.multilingual import pair_config
from nmt.decoding.translate import Translator, checkpoint_paths
from nmt.errors import NMTError
from nmt.evaluation.metrics import corpus_scores, paired_bootstrap
from nmt.runtime.process import Runtime
from nmt.runtime.threads import Threads


def _sacrebleu_set(name: str, src_lang: str, tgt_lang: str) -> tuple[list[str], list[str]]:
    """Source and reference lines of a sacrebleu test set (downloaded once by sacrebleu; needs internet)."""
    from sacrebleu.dataset import DATASETS
    from sacrebleu.utils import get_reference_files, get_source_file

    pair = f"{src_lang}-{tgt_lang}"
    if name not in DATASETS:
        raise NMTError(f"unknown sacrebleu test set {name!r} (`sacrebleu --list` names them)")
    if pair not in DATASETS[name].langpairs:
        raise NMTError(f"sacrebleu test set {name} has no {pair} pair; it has {', '.join(DATASETS[name].langpairs)}")
    try:
        src, refs = get_source_file(name, pair), get_reference_files(name, pair)
    except (Exception, SystemExit) as err:  # sacrebleu raises several types, or exits, when it cannot download
        reason = str(err) or type(err).__name__
        raise NMTError(f"cannot get sacrebleu test set {name} ({pair}): {reason} (sacrebleu downloads it once: "
                       "this needs the internet)") from None
    return list(read_lines(Path(src))), list(read_lines(Path(refs[0])))


TestSets = dict[str, tuple[list[str], list[str], str | None]]  # name -> sources, references, target language


def eval_pairs(ec: EvaluateConfig, data: DataConfig) -> list[tuple[str, str]]:
    """The pairs to evaluate: ``ec.pair``, else every pair of a multilingual model, else its one pair; a pair the
    model does not have is one line naming its pairs."""
    have = parse_pairs(data.pairs) or [(data.src_lang, data.tgt_lang)]
    if ec.pair is None:
        return have
    pair = parse_pair(ec.pair, "pair")
    if pair not in have:
        raise NMTError(f"pair={ec.pair}: the model does not translate it; it has {shown(have)}")
    return [pair]


def _test_sets(ec: EvaluateConfig, data: DataConfig) -> TestSets:
    """Each split of each pair (named ``split`` for a single-pair model, ``split.SRC-TGT`` for a multilingual one),
    the src/ref files and the sacrebleu set (into the first pair's target) as sources, references, target."""
    pairs, sets = eval_pairs(ec, data), {}
    targets = [t if data.pairs else None for _, t in pairs]
    for split in ec.splits:
        for (s, t), target in zip(pairs, targets, strict=True):
            ds = load_split(pair_config(data, s, t) if data.pairs else data, split)
            sets[f"{split}.{s}-{t}" if data.pairs else split] = (ds["src"], ds["tgt"], target)
    if (ec.src is None) != (ec.ref is None):
        raise NMTError("give both src and ref files, or neither")
    if ec.src and ec.ref:
        src, ref = existing_file(ec.src, "source"), existing_file(ec.ref, "reference")
        check_parallel(src, ref)
        sets[src.name] = (list(read_lines(src)), list(read_lines(ref)), targets[0] if ec.pair else None)
    if ec.sacrebleu_set:
        sets[ec.sacrebleu_set] = (*_sacrebleu_set(ec.sacrebleu_set, *pairs[0]), targets[0])
    if not sets:
        raise NMTError("nothing to evaluate: give splits, src/ref files or sacrebleu_set")
    for name, (src, refs, _) in sets.items():
        if len(src) != len(refs):
            raise NMTError(f"test set {name}: {len(src)} source sentences but {len(refs)} references")
    return sets


def output_tag(ec: EvaluateConfig) -> str:
    """The name an evaluation's outputs carry, from its decoding settings: greedy, beam5, beam5-alpha0.6,
    beam2-int8, ... (so evaluations with other settings never overwrite each other)."""
    dc = ec.decode
    tag = {DecodeMethod.greedy: "greedy", DecodeMethod.beam: f"beam{dc.beam}",
           DecodeMethod.sample: f"sample-t{dc.temperature:g}-k{dc.topk}-p{dc.topp:g}-seed{dc.seed}"}[dc.method]
    if dc.method == DecodeMethod.beam and dc.alpha != 1.0:
        tag += f"-alpha{dc.alpha:g}"
    if (dc.max_len_ratio, dc.max_len_extra) != (2.0, 10):
        tag += f"-len{dc.max_len_ratio:g}+{dc.max_len_extra}"
    if dc.min_len != 1:
        tag += f"-min{dc.min_len}"
    if dc.no_repeat_ngram:
        tag += f"-norepeat{dc.no_repeat_ngram}"
    if dc.coverage and dc.method == DecodeMethod.beam:
        tag += f"-cov{dc.coverage:g}"
    return tag + ("-int8" if ec.quantize == Quantize.int8 else "")


def _evaluate_set(translator: Translator, ec: EvaluateConfig, src: list[str], refs: list[str], name: str,
                  threads: Threads, target: str | None = None) -> dict:
    """Translate one test set (a progress bar on a terminal) and score it; prints the scores."""
    start = time.perf_counter()

    def advance(sentences: int, source_pieces: int) -> None:
        threads.tick(source_pieces)  # threads=auto: the search time of each batch
        bar.update(sentences)

    with tqdm(total=len(src), unit="sent", desc=name, disable=not sys.stderr.isatty(), leave=False) as bar:
        threads.restart()
        hyps = translator.translate(src, ec.decode, max_input_len=ec.max_input_len, on_batch=advance, target=target)
    seconds = time.perf_counter() - start
    scores = corpus_scores(hyps, refs, bootstrap=ec.bootstrap, lowercase=ec.lowercase)
    ci = f" ± {scores['bleu']['ci95']}" if "ci95" in scores["bleu"] else ""
    print(f"{name}: BLEU {scores['bleu']['score']:.2f}{ci} | chrF {scores['chrf']['score']:.2f} | "
          f"TER {scores['ter']['score']:.2f} | {len(src)} sentences in {seconds:.1f} s", flush=True)
    print(f"  {scores['bleu']['signature']}", flush=True)
    if ec.baseline:
        scores["paired_bootstrap"] = _against_baseline(hyps, refs, ec)
    return {"hyps": hyps, **scores, "sentences": len(src), "seconds": round(seconds, 2),
            "sentences_per_s": round(len(src) / max(seconds, 1e-9), 1)}


def _against_baseline(hyps: list[str], refs: list[str], ec: EvaluateConfig) -> dict:
    """sacrebleu's paired bootstrap test of this system's BLEU against the baseline's hypotheses."""
    path = existing_file(ec.baseline or "", "baseline")
    baseline = list(read_lines(path))
    if len(baseline) != len(refs):
        raise NMTError(f"baseline {path} has {len(baseline)} lines for {len(refs)} references")
    res = paired_bootstrap(hyps, baseline, refs, resamples=ec.bootstrap or 1000, lowercase=ec.lowercase)
    print(f"  against the baseline {path.name}: BLEU {res['bleu']:.2f} vs {res['baseline_bleu']:.2f}, paired "
          f"bootstrap p = {res['p_value']:.4f} ({ec.bootstrap or 1000} resamples)", flush=True)
    return res


def evaluate(ec: EvaluateConfig) -> dict:
    """Translate and score every configured test set; returns the report that is also written as JSON, beside
    the hypotheses, as ``<out_dir>/report.<tag>.json`` and ``<set>.<tag>.hyp`` (:func:`output_tag`)."""
    threads = Runtime.install(ec.threads, tune_memory=False, signals=False).threads
    datasets.disable_progress_bars()
    members = checkpoint_paths(ec.checkpoint)
    ckpt_path = resolve_path(members[0])
    translator = Translator.open(ec.checkpoint, ec.quantize, ec.device)
    data = translator.config.data
    sets = _test_sets(ec, data)
    if ec.baseline and len(sets) != 1:
        raise NMTError(f"baseline= compares one test set, but {len(sets)} are configured ({', '.join(sets)})")
    run_dir = ckpt_path if ckpt_path.is_dir() else ckpt_path.parent
    out_dir = resolve_path(ec.out_dir) if ec.out_dir else run_dir / "eval"
    out_dir.mkdir(parents=True, exist_ok=True)
    tag = (f"ensemble{len(members)}-" if len(members) > 1 else "") + output_tag(ec)
    names = [str(resolve_path(p)) for p in members]
    report = {"checkpoint": names if len(names) > 1 else names[0], "step": translator.step,
              "quantize": str(ec.quantize), "decode": to_plain(ec.decode), "sets": {}}
    for name, (src, refs, target) in sets.items():
        result = _evaluate_set(translator, ec, src, refs, name, threads, target)
        (out_dir / f"{name}.{tag}.hyp").write_text("".join(h + "\n" for h in result.pop("hyps")), encoding="utf-8")
        report["sets"][name] = result
    path = out_dir / f"report.{tag}.json"
    path.write_text(json.dumps(report, indent=2))
    print(f"hypotheses and {path.name} in {out_dir}", flush=True)
    return report
