"""Multi30k from the shared read-only copy (skipped when ``../shared/data/multi30k`` is absent)."""

from __future__ import annotations

from dataclasses import fields
from pathlib import Path

import pytest
from omegaconf import OmegaConf

from nmt.config import DataConfig, SplitNames
from nmt.data.load import load_split

CONF = Path(__file__).resolve().parents[2] / "conf" / "data" / "multi30k.yaml"
ROWS = {"train": 29_000, "dev": 1_014, "test": 1_000}
FIRST = {  # the first pair of each split
    "train": ("Zwei junge weiße Männer sind im Freien in der Nähe vieler Büsche.",
              "Two young, White males are outside near many bushes."),
    "dev": ("Eine Gruppe von Männern lädt Baumwolle auf einen Lastwagen",
            "A group of men are loading cotton onto a truck"),
    "test": ("Ein Mann mit einem orangefarbenen Hut, der etwas anstarrt.",
             "A man in an orange hat starring at something."),
}


@pytest.fixture(scope="module")
def multi30k_cfg(shared_data: Path, tmp_path_factory: pytest.TempPathFactory) -> DataConfig:
    folder = shared_data / "multi30k"
    if not folder.is_dir():
        pytest.skip(f"shared Multi30k not found: {folder}")
    values = OmegaConf.to_container(OmegaConf.load(CONF))
    for key in ("splits", "local_splits"):
        values[key] = SplitNames(**values[key])
    assert set(values) == {f.name for f in fields(DataConfig)}
    return DataConfig(**{**values, "local_dir": str(folder),
                         "cache_dir": str(tmp_path_factory.mktemp("nmt-cache"))})


@pytest.mark.parametrize("split", ["train", "dev", "test"])
def test_multi30k_splits(multi30k_cfg: DataConfig, split: str) -> None:
    assert (multi30k_cfg.src_lang, multi30k_cfg.tgt_lang) == ("de", "en")
    ds = load_split(multi30k_cfg, split)
    assert ds.column_names == ["src", "tgt"]
    assert len(ds) == ROWS[split]
    assert (ds[0]["src"], ds[0]["tgt"]) == FIRST[split]
