"""Tests for :mod:`nmt.data.load`: text pairs, tables and the hub, and the one-line errors for bad input."""

from __future__ import annotations

import gzip
import json
import os
import subprocess
import sys
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import datasets
import pytest

from nmt.config import DataConfig, SplitNames
from nmt.data.load import load_split, load_text_pair
from nmt.errors import NMTError

SRC = ["ein Hund", "zwei Katzen", "NA", 'er sagt "ja"']
TGT = ["a dog", "two cats", "null", 'he says "yes"']


def _cfg(**kw) -> DataConfig:
    return replace(DataConfig(), src_lang="de", tgt_lang="en", **kw)


def _rows(ds: datasets.Dataset) -> list[tuple[str, str]]:
    return list(zip(ds["src"], ds["tgt"], strict=True))


@pytest.fixture
def text_folder(tmp_path: Path, lines_writer: Callable) -> Path:
    folder = tmp_path / "corpus"
    lines_writer(folder / "train.de", SRC)
    lines_writer(folder / "train.en", TGT)
    return folder


# --------------------------------------------------------------------------- text files


def test_text_pair_columns_and_rows(text_folder: Path) -> None:
    ds = load_split(_cfg(path=str(text_folder)), "train")
    assert ds.column_names == ["src", "tgt"]
    assert _rows(ds) == list(zip(SRC, TGT, strict=True))


def test_gzip_files_load_like_plain(tmp_path: Path) -> None:
    folder = tmp_path / "gz"
    folder.mkdir()
    for lang, lines in (("de", SRC), ("en", TGT)):
        with gzip.open(folder / f"train.{lang}.gz", "wt", encoding="utf-8") as f:
            f.write("".join(f"{x}\n" for x in lines))
    ds = load_text_pair(folder, "train", "de", "en")
    assert _rows(ds) == list(zip(SRC, TGT, strict=True))


def test_split_stems_come_from_config(tmp_path: Path, lines_writer: Callable) -> None:
    lines_writer(tmp_path / "c" / "valid.de", ["x"])
    lines_writer(tmp_path / "c" / "valid.en", ["y"])
    ds = load_split(_cfg(path=str(tmp_path / "c"), splits=SplitNames(dev="valid")), "dev")
    assert _rows(ds) == [("x", "y")]


def test_local_dir_uses_local_split_stems(tmp_path: Path, lines_writer: Callable) -> None:
    lines_writer(tmp_path / "local" / "test_2016.de", ["x"])
    lines_writer(tmp_path / "local" / "test_2016.en", ["y"])
    cfg = _cfg(format="hub", hub_name="nobody/never-loaded", local_dir=str(tmp_path / "local"),
               local_splits=SplitNames(test="test_2016"))
    assert _rows(load_split(cfg, "test")) == [("x", "y")]


def test_bom_and_crlf_are_stripped(tmp_path: Path) -> None:
    folder = tmp_path / "win"
    folder.mkdir()
    (folder / "train.de").write_bytes("\ufeffeins\r\nzwei\r\n".encode())
    (folder / "train.en").write_bytes(b"one\r\ntwo")  # no final newline either
    ds = load_text_pair(folder, "train", "de", "en")
    assert _rows(ds) == [("eins", "one"), ("zwei", "two")]


def test_edited_file_is_reloaded_not_served_from_cache(text_folder: Path, lines_writer: Callable) -> None:
    cfg = _cfg(path=str(text_folder))
    assert load_split(cfg, "train")["src"] == SRC
    lines_writer(text_folder / "train.de", ["rot", "grün", "blau", "gelb"])
    st = (text_folder / "train.de").stat()
    os.utime(text_folder / "train.de", ns=(st.st_atime_ns, st.st_mtime_ns + 10**9))
    assert load_split(cfg, "train")["src"] == ["rot", "grün", "blau", "gelb"]


def test_misaligned_files_name_both_files_and_counts(text_folder: Path, lines_writer: Callable) -> None:
    lines_writer(text_folder / "train.en", TGT[:3])
    with pytest.raises(NMTError) as err:
        load_split(_cfg(path=str(text_folder)), "train")
    msg = str(err.value)
    assert "train.de" in msg and "train.en" in msg
    assert f"{len(SRC)} lines" in msg and f"has {len(SRC) - 1}" in msg


def test_missing_file_is_named(text_folder: Path) -> None:
    (text_folder / "train.en").unlink()
    with pytest.raises(NMTError, match=r"missing corpus file: .*train\.en"):
        load_split(_cfg(path=str(text_folder)), "train")


def test_missing_folder_is_named(tmp_path: Path) -> None:
    with pytest.raises(NMTError, match="no-such-folder"):
        load_split(_cfg(path=str(tmp_path / "no-such-folder")), "train")


def test_empty_file_is_an_error(text_folder: Path) -> None:
    (text_folder / "train.de").write_bytes(b"")
    with pytest.raises(NMTError, match=r"empty corpus file: .*train\.de"):
        load_split(_cfg(path=str(text_folder)), "train")


def test_invalid_utf8_names_file_and_line(text_folder: Path) -> None:
    (text_folder / "train.en").write_bytes(b"one\ntwo\nthr\xffee\nfour\n")
    with pytest.raises(NMTError) as err:
        load_split(_cfg(path=str(text_folder)), "train")
    assert "train.en:3:" in str(err.value) and "UTF-8" in str(err.value)


def test_corrupt_gzip_is_an_error(tmp_path: Path, lines_writer: Callable) -> None:
    folder = tmp_path / "gz"
    lines_writer(folder / "train.de", SRC)
    (folder / "train.en.gz").write_bytes(b"\x1f\x8b\x08\x00 this is not gzip data")
    with pytest.raises(NMTError, match=r"train\.en\.gz"):
        load_text_pair(folder, "train", "de", "en")


# --------------------------------------------------------------------------- tables


def test_tsv_keeps_quotes_and_na_strings(tmp_path: Path) -> None:
    path = tmp_path / "train.tsv"
    path.write_text("".join(f"{s}\t{t}\n" for s, t in zip(SRC, TGT, strict=True)), encoding="utf-8")
    ds = load_split(_cfg(format="tsv", path=str(tmp_path / "{split}.tsv")), "train")
    assert ds.column_names == ["src", "tgt"]
    assert _rows(ds) == list(zip(SRC, TGT, strict=True))


@pytest.mark.parametrize("layout", ["translation", "columns"])
def test_jsonl(tmp_path: Path, layout: str) -> None:
    rows = [{"translation": {"de": s, "en": t, "fr": "x"}} if layout == "translation"
            else {"id": i, "en": t, "de": s} for i, (s, t) in enumerate(zip(SRC, TGT, strict=True))]
    (tmp_path / "dev.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    ds = load_split(_cfg(format="jsonl", path=str(tmp_path / "{split}.jsonl")), "dev")
    assert ds.column_names == ["src", "tgt"]
    assert _rows(ds) == list(zip(SRC, TGT, strict=True))


def test_parquet_with_none_becomes_empty_string(tmp_path: Path) -> None:
    datasets.Dataset.from_dict({"de": [*SRC, None], "en": [*TGT, "lost"]}).to_parquet(tmp_path / "test.parquet")
    ds = load_split(_cfg(format="parquet", path=str(tmp_path / "{split}.parquet")), "test")
    assert ds.column_names == ["src", "tgt"]
    assert _rows(ds) == [*zip(SRC, TGT, strict=True), ("", "lost")]


@pytest.mark.parametrize("bad", ["c\td\te", "c"], ids=["extra-tab", "no-tab"])
def test_tsv_line_without_two_columns_names_the_line(tmp_path: Path, bad: str) -> None:
    (tmp_path / "train.tsv").write_text(f"a\tb\n{bad}\nf\tg\n", encoding="utf-8")
    with pytest.raises(NMTError) as err:
        load_split(_cfg(format="tsv", path=str(tmp_path / "{split}.tsv")), "train")
    msg = str(err.value)
    assert "train.tsv:2:" in msg and "2 tab-separated columns" in msg and "\n" not in msg


@pytest.mark.parametrize(("fmt", "content"), [("jsonl", b'{"de": "a", "en": "b"}\n{"de": "c", \n'),
                                              ("parquet", b"PAR1 not really parquet PAR1")])
def test_unparsable_table_is_an_error(tmp_path: Path, fmt: str, content: bytes) -> None:
    (tmp_path / f"train.{fmt}").write_bytes(content)
    with pytest.raises(NMTError, match=rf"cannot read .*train\.{fmt} as {fmt}: \S"):
        load_split(_cfg(format=fmt, path=str(tmp_path / f"{{split}}.{fmt}")), "train")


def test_table_without_language_columns_is_an_error(tmp_path: Path) -> None:
    (tmp_path / "train.jsonl").write_text(json.dumps({"fr": "a", "en": "b"}) + "\n", encoding="utf-8")
    with pytest.raises(NMTError, match=r"train\.jsonl.*'de'"):
        load_split(_cfg(format="jsonl", path=str(tmp_path / "{split}.jsonl")), "train")


@pytest.mark.parametrize("content", [None, b""], ids=["missing", "empty"])
def test_table_missing_or_empty_file(tmp_path: Path, content: bytes | None) -> None:
    if content is not None:
        (tmp_path / "train.tsv").write_bytes(content)
    with pytest.raises(NMTError, match=r"train\.tsv"):
        load_split(_cfg(format="tsv", path=str(tmp_path / "{split}.tsv")), "train")


def test_table_path_needs_split_placeholder(tmp_path: Path) -> None:
    with pytest.raises(NMTError, match=r"\{split\}"):
        load_split(_cfg(format="tsv", path=str(tmp_path / "train.tsv")), "train")


def test_unknown_format_and_split() -> None:
    with pytest.raises(NMTError, match="xml"):
        load_split(_cfg(format="xml"), "train")
    with pytest.raises(ValueError):
        load_split(_cfg(), "validation")


# --------------------------------------------------------------------------- hub


def test_hub_connection_error_gives_clear_message(monkeypatch: pytest.MonkeyPatch) -> None:
    def offline(*args, **kwargs):
        raise ConnectionError("Couldn't reach the Hugging Face Hub")

    monkeypatch.setattr(datasets, "load_dataset", offline)  # nmt.data.load imports it where it is used
    cfg = _cfg(format="hub", hub_name="someone/some-corpus", splits=SplitNames(dev="validation"))
    with pytest.raises(NMTError) as err:
        load_split(cfg, "dev")
    msg = str(err.value)
    assert "\n" not in msg
    assert "'someone/some-corpus'" in msg and "'validation'" in msg
    assert "Couldn't reach" in msg and "data.local_dir" in msg


def test_hub_offline_mode_really_offline(tmp_path: Path) -> None:
    """With HF_HUB_OFFLINE=1 set before import (a fresh process), an unknown dataset fails fast and clearly."""
    code = (
        "from nmt.data.load import load_hub\n"
        "from nmt.errors import NMTError\n"
        "try:\n"
        "    load_hub('nmt-tests/no-such-dataset', None, 'train', 'de', 'en')\n"
        "except NMTError as err:\n"
        "    print(err)\n"
    )
    repo = str(Path(__file__).resolve().parents[2])
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1",
           "PYTHONPATH": os.pathsep.join(p for p in (repo, os.environ.get("PYTHONPATH")) if p)}
    out = subprocess.run([sys.executable, "-c", code], env=env, cwd=tmp_path, capture_output=True, text=True,
                         timeout=120)
    assert out.returncode == 0, out.stderr
    assert "nmt-tests/no-such-dataset" in out.stdout and "offline mode is set" in out.stdout


def test_hub_without_name() -> None:
    with pytest.raises(NMTError, match="hub_name"):
        load_split(_cfg(format="hub", hub_name=None), "train")
