"""``make bench-serve``: ``nmt serve`` under load, against offline translation of the same sentences in the same
run. Starts the server on 127.0.0.1 and a free port; 32 client threads send 2,000 requests of 1-3 test sentences;
reports sentences/s, latency percentiles, errors and the server's resident memory after warm-up and after the
load; then the offline throughput, and a lone one-sentence request against the search time of that sentence.

    python -m nmt.bench.serve_load --checkpoint runs/multi30k-de-en-rnnsearch [--clients 32 --requests 2000]
"""

from __future__ import annotations

import argparse
import json
import random
import socket
import statistics
import subprocess
import sys
import threading
import time
from http.client import HTTPConnection
from pathlib import Path

import torch

from nmt import checkpoint as checkpoint_module
from nmt.config import DecodeConfig
from nmt.data.load import load_split, resolve_path
from nmt.decoding.translate import Translator


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def _start(checkpoint: str, port: int, threads: int, workers: int, linger_ms: float) -> subprocess.Popen:
    proc = subprocess.Popen([sys.executable, "-m", "nmt", "serve", f"checkpoint={checkpoint}", f"port={port}",
                             f"threads={threads}", f"workers={workers}", f"batch_linger_ms={linger_ms:g}"],
                            stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, text=True)
    for _ in range(600):
        try:
            if _request(port, "GET", "/health")[0] == 200:
                return proc
        except OSError:
            time.sleep(0.1)
    proc.kill()
    raise SystemExit(f"nmt serve did not start: {proc.communicate()[1][-2000:]}")


def _request(port: int, method: str, path: str, body: dict | None = None, conn: HTTPConnection | None = None
             ) -> tuple[int, dict]:
    own = conn is None
    conn = conn or HTTPConnection("127.0.0.1", port, timeout=120)
    try:
        data = json.dumps(body).encode() if body is not None else None
        conn.request(method, path, body=data, headers={"Content-Type": "application/json"})
        response = conn.getresponse()
        return response.status, json.loads(response.read())
    finally:
        if own:
            conn.close()


def _load(port: int, requests: list[list[str]], clients: int, target: str) -> dict:
    """Send ``requests`` from ``clients`` threads (keep-alive connections); latencies and errors."""
    latencies: list[float] = []
    errors: list[str] = []
    todo = iter(range(len(requests)))
    lock = threading.Lock()

    def client() -> None:
        conn = HTTPConnection("127.0.0.1", port, timeout=120)
        while True:
            with lock:
                i = next(todo, None)
            if i is None:
                break
            start = time.perf_counter()
            try:
                status, out = _request(port, "POST", "/translate", {"q": requests[i], "target": target}, conn)
                ok = status == 200 and len(out["translatedText"]) == len(requests[i])
            except (OSError, ValueError) as err:
                ok, out = False, {"error": repr(err)}
                conn = HTTPConnection("127.0.0.1", port, timeout=120)
            with lock:
                latencies.append(time.perf_counter() - start)
                if not ok:
                    errors.append(str(out)[:200])
        conn.close()

    start = time.perf_counter()
    workers = [threading.Thread(target=client) for _ in range(clients)]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    seconds = time.perf_counter() - start
    q = statistics.quantiles(latencies, n=100)
    return {"seconds": seconds, "sentences_s": sum(map(len, requests)) / seconds, "p50_ms": q[49] * 1000,
            "p95_ms": q[94] * 1000, "p99_ms": q[98] * 1000, "errors": len(errors), "first_errors": errors[:3]}


def _offline(checkpoint: str, requests: list[list[str]], sentence: str, threads: int) -> dict:
    """Offline translation of the same sentences, and the search time of one sentence alone."""
    torch.set_num_threads(threads)
    translator = Translator.open(checkpoint, device="cpu")
    lines = [s for r in requests for s in r]
    translator.translate(lines[:64], DecodeConfig())  # warm-up
    start = time.perf_counter()
    translator.translate(lines, DecodeConfig())
    seconds = time.perf_counter() - start
    alone = []
    for _ in range(20):
        t = time.perf_counter()
        translator.translate([sentence], DecodeConfig())
        alone.append(time.perf_counter() - t)
    return {"sentences_s": len(lines) / seconds, "one_sentence_ms": statistics.median(alone) * 1000}


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--checkpoint", required=True, help="a run directory or checkpoint file")
    ap.add_argument("--clients", type=int, default=32)
    ap.add_argument("--requests", type=int, default=2000)
    ap.add_argument("--threads", type=int, default=2, help="torch threads of the server and of offline decoding")
    ap.add_argument("--workers", type=int, default=1, help="the server's batches in flight (nmt serve workers=)")
    ap.add_argument("--linger-ms", type=float, default=0.0, help="nmt serve batch_linger_ms=")
    ap.add_argument("--output", default="runs/bench/serve.json")
    args = ap.parse_args(argv)
    checkpoint = str(resolve_path(args.checkpoint))
    data = checkpoint_module.load(checkpoint).config.data
    test = list(load_split(data, "test")["src"])
    rng = random.Random(0)
    requests = [test[i : i + rng.randint(1, 3)] for i in (rng.randrange(len(test) - 3) for _ in range(args.requests))]
    port = _free_port()
    server = _start(checkpoint, port, args.threads, args.workers, args.linger_ms)
    try:
        _load(port, requests[:100], 8, data.tgt_lang)  # warm-up
        rss_warm = _rss_mib(server.pid)
        res = {"load": _load(port, requests, args.clients, data.tgt_lang), "rss_warm_mib": rss_warm,
               "rss_after_mib": _rss_mib(server.pid)}
        lone = []
        for _ in range(20):
            t = time.perf_counter()
            _request(port, "POST", "/translate", {"q": test[0], "target": data.tgt_lang})
            lone.append(time.perf_counter() - t)
        res["lone_request_ms"] = statistics.median(lone) * 1000
    finally:
        server.terminate()
        res_exit = server.wait(60)
    res.update(offline=_offline(checkpoint, requests, test[0], args.threads), server_exit=res_exit,
               date=time.strftime("%Y-%m-%d %H:%M"), clients=args.clients, requests=args.requests,
               linger_ms=args.linger_ms)
    _report(res, args.output)
    return res


def _report(res: dict, output: str) -> None:
    ld, off = res["load"], res["offline"]
    rows = [("served sentences/s", f"{ld['sentences_s']:.1f}"), ("offline sentences/s", f"{off['sentences_s']:.1f}"),
            ("served / offline", f"{ld['sentences_s'] / off['sentences_s']:.0%}"),
            ("latency p50 / p95 / p99", f"{ld['p50_ms']:.0f} / {ld['p95_ms']:.0f} / {ld['p99_ms']:.0f} ms"),
            ("errors", f"{ld['errors']} of {res['requests']}"),
            ("server RSS after warm-up / after load", f"{res['rss_warm_mib']:.0f} / {res['rss_after_mib']:.0f} MiB "
                                                      f"({res['rss_after_mib'] / res['rss_warm_mib']:.2f}x)"),
            ("lone 1-sentence request / its search alone", f"{res['lone_request_ms']:.1f} / "
             f"{off['one_sentence_ms']:.1f} ms ({res['lone_request_ms'] / off['one_sentence_ms']:.2f}x)"),
            ("server exit status after SIGTERM", str(res["server_exit"]))]
    print("| figure | value |\n|---|---|\n" + "\n".join(f"| {k} | {v} |" for k, v in rows))
    out = resolve_path(output)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(res, indent=2))
    print(f"figures written to {out}")


if __name__ == "__main__":
    main()
