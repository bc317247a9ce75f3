"""stages.npz says what it will hold when it is large, and can hold less (issue 13: a 24 Mpx
photo wrote 743 MB without a word). The default stays the contract: float32 input, kernels,
conv, activated and pooled."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from convlens import runs
from convlens.errors import ConfigError
from convlens.runs import NpzChoice, load_stages, stages_npz_note

CONTRACT = ["activated", "conv", "input", "kernels", "pooled"]


def _shapes(height: int, width: int, kernels: int = 3) -> dict[str, tuple[int, ...]]:
    """Stage shapes of a gray photo through 3x3 kernels and a 2x2 pool, no padding."""
    conv = (kernels, height - 2, width - 2)
    return {"input": (1, height, width), "kernels": (kernels, 1, 3, 3), "conv": conv,
            "activated": conv, "pooled": (kernels, conv[1] // 2, conv[2] // 2)}


def test_a_large_npz_is_announced_with_its_size_and_contents():
    shapes = _shapes(4000, 6000)  # 24 Mpx
    size = NpzChoice().nbytes(shapes)
    assert 740e6 < size < 746e6  # the 743 MB, counted independently below
    assert size == 4 * (4000 * 6000 + 27 + 2 * 3 * 3998 * 5998 + 3 * 1999 * 2999)
    note = stages_npz_note(shapes)
    assert note == "stages.npz will be 709 MiB: float32 input, kernels, conv, activated, pooled"
    assert "--" not in note  # the library names no flag; the CLI adds them
    half = stages_npz_note(shapes, NpzChoice.parse("all", "float16"))
    assert half is not None and "355 MiB: float16" in half
    assert stages_npz_note(shapes, NpzChoice.parse("pooled")) is None  # 72 MB: no note
    assert stages_npz_note(shapes, NpzChoice.parse("none")) is None
    assert stages_npz_note(_shapes(300, 451)) is None  # the bundled photo: 4 MB


def test_npz_choices_parse_and_refuse():
    assert NpzChoice.parse().is_default and NpzChoice.parse("ALL").arrays == NpzChoice().arrays
    assert NpzChoice.parse("pooled, conv").arrays == ("conv", "pooled")  # the contract's order
    assert NpzChoice.parse("none").arrays == ()
    with pytest.raises(ConfigError, match=r"unknown stage 'pool' .* choose from input"):
        NpzChoice.parse("conv,pool")
    with pytest.raises(ConfigError, match="float32 or float16"):
        NpzChoice.parse("all", "float64")


def test_the_default_run_writes_the_contract(cli, chelsea, tmp_path, monkeypatch):
    monkeypatch.setattr(runs, "LARGE_STAGES_BYTES", 1)  # every npz counts as large
    result = cli("run", chelsea, "--out", "full", "--no-report")
    assert result.code == 0, result.err
    assert "note: stages.npz will be 4.0 MiB: float32 input, kernels, conv, activated, " \
           "pooled; write less with --npz" in " ".join(result.err.split())
    with np.load(tmp_path / "full" / "stages.npz") as data:
        assert sorted(data.files) == CONTRACT
        assert all(data[name].dtype == np.float32 for name in data.files)
        shapes = {name: data[name].shape for name in data.files}
    written = (tmp_path / "full" / "stages.npz").stat().st_size
    assert 0 <= written - NpzChoice().nbytes(shapes) < 2048  # the estimate is the file
    assert "stages_npz" not in json.loads((tmp_path / "full" / "run.json").read_text())


def test_npz_options_write_less_and_say_what(cli, chelsea, tmp_path: Path):
    assert cli("run", chelsea, "--out", "full", "--no-report").code == 0
    result = cli("run", chelsea, "--out", "less", "--no-report", "--npz", "conv,pooled",
                 "--npz-dtype", "float16")
    assert result.code == 0, result.err
    assert "note:" not in result.err  # small: nothing to announce
    full = load_stages(tmp_path / "full" / "stages.npz")
    less = load_stages(tmp_path / "less" / "stages.npz")
    assert sorted(less) == ["about", "conv", "pooled"]
    for name in ("conv", "pooled"):
        assert less[name].dtype == np.float16
        np.testing.assert_allclose(less[name].astype(np.float32), full[name], rtol=2**-11,
                                   atol=3e-8)
    about = str(less["about"])
    assert about.startswith("convlens stages: float16 conv, pooled (of input, kernels")
    change = float(about.rsplit(" ", 1)[1])
    largest = max(float(np.max(np.abs(less[n].astype(np.float32) - full[n])))
                  for n in ("conv", "pooled"))
    assert change == pytest.approx(largest, rel=1e-2)
    assert (tmp_path / "less" / "stages.npz").stat().st_size < \
        (tmp_path / "full" / "stages.npz").stat().st_size / 4
    settings = json.loads((tmp_path / "less" / "run.json").read_text())
    assert settings["stages_npz"] == {"arrays": ["conv", "pooled"], "dtype": "float16"}

    none = cli("run", chelsea, "--out", "none", "--no-report", "--npz", "none")
    assert none.code == 0, none.err
    assert not (tmp_path / "none" / "stages.npz").exists()
    assert "stages.npz" not in json.loads((tmp_path / "none" / "run.json").read_text())["files"]
    bad = cli("run", chelsea, "--out", "bad", "--npz", "conv,pool")
    assert bad.code == 2 and "unknown stage 'pool'" in bad.err and not (tmp_path / "bad").exists()
