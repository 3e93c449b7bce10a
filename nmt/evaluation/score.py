"""``nmt score``: the model as a scorer of sentence pairs, log p(y|x), as Cho et al. (2014) used it in
phrase-based SMT; and rescoring of Moses n-best lists with that score as an extra feature."""

from __future__ import annotations

import sys
from collections.abc import Callable, Sequence
from pathlib import Path

import torch

from nmt.config import ScoreConfig
from nmt.data.batching import collate, token_batches
from nmt.data.load import check_parallel, existing_file, read_lines, refuse_overwrite
from nmt.data.tokenizer import PAD
from nmt.decoding.translate import Translator
from nmt.errors import NMTError
from nmt.runtime.process import Runtime
from nmt.runtime.threads import FixedThreads, Threads


@torch.no_grad()
def score_pairs(translator: Translator, src: Sequence[str], tgt: Sequence[str], batch_tokens: int = 4096,
                threads: Threads | None = None, *, eos: bool = True,
                on_batch: Callable[[int], None] | None = None, target: str | None = None) -> list[tuple[float, int]]:
    """log p(y|x) of each pair and the number of scored target pieces (the sentence's pieces + EOS); ``threads``
    (``threads=auto``) is told each batch's time. ``eos=False`` leaves the EOS term out (phrase pairs:
    nmt.evaluation.phrase_table); ``on_batch`` is told each batch's number of pairs once it is scored. ``target``:
    a multilingual model's target language (nmt.decoding.translate.Translator.source_tag)."""
    threads = threads or FixedThreads(0)
    tok = translator.tokenizer
    s_ids, t_ids = translator.tagged(tok.encode_src(src), target), tok.encode_tgt(tgt)
    out: list[tuple[float, int]] = [(0.0, 0)] * len(src)
    s_len, t_len = [len(x) for x in s_ids], [len(y) for y in t_ids]
    for group in token_batches(s_len, t_len, batch_tokens, shuffle=False):
        batch = collate([s_ids[i] for i in group], [t_ids[i] for i in group], group)
        if not eos:  # each row's EOS stands at its target length: predicting it is masked out like padding
            batch.tgt_out[torch.arange(len(group)), torch.tensor([t_len[i] for i in group])] = PAD
        batch = batch.to(translator.device)
        with threads.timed(sum(t_len[i] for i in group)):
            scores = translator.model.score(batch).tolist()
        for i, lp in zip(group, scores, strict=True):
            out[i] = (lp, t_len[i] + eos)
        if on_batch is not None:
            on_batch(len(group))
    return out


def _pairs(sc: ScoreConfig) -> tuple[list[str], list[str]]:
    if sc.tsv:
        path = existing_file(sc.tsv, "tsv")
        src, tgt = [], []
        for n, line in enumerate(read_lines(path), start=1):
            cols = line.split("\t")
            if len(cols) != 2:
                raise NMTError(f"{path}:{n}: expected 2 tab-separated columns, found {len(cols)}")
            src.append(cols[0])
            tgt.append(cols[1])
        return src, tgt
    if not (sc.src and sc.tgt):
        raise NMTError("give src and tgt files, a tsv file, or src with an nbest list")
    s, t = existing_file(sc.src, "source"), existing_file(sc.tgt, "target")
    check_parallel(s, t)
    return list(read_lines(s)), list(read_lines(t))


def _rescore_nbest(translator: Translator, sc: ScoreConfig) -> list[str]:
    """Append ``feature= logprob`` to each n-best entry; with ``rerank``, reorder each list by the new total."""
    src_path, nbest_path = existing_file(sc.src or "", "source"), existing_file(sc.nbest or "", "n-best")
    sources = list(read_lines(src_path))
    entries = []
    for n, line in enumerate(read_lines(nbest_path), start=1):
        fields = [f.strip() for f in line.split("|||")]
        if len(fields) < 3 or not fields[0].isdigit() or int(fields[0]) >= len(sources):
            raise NMTError(f"{nbest_path}:{n}: not a Moses n-best line for {len(sources)} sources "
                           "(id ||| hypothesis ||| features [||| total])")
        entries.append(fields)
    scores = score_pairs(translator, [sources[int(f[0])] for f in entries], [f[1] for f in entries], sc.batch_tokens,
                         target=sc.tgt_lang)
    rows = []
    for fields, (lp, _) in zip(entries, scores, strict=True):
        fields = list(fields)
        fields[2] = f"{fields[2]} {sc.feature}= {lp:.4f}"
        total = float(fields[3]) if len(fields) > 3 and fields[3] else 0.0
        if sc.rerank:
            total += sc.weight * lp
            fields = fields[:3] + [f"{total:.4f}"]
        rows.append((int(fields[0]), total, " ||| ".join(fields)))
    if sc.rerank:
        rows.sort(key=lambda r: (r[0], -r[1]))
    return [r[2] for r in rows]


def run_score(sc: ScoreConfig) -> None:
    refuse_overwrite(sc.output, {"src": sc.src, "tgt": sc.tgt, "tsv": sc.tsv, "nbest": sc.nbest})
    threads = Runtime.install(sc.threads, tune_memory=False, signals=False).threads
    translator = Translator.open(sc.checkpoint, device=sc.device)
    translator.source_tag(sc.tgt_lang)  # a language the model lacks is refused before anything is read
    if sc.nbest:
        lines = _rescore_nbest(translator, sc)
    else:
        src, tgt = _pairs(sc)
        lines = [f"{lp:.4f}\t{lp / n:.4f}" for lp, n in score_pairs(translator, src, tgt, sc.batch_tokens, threads,
                                                                       target=sc.tgt_lang)]
    out = sys.stdout if sc.output == "-" else open(Path(sc.output).expanduser(), "w", encoding="utf-8")
    try:
        out.write("".join(line + "\n" for line in lines))
    finally:
        if out is not sys.stdout:
            out.close()
