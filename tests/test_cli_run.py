"""`convlens run` and `convlens kernels` end to end, in-process."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from scipy import ndimage

from convlens.images import load_image
from convlens.runs import load_stages

FIGURES = ("filters.png", "conv.png", "activated.png", "pooled.png", "overview.png")


def _photo(path: Path, seed: int = 0, size: tuple[int, int] = (48, 64)) -> Path:
    rng = np.random.default_rng(seed)
    Image.fromarray(rng.integers(0, 256, (*size, 3), dtype=np.uint8)).save(path)
    return path


def test_default_run_uses_the_sample_and_the_tutorial_kernels(cli, tmp_path):
    result = cli("run")
    assert result.code == 0, result.err
    out = tmp_path / "convlens-out" / "chelsea"
    for name in (*FIGURES, "stages.npz", "run.json"):
        assert (out / name).is_file(), name
    for name in FIGURES:
        with Image.open(out / name) as figure:
            figure.verify()
    stages = load_stages(out / "stages.npz")
    assert set(stages) == {"input", "kernels", "conv", "activated", "pooled"}
    assert all(array.dtype == np.float32 for array in stages.values())
    assert stages["input"].shape == (1, 300, 451)
    assert stages["kernels"].shape == (3, 1, 3, 3)
    assert stages["conv"].shape == stages["activated"].shape == (3, 298, 449)
    assert stages["pooled"].shape == (3, 149, 224)
    for word in ("input", "conv", "activated", "pooled", "298", "(300 - 3 + 2×0)/1 + 1"):
        assert word in result.out


def test_stage_table_fits_an_80_column_terminal(cli, monkeypatch):
    from convlens.cli._app import console

    monkeypatch.setattr(console, "width", 80)
    result = cli("run", "--max-side", "120", "--out", "narrow")
    assert result.code == 0, result.err
    lines = result.out.splitlines()
    assert max(len(line.rstrip()) for line in lines) <= 80
    # each formula stays whole on one line (a 451x300 photo at max side 120 is 120x80)
    assert any("H: (80 - 3 + 2×0)/1 + 1 = 78" in line for line in lines)
    assert any("W: (118 - 2 + 2×0)/2 + 1 = 58 + 1 = 59" in line for line in lines)


def test_npz_conv_matches_scipy_for_the_command_line_settings(cli, tmp_path):
    image = _photo(tmp_path / "dog.png")
    result = cli("run", image, "--kernel", "1 0 -1; 2 0 -2; 1 0 -1", "--padding", "same",
                 "--padding-mode", "reflect", "--stride", "2", "--out", "maps")
    assert result.code == 0, result.err
    stages = load_stages(tmp_path / "maps" / "stages.npz")
    gray = load_image(image)[0].numpy().astype(np.float64)
    kernel = np.array([[1, 0, -1], [2, 0, -2], [1, 0, -1]], dtype=np.float64)
    expected = ndimage.correlate(gray, kernel, mode="mirror")[::2, ::2]
    np.testing.assert_allclose(stages["conv"][0], expected, atol=2e-5)
    np.testing.assert_allclose(stages["activated"][0], np.maximum(expected, 0), atol=2e-5)


def test_run_json_records_settings_and_command(cli, tmp_path):
    image = _photo(tmp_path / "cat.jpg")
    result = cli("run", image, "--kernels", "sobel-h,laplacian", "--pool", "3", "--pool-type",
                 "avg", "--activation", "tanh", "--mode", "rgb", "--out", "o")
    assert result.code == 0, result.err
    settings = json.loads((tmp_path / "o" / "run.json").read_text())
    assert settings["command"].startswith("convlens run ")
    assert "--pool-type avg" in settings["command"]
    assert settings["layer"]["pool"] == 3 and settings["layer"]["pool_type"] == "avg"
    assert settings["layer"]["activation"] == "tanh"
    assert settings["mode"] == "rgb"
    assert [k["name"] for k in settings["kernels"]] == ["sobel-h", "laplacian"]
    assert settings["shapes"]["input"] == [3, 48, 64]


def test_non_empty_output_folder_needs_force(cli, tmp_path):
    image = _photo(tmp_path / "a.png")
    assert cli("run", image, "--out", "res").code == 0
    (tmp_path / "res" / "mine.txt").write_text("keep me")
    refused = cli("run", image, "--out", "res")
    assert refused.code != 0
    assert "not empty" in refused.err and "--force" in refused.err
    assert cli("run", image, "--out", "res", "--force").code == 0
    assert (tmp_path / "res" / "mine.txt").read_text() == "keep me"


def test_several_images_one_folder_each_and_failures_skipped(cli, tmp_path):
    folder = tmp_path / "photos"
    folder.mkdir()
    _photo(folder / "one.png", 1)
    _photo(folder / "two.jpg", 2)
    (folder / "broken.jpg").write_text("not an image")
    result = cli("run", folder, "--out", "batch")
    assert result.code == 1
    assert (tmp_path / "batch" / "one" / "stages.npz").is_file()
    assert (tmp_path / "batch" / "two" / "stages.npz").is_file()
    assert not (tmp_path / "batch" / "broken").exists()
    assert "broken.jpg" in result.err and "1 of 3 images failed" in result.err


def test_same_stem_images_do_not_overwrite_each_other(cli, tmp_path):
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    first = _photo(tmp_path / "a" / "cat.png", 1)
    second = _photo(tmp_path / "b" / "cat.png", 2)
    assert cli("run", first, second).code == 0
    assert (tmp_path / "convlens-out" / "cat" / "stages.npz").is_file()
    assert (tmp_path / "convlens-out" / "cat-2" / "stages.npz").is_file()


def test_kernels_command_lists_numbers_and_descriptions(cli):
    result = cli("kernels")
    assert result.code == 0
    for word in ("sobel-h", "laplacian", "gaussian-5", "emboss", "horizontal edges"):
        assert word in result.out
    assert "sobel-v" in cli("kernels", "sobel*").out


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["run", "missing.png"], "no such file"),
        (["run", "--kernel", "1 nan 0; 0 1 0; 0 0 1"], "NaN"),
        (["run", "--kernel", "1 2 3; 4 5"], "ragged"),
        (["run", "--kernels", "sobl-h"], "did you mean sobel-h"),
        (["run", "--stride", "0"], "stride must be at least 1"),
        (["run", "--padding", "lots"], "padding must be"),
        (["run", "--device", "tpu"], "device must be one of"),
        (["run", "--mode", "cmyk"], "mode must be"),
        (["run", "--bogus-flag"], "No such option"),
        (["kernels", "zzz*"], "no built-in kernel matches"),
    ],
)
def test_bad_input_is_one_clear_line(cli, args, message):
    result = cli(*args)
    assert result.code == 2
    assert message in result.err
    assert "Traceback" not in result.err
    assert len(result.err.strip().splitlines()) == 1


def test_kernel_larger_than_padded_image(cli, tmp_path):
    tiny = tmp_path / "tiny.png"
    Image.fromarray(np.zeros((4, 4), dtype=np.uint8)).save(tiny)
    result = cli("run", tiny, "--kernel", "gaussian-5", "--pool", "none")
    assert result.code == 2
    assert "no output" in result.err and len(result.err.strip().splitlines()) == 1


def test_text_file_and_truncated_jpeg_fail_cleanly(cli, tmp_path):
    fake = tmp_path / "fake.jpg"
    fake.write_text("hello")
    result = cli("run", fake)
    assert result.code == 2 and "not an image" in result.err
    cut = _photo(tmp_path / "cut.jpg", size=(80, 80))
    cut.write_bytes(cut.read_bytes()[:300])
    result = cli("run", cut, "--out", "c")
    assert result.code == 2 and "truncated" in result.err
    assert not (tmp_path / "c").exists()


def test_console_script_help_teaches(tmp_path):
    exe = Path(sys.executable).with_name("convlens")
    done = subprocess.run([str(exe), "run", "--help"], capture_output=True, text=True,
                          cwd=tmp_path, env={"COLUMNS": "120", "PATH": "/usr/bin:/bin"},
                          check=False)
    assert done.returncode == 0
    for word in ("--kernels", "--padding-mode", "--pool-stride", "stages.npz", "Examples"):
        assert word in done.stdout


def test_top_level_help_lists_commands_from_a_first_run_to_a_model(cli):
    result = cli("--help")
    assert result.code == 0
    order = ["run", "kernels", "explain", "size", "animate", "serve", "train", "evaluate",
             "predict", "layers", "inspect", "saliency"]
    listed = [line.split()[1] for line in result.out.splitlines()
              if line.startswith("│ ") and len(line.split()) > 2 and line.split()[1] in order]
    assert listed == order
    panels = [line for line in result.out.splitlines() if line.startswith("╭─")]
    assert [panel.strip("╭─╮ ") for panel in panels] == [
        "Options", "See a convolution", "Train a classifier", "Look inside a model"]


def test_help_loads_no_torch_or_matplotlib():
    """`--help` and usage errors answer at once: the library loads only when a command runs."""
    code = ("import sys; from convlens.cli import main\n"
            "for args in (['--help'], ['run', '--help'], ['train', '--help'], ['inspect', '-h'],"
            " ['serve', '--help'], ['animate', '--help']):\n"
            "    assert main(args) == 0, args\n"
            "heavy = ('torch', 'matplotlib', 'sklearn', 'captum')\n"
            "print(sorted(m for m in heavy if m in sys.modules))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          env={"COLUMNS": "100", "PATH": "/usr/bin:/bin"}, check=False)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip().splitlines()[-1] == "[]"


def test_batch_result_folders_never_collide(cli, tmp_path):
    folder = tmp_path / "photos"
    folder.mkdir()
    seeds = {"foo.png": 1, "foo.jpg": 2, "foo-2.png": 3}
    for name, seed in seeds.items():
        _photo(folder / name, seed, size=(20, 24))
    result = cli("run", folder, "--out", "res", "--no-report")
    assert result.code == 0, result.err
    assert sorted(p.name for p in (tmp_path / "res").iterdir()) == ["foo", "foo-2", "foo-png"]
    for name, result_folder in (("foo-2.png", "foo-2"), ("foo.jpg", "foo"),
                                ("foo.png", "foo-png")):
        settings = json.loads((tmp_path / "res" / result_folder / "run.json").read_text())
        assert Path(settings["image"]).name == name
        stored = load_stages(tmp_path / "res" / result_folder / "stages.npz")["input"]
        np.testing.assert_allclose(stored, load_image(folder / name).numpy())


def test_a_file_name_that_is_not_utf8_runs_alone_and_in_a_batch(cli, tmp_path):
    odd = os.fsdecode(b"caf\xe9.png")
    folder = tmp_path / "photos"
    folder.mkdir()
    _photo(folder / odd, 1, size=(20, 24))
    _photo(folder / "plain.png", 2, size=(20, 24))
    alone = cli("run", folder / odd, "--out", "alone")
    assert alone.code == 0, alone.err
    assert "caf\\xe9.png" in alone.out
    assert "caf\\xe9.png" in (tmp_path / "alone" / "report.html").read_text(encoding="utf-8")
    batch = cli("run", folder, "--out", "batch")
    assert batch.code == 0, batch.err
    assert (tmp_path / "batch" / os.fsdecode(b"caf\xe9") / "stages.npz").is_file()


def test_an_error_while_writing_leaves_no_half_folder(cli, tmp_path, monkeypatch):
    from convlens import runs
    from convlens.errors import ConvlensError

    def broken_report(*args, **kwargs):
        raise ConvlensError("the report could not be drawn")

    monkeypatch.setattr(runs, "write_report", broken_report)
    image = _photo(tmp_path / "a.png", size=(20, 24))
    before = sorted(p.name for p in tmp_path.iterdir())
    result = cli("run", image, "--out", "deep/res")
    assert result.code == 2 and "the report could not be drawn" in result.err
    assert sorted(p.name for p in tmp_path.iterdir()) == before  # no deep/, no staging folder
    (tmp_path / "old").mkdir()
    (tmp_path / "old" / "conv.png").write_bytes(b"an earlier result")
    assert cli("run", image, "--out", "old", "--force").code == 2
    assert sorted(p.name for p in (tmp_path / "old").iterdir()) == ["conv.png"]
    assert (tmp_path / "old" / "conv.png").read_bytes() == b"an earlier result"


def test_every_image_command_takes_a_name_that_is_not_utf8(cli, tmp_path):
    odd = os.fsdecode(b"\xe9t\xe9 [1].png")  # Latin-1 bytes, and brackets rich could misread
    _photo(tmp_path / odd, 3, size=(20, 24))
    explained = cli("explain", odd, "--at", "2,3")
    assert explained.code == 0, explained.err
    assert "\\xe9t\\xe9 [1].png" in explained.out
    animated = cli("animate", odd, "--crop", "4", "--out", "slide.gif")
    assert animated.code == 0, animated.err
    assert "crop of \\xe9t\\xe9 [1].png" in animated.out and (tmp_path / "slide.gif").is_file()
    failed = cli("explain", odd, "--at", "200,3")
    assert failed.code == 2 and "Traceback" not in failed.err


def test_gpu_check_says_plainly_that_there_is_no_gpu():
    """bench/gpu_check.sh checks nothing where torch sees no CUDA device, and says so in one
    line (exit 0), instead of failing step by step."""
    import torch

    if torch.cuda.is_available():
        pytest.skip("a CUDA device is present: the script would run its checks")
    script = Path(__file__).resolve().parents[1] / "bench" / "gpu_check.sh"
    done = subprocess.run(["bash", str(script)], capture_output=True, text=True, timeout=120,
                          env={**os.environ, "PYTHON": sys.executable})
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("no GPU: torch sees no CUDA device here, so nothing was checked")
    assert len(done.stdout.splitlines()) == 1


def _run_files(folder: Path, fork: bool, monkeypatch, start=None) -> dict[str, bytes]:
    """Every file of a run of a small photo (run.json's timing left out), with figures drawn
    by a forked child or all here."""
    from convlens import runs
    from convlens.config import LayerConfig
    from convlens.kernels import parse_kernels

    monkeypatch.setattr(runs, "can_fork", lambda: fork)
    if start is not None:
        monkeypatch.setattr(runs.ChildFigure, "start", start)
    out = folder / ("forked" if fork else "here")
    result = runs.run_image(_photo(folder / "photo.png"), parse_kernels(["sobel-h", "box-3"]),
                            LayerConfig(pool=2), out, winners=True)
    files = {path.name: path.read_bytes() for path in result.files if path.name != "run.json"}
    settings = json.loads((out / "run.json").read_text(encoding="utf-8"))
    files["run.json"] = json.dumps({**settings, "seconds": 0}).encode()
    return files


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="forks on Linux only")
def test_figures_drawn_by_a_forked_child_are_the_same_files(tmp_path, monkeypatch):
    """Half the figures are drawn by a forked child where the machine has CPUs to spare: the
    files (and report.html, which embeds them) are byte for byte those drawn in one process,
    in the same order."""
    here = _run_files(tmp_path, False, monkeypatch)
    forked = _run_files(tmp_path, True, monkeypatch)
    assert list(forked) == list(here)
    for name in here:
        assert forked[name] == here[name], name


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="forks on Linux only")
def test_figures_a_child_did_not_draw_are_drawn_here(tmp_path, monkeypatch):
    """A child that never ran (or failed) leaves its figures to the run's own process."""
    here = _run_files(tmp_path, False, monkeypatch)
    fallen_back = _run_files(tmp_path, True, monkeypatch, start=lambda self: None)
    assert fallen_back == here


def test_no_fork_beside_threads_that_are_not_convlens_own():
    """A forked child keeps only the forking thread: beside another thread (a notebook's, a
    server's, a progress bar's), or off the main thread, the figures are drawn in-process."""
    import threading

    from convlens import runs

    stop = threading.Event()
    other = threading.Thread(target=stop.wait, name="someone-else", daemon=True)
    other.start()
    try:
        assert not runs.can_fork()
    finally:
        stop.set()
        other.join()
    answers = []
    worker = threading.Thread(target=lambda: answers.append(runs.can_fork()), name="convlens-x")
    worker.start()
    worker.join()
    assert answers == [False]
