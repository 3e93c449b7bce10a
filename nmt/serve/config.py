"""The typed config of ``nmt serve`` (conf/serve.yaml)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import ClassVar

from omegaconf import MISSING

from nmt.choices import NON_NEGATIVE, RANGES, Checked, Quantize, check_device, check_setting, checked
from nmt.config import DecodeConfig
from nmt.config.export import Backend


@dataclass
class ServeConfig(Checked):
    """``nmt serve``: models, address, decoding, batching, limits and API keys."""

    section: ClassVar[str] = ""

    checkpoint: str = MISSING  # a checkpoint file, or a run directory (its best.pt)
    more: list[str] = field(default_factory=list)  # further checkpoints to serve beside it
    host: str = "127.0.0.1"  # the address to listen on (0.0.0.0: every interface)
    port: int = 8000
    threads: str = checked("auto", check_setting)  # torch intra-op threads: auto (adapts: nmt.runtime.threads) | N | 0
    device: str = checked("auto", check_device)  # auto (a visible GPU, else the CPU) | cpu | cuda | cuda:N
    workers: int = 1  # search batches in flight at once, each on its own thread (with threads=1: one per core)
    quantize: Quantize = Quantize.none  # none | int8 (CPU)
    backend: Backend = Backend.torch  # torch | onnxruntime: checkpoint= and more= are `nmt export` directories (CPU)
    decode: DecodeConfig = field(default_factory=DecodeConfig)  # the default search of every request
    batch_wait_ms: float = 10.0  # how long a request that finds the model idle waits for others to join its batch
    batch_linger_ms: float = 0.0  # after a search, how long its next batch waits for the clients it answered (0: not)
    max_chars: int = 2000  # characters per sentence
    max_sentences: int = 64  # sentences per request
    max_body_bytes: int = 1_000_000  # request body size
    max_n_best: int = 10  # alternatives (LibreTranslate) or n-best hypotheses a request may ask for
    max_input_len: int = 250  # source pieces kept per sentence (longer ones are truncated)
    api_keys: str = ""  # a file of API keys, one a line ("KEY req_limit=N char_limit=N" sets its own); "": none
    api_keys_env: str = ""  # an environment variable of comma-separated API keys, e.g. NMT_API_KEYS; "": none
    req_limit: int = 0  # requests a minute per API key (per client address without keys); 0: no limit
    char_limit: int = 0  # characters a minute per API key (per client address without keys); 0: no limit


# the ranges of serve's later keys, beside the others of ServeConfig in nmt.choices.RANGES
RANGES["ServeConfig"].update(batch_linger_ms=NON_NEGATIVE, req_limit=NON_NEGATIVE, char_limit=NON_NEGATIVE)
