"""Shared fixtures: a hermetic Hugging Face cache, a tiny synthetic parallel corpus, and paths.

Every test runs offline (``HF_HUB_OFFLINE=1`` is set before ``datasets`` is imported) with the datasets
cache and nmt's sentencepiece cache in its own ``tmp_path``, so nothing depends on ``~/.cache``.
"""

from __future__ import annotations

import os
import random
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

# Before anything imports datasets / huggingface_hub, which read these once at import time.
os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["HF_DATASETS_OFFLINE"] = "1"

import datasets  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402

from nmt.config import DataConfig  # noqa: E402

REPO_ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO_ROOT / ".." / "shared" / "data"

# Two made-up languages with a word-for-word mapping, so a corpus of them is trivially parallel.
XX_WORDS = "ka lo mi ne ru ta po si vu de".split()
YY_WORDS = "cat dog sun moon tree river stone bird fish house".split()


def pytest_configure(config: pytest.Config) -> None:
    # Tiny models: one thread is as fast as two and does not fight other processes for the cores.
    torch.set_num_threads(1)


@pytest.fixture(autouse=True)
def hf_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Point the datasets cache (in this process and in subprocesses) at a fresh folder."""
    cache = tmp_path / "hf-datasets"
    monkeypatch.setenv("HF_DATASETS_CACHE", str(cache))
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf-home"))
    monkeypatch.setattr(datasets.config, "HF_DATASETS_CACHE", cache)
    return cache


def write_lines(path: Path, lines: list[str]) -> Path:
    """Write ``lines`` as UTF-8 text with LF endings (a final newline included)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(f"{line}\n" for line in lines), encoding="utf-8")
    return path


def synthetic_pairs(n: int, seed: int) -> tuple[list[str], list[str]]:
    """``n`` sentence pairs of 2–6 words, the target a word-for-word translation of the source."""
    rng = random.Random(seed)
    src, tgt = [], []
    for _ in range(n):
        idx = [rng.randrange(len(XX_WORDS)) for _ in range(rng.randint(2, 6))]
        src.append(" ".join(XX_WORDS[i] for i in idx))
        tgt.append(" ".join(YY_WORDS[i] for i in idx))
    return src, tgt


def write_corpus(folder: Path, sizes: dict[str, int] | None = None) -> Path:
    """``folder/{train,dev,test}.{xx,yy}`` from :func:`synthetic_pairs`."""
    sizes = sizes or {"train": 60, "dev": 8, "test": 8}
    for seed, (split, n) in enumerate(sizes.items()):
        src, tgt = synthetic_pairs(n, seed)
        write_lines(folder / f"{split}.xx", src)
        write_lines(folder / f"{split}.yy", tgt)
    return folder


@pytest.fixture(scope="session")
def lines_writer() -> Callable[[Path, list[str]], Path]:
    """:func:`write_lines`, for tests that build their own files."""
    return write_lines


@pytest.fixture(scope="session")
def corpus_writer() -> Callable[..., Path]:
    """:func:`write_corpus`, for tests that need a corpus in a folder of their choice."""
    return write_corpus


@pytest.fixture
def tiny_corpus(tmp_path: Path) -> Path:
    """A folder with a small xx→yy corpus: 60 train, 8 dev and 8 test pairs."""
    return write_corpus(tmp_path / "corpus")


@pytest.fixture
def tiny_data_cfg(tiny_corpus: Path, tmp_path: Path) -> DataConfig:
    """A DataConfig reading :func:`tiny_corpus`, with a small vocabulary and a private nmt cache."""
    return replace(DataConfig(), name="tiny", format="text", path=str(tiny_corpus), src_lang="xx",
                   tgt_lang="yy", vocab_size=40, cache_dir=str(tmp_path / "nmt-cache"))


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """The read-only shared data folder; skips the test when it is absent."""
    if not SHARED_DATA.is_dir():
        pytest.skip(f"shared data folder not found: {SHARED_DATA}")
    return SHARED_DATA
