"""The sliding-kernel animation: its arithmetic against SciPy, frame count, size and limits."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from scipy import ndimage

from convlens import animate
from convlens.animate import (
    MAX_PADDED_SIDE,
    build_slide,
    crop_values,
    render_frames,
    write_animation,
)
from convlens.config import LayerConfig
from convlens.errors import ConfigError, OutputError

SCIPY_MODES = {"zeros": "constant", "reflect": "mirror", "replicate": "nearest",
               "circular": "wrap"}


@pytest.mark.parametrize("mode", list(SCIPY_MODES))
@pytest.mark.parametrize(("stride", "dilation"), [(1, 1), (2, 1), (1, 2)])
def test_slide_output_matches_scipy_correlate(mode, stride, dilation):
    rng = np.random.default_rng(stride * 10 + dilation)
    values = rng.integers(0, 256, (7, 8)).astype(float)
    kernel = rng.integers(-2, 3, (3, 3)).astype(float)
    slide = build_slide(values, kernel, LayerConfig(padding="same", padding_mode=mode,
                                                    stride=stride, dilation=dilation))
    dilated = np.zeros((2 * dilation + 1, 2 * dilation + 1))
    dilated[::dilation, ::dilation] = kernel
    oracle = ndimage.correlate(values, dilated, mode=SCIPY_MODES[mode])[::stride, ::stride]
    assert slide.output.shape == oracle.shape
    assert np.allclose(slide.output, oracle)
    assert len(slide.steps) == oracle.size
    assert [(s.row, s.col) for s in slide.steps] == [
        (r, c) for r in range(oracle.shape[0]) for c in range(oracle.shape[1])]
    pad = dilation  # 'same' padding of a 3x3 kernel: D cells each side
    assert slide.pad_mask.sum() == slide.padded.size - values.size
    assert np.array_equal(slide.padded[pad: pad + 7, pad: pad + 8], values)


def test_steps_write_their_sums_out():
    values = np.array([[1, 2, 3, 0], [0, 1, 2, 3], [3, 0, 1, 2], [2, 3, 0, 1]], dtype=float)
    kernel = np.array([[2, 0, 1], [0, 1, 2], [1, 0, 2]], dtype=float)
    slide = build_slide(values, kernel, LayerConfig())
    # by hand: (1×2 + 2×0 + 3×1) + (0×0 + 1×1 + 2×2) + (3×1 + 0×0 + 1×2) = 5 + 5 + 5 = 15
    assert slide.output.tolist() == [[15, 16], [6, 15]]
    first = slide.steps[0]
    assert first.tap_rows == [0, 1, 2] and first.tap_cols == [0, 1, 2]
    text = slide.step_text(0)
    assert text.splitlines() == [
        "out[0, 0] = (1×2 + 2×0 + 3×1) + (0×0 + 1×1 + 2×2) + (3×1 + 0×0 + 1×2)",
        "          = 5 + 5 + 5",
        "          = 15",
    ]


@pytest.mark.parametrize(("size", "frames", "expected"), [(4, 100, 5), (6, 5, 5), (5, 2, 2)])
def test_frame_count_and_gif(tmp_path, size, frames, expected):
    values = np.arange(size * size, dtype=float).reshape(size, size)
    slide = build_slide(values, np.ones((3, 3)), LayerConfig(padding=1, stride=2))
    images = render_frames(slide, max_frames=frames)
    assert len(images) == expected == min(len(slide.steps), frames - 1) + 1
    assert len({image.size for image in images}) == 1
    width, height = images[0].size
    assert 400 <= width <= 1600 and 250 <= height <= 1200
    assert images[0].tobytes() != images[-1].tobytes()
    path = write_animation(images, tmp_path / "slide.gif", fps=4)
    with Image.open(path) as gif:
        assert gif.format == "GIF"
        assert gif.n_frames == expected
        assert gif.size == (width, height)
        assert gif.info["duration"] == 250
        assert gif.info.get("loop") == 0


def test_limits_keep_it_bounded(tmp_path):
    with pytest.raises(ConfigError, match=f"at most {MAX_PADDED_SIDE}"):
        build_slide(np.zeros((19, 19)), np.ones((3, 3)), LayerConfig(padding=1))
    with pytest.raises(ConfigError, match="too large to animate"):
        build_slide(np.zeros((10, 10)), np.ones((9, 9)), LayerConfig())
    with pytest.raises(ConfigError, match="no output"):
        build_slide(np.zeros((2, 2)), np.ones((3, 3)), LayerConfig())
    slide = build_slide(np.zeros((4, 4)), np.ones((3, 3)), LayerConfig())
    for frames in (1, 401, 2.5):
        with pytest.raises(ConfigError, match="frames must be"):
            render_frames(slide, max_frames=frames)  # type: ignore[arg-type]
    images = render_frames(slide, max_frames=2)
    for fps in (0, -1, 31):
        with pytest.raises(ConfigError, match="fps"):
            write_animation(images, tmp_path / "a.gif", fps=fps)
    with pytest.raises(ConfigError, match=r"\.gif or \.mp4"):
        write_animation(images, tmp_path / "a.avi")


def test_existing_file_needs_force_and_mp4_needs_a_writer(tmp_path, monkeypatch):
    slide = build_slide(np.eye(4), np.ones((3, 3)), LayerConfig())
    images = render_frames(slide)
    target = tmp_path / "mine.gif"
    target.write_bytes(b"a user's file")
    with pytest.raises(ConfigError, match="force=True") as refused:
        write_animation(images, target)
    assert "--force" in refused.value.worded("cli")
    assert target.read_bytes() == b"a user's file"
    write_animation(images, target, force=True)
    with Image.open(target) as gif:
        assert gif.n_frames == len(images)
    monkeypatch.setattr(animate, "mp4_available", lambda: False)
    with pytest.raises(ConfigError, match="imageio-ffmpeg"):
        write_animation(images, tmp_path / "clip.mp4")
    assert not (tmp_path / "clip.mp4").exists()


@pytest.mark.skipif(not animate.mp4_available(), reason="no MP4 writer (imageio-ffmpeg/PyAV)")
def test_mp4_where_a_writer_is_installed(tmp_path):
    import imageio.v3 as iio

    slide = build_slide(np.arange(25.0).reshape(5, 5), np.ones((3, 3)), LayerConfig())
    images = render_frames(slide)
    path = write_animation(images, tmp_path / "slide.mp4", fps=2)
    video = iio.imread(path)
    assert video.shape[0] == len(images) + animate.FINAL_HOLD - 1
    assert video.shape[1] % 16 == 0 and video.shape[2] % 16 == 0


def test_crop_values_are_whole_0_255_numbers():
    image = torch.from_numpy(np.arange(100, dtype=np.float32).reshape(1, 10, 10) / 255)
    crop = crop_values(image, (2, 3), (4, 5))
    assert crop.shape == (4, 5)
    assert crop[0, 0] == 23 and crop[-1, -1] == 57
    assert np.array_equal(crop, np.round(crop))
    assert crop_values(image, None, (4, 4))[0, 0] == 33  # centred: rows/cols 3..6
    with pytest.raises(ConfigError, match=r"top must be 0\.\.6 and left 0\.\.5"):
        crop_values(image, (7, 0), (4, 5))


def test_an_animation_path_that_cannot_work_is_refused_before_writing(tmp_path):
    slide = build_slide(np.eye(4), np.ones((3, 3)), LayerConfig())
    images = render_frames(slide, 3)
    (tmp_path / "notes.txt").write_text("mine")
    with pytest.raises(OutputError, match=r"notes\.txt is a file, not a folder"):
        write_animation(images, tmp_path / "notes.txt" / "slide.gif")
    with pytest.raises(OutputError, match=r"cannot write /proc/slide\.gif"):
        write_animation(images, Path("/proc/slide.gif"))
    (tmp_path / "taken.gif").mkdir()
    with pytest.raises(OutputError, match="is a folder, not a file name"):
        write_animation(images, tmp_path / "taken.gif", force=True)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["notes.txt", "taken.gif"]


def test_a_failing_writer_leaves_the_old_file_and_no_half_one(tmp_path, monkeypatch):
    slide = build_slide(np.eye(4), np.ones((3, 3)), LayerConfig())
    images = render_frames(slide, 3)
    target = tmp_path / "new" / "slide.gif"
    write_animation(images, target)
    before = target.read_bytes()

    def fails_halfway(self, fp, *args, **kwargs):
        Path(fp).write_bytes(b"GIF89a half")
        raise OSError("No space left on device")

    monkeypatch.setattr(Image.Image, "save", fails_halfway)
    with pytest.raises(OutputError, match=r"cannot write .*slide\.gif: No space left"):
        write_animation(images, target, force=True)
    assert target.read_bytes() == before
    assert [p.name for p in target.parent.iterdir()] == ["slide.gif"]
    with pytest.raises(OutputError):
        write_animation(images, tmp_path / "other" / "deeper" / "x.gif")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["new"]  # no folders made for it
