"""A vocabulary size the corpus cannot give is one line saying what the corpus allows and which key to set,
not sentencepiece's C++ assertion."""

from __future__ import annotations

import re
from dataclasses import replace

import pytest

from nmt.config import DataConfig
from nmt.data.load import load_split
from nmt.data.tokenizer import Tokenizer, _training_error, train_or_load
from nmt.errors import NMTError


@pytest.fixture
def texts(tiny_data_cfg: DataConfig) -> tuple[list[str], list[str]]:
    train = load_split(tiny_data_cfg, "train")
    return list(train["src"]), list(train["tgt"])


def _refusal(texts: tuple[list[str], list[str]], cfg: DataConfig) -> str:
    with pytest.raises(NMTError) as err:
        train_or_load(*texts, cfg)
    message = str(err.value)
    assert "\n" not in message and "INTERNAL" not in message and ".cc(" not in message, message
    return message


@pytest.mark.parametrize("model_type", ["bpe", "unigram"])
def test_too_large_a_vocabulary_names_the_largest_the_corpus_allows(texts, tiny_data_cfg: DataConfig,
                                                                     model_type: str) -> None:
    cfg = replace(tiny_data_cfg, vocab_size=5000, spm_model_type=model_type)
    message = _refusal(texts, cfg)
    most = re.fullmatch(r"data\.vocab_size=5000 is too large for this corpus: sentencepiece can make at most "
                        r"(\d+) pieces of it; set data.vocab_size=\1 or less", message)
    assert most, message
    assert isinstance(train_or_load(*texts, replace(cfg, vocab_size=int(most[1]))), Tokenizer)  # what it says works


def test_too_small_a_vocabulary_names_the_smallest_it_needs(texts, tiny_data_cfg: DataConfig) -> None:
    cfg = replace(tiny_data_cfg, vocab_size=5)
    message = _refusal(texts, cfg)
    least = re.fullmatch(r"data\.vocab_size=5 is too small for this corpus: sentencepiece needs at least (\d+) "
                         r"pieces \(.*\); set data\.vocab_size=\1 or more, or lower data\.character_coverage", message)
    assert least, message
    assert isinstance(train_or_load(*texts, replace(cfg, vocab_size=int(least[1]))), Tokenizer)
    with pytest.raises(NMTError, match="too small"):
        train_or_load(*texts, replace(cfg, vocab_size=int(least[1]) - 1))  # and no fewer


def test_another_sentencepiece_failure_is_its_text_without_the_assertion() -> None:
    err = _training_error("INTERNAL: src/trainer_interface.cc(123) [a == b] Something else went wrong.\nmore", 40)
    assert str(err) == "sentencepiece training failed with data.vocab_size=40: Something else went wrong."
