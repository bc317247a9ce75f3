"""Training, evaluation and prediction on digits: accuracy, exact repeats, resume, outputs,
the 2-process torchrun run."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from rich.console import Console
from safetensors.torch import load_file
from sklearn.metrics import accuracy_score, precision_recall_fscore_support

from convlens.data import load_data
from convlens.errors import ConfigError, ModelError
from convlens.models import load_checkpoint, predict, prepare_input
from convlens.results.training import train
from convlens.train import EvalResult, TrainConfig, evaluate
from convlens.train.runner import triangle as _triangle

QUICK = {"baseline": False, "filters_gif": False}


def _run(out: Path, **changes) -> tuple:
    console = Console(record=True, width=140, file=open(os.devnull, "w"))  # noqa: SIM115
    result = train(TrainConfig(out=out, **changes), console=console)
    return result, console.export_text()


@pytest.fixture(scope="module")
def short_run(tmp_path_factory):
    """Digits, 3 epochs, seed 0: the run most tests look at."""
    out = tmp_path_factory.mktemp("short") / "run"
    result, text = _run(out, epochs=3, amp=True)
    return result, text


def test_short_digits_run_reaches_the_stated_accuracy(short_run):
    result, text = short_run
    # 3 epochs of the digits preset reach 99.2% with seed 0; 96% leaves room for other
    # torch builds while still proving the net learned (chance is 10%).
    assert result.metrics["val_accuracy"] >= 0.96
    assert result.metrics["epochs"] == 3
    assert "SVC baseline on the same split" in text
    assert "amp=True ignored on cpu" in text  # the library's words (the CLI says --amp)
    assert "--amp" not in text
    assert "epoch  train loss  train acc" in text


@pytest.mark.slow
def test_default_digits_run_reaches_98_percent(tmp_path):
    """The issue's promise for `convlens train` with no arguments (30 epochs, seed 0). Its other
    half, within a minute, is a timing: bench/bench_train.py reports it."""
    result, text = _run(tmp_path / "default")
    assert result.metrics["val_accuracy"] >= 0.98
    assert result.metrics["epochs"] == 30
    assert 0 < result.metrics["seconds"] <= result.metrics["wall_seconds"]
    assert result.metrics["test_accuracy"] >= 0.98  # the number reported
    # scikit-learn's SVC on the same splits, for context: tuned on val (which it may fit
    # perfectly), reported on test
    baseline = result.metrics["baseline"]["test_accuracy"]
    assert 0.95 < baseline < 1.0
    assert "kept model" in text


def test_run_folder_holds_every_output(short_run):
    result, _ = short_run
    out = result.out_dir
    for name in ("model.safetensors", "model.json", "metrics.json", "curves.png",
                 "confusion.png", "filters-evolution.gif", "train-state.json",
                 "train-state.safetensors"):
        assert (out / name).is_file(), name
    metrics = json.loads((out / "metrics.json").read_text())
    history = metrics["history"]
    accuracies = [row["val_accuracy"] for row in history]
    assert metrics["val_accuracy"] == pytest.approx(max(accuracies))
    assert metrics["best_epoch"] == 1 + accuracies.index(max(accuracies))
    assert metrics["epochs"] == 3 and metrics["seconds"] > 0
    assert metrics["images_per_second"] > 0
    assert metrics["baseline"]["val_accuracy"] > 0.9
    confusion = np.array(metrics["confusion"])
    assert confusion.sum() == 359
    # the confusion matrix is the kept model's on the test split (the held-out 20%)
    assert np.trace(confusion) / confusion.sum() == pytest.approx(metrics["test_accuracy"])
    info = json.loads((out / "model.json").read_text())
    assert info["architecture"] == "tinyvgg" and info["input_size"] == [8, 8]
    assert info["class_names"] == [str(d) for d in range(10)]
    assert info["metrics"]["val_accuracy"] == pytest.approx(metrics["val_accuracy"])
    assert info["metrics"]["data"] == "digits"
    gif = Image.open(out / "filters-evolution.gif")
    assert gif.n_frames == 4  # the random start and one frame per epoch
    # normalization statistics are those of the training images (NumPy as the oracle)
    train_pixels = load_data("digits").train.images.numpy().astype(np.float64)
    assert info["mean"][0] == pytest.approx(train_pixels.mean(), rel=1e-9)
    assert info["std"][0] == pytest.approx(train_pixels.std(), rel=1e-9)


def test_evaluate_matches_scikit_learn(short_run):
    result, _ = short_run
    opened = load_checkpoint(result.out_dir)
    model, info = opened.module, opened.info
    val = load_data("digits").val
    evaluation = evaluate(model, info, val)
    with torch.no_grad():
        logits = model((val.images - info.mean[0]) / info.std[0])
    predicted = logits.argmax(1).numpy()
    truth = val.labels.numpy()
    assert evaluation.accuracy == pytest.approx(accuracy_score(truth, predicted))
    precision, recall, _, support = precision_recall_fscore_support(
        truth, predicted, labels=list(range(10)), zero_division=0)
    np.testing.assert_allclose(evaluation.precision, precision)
    np.testing.assert_allclose(evaluation.recall, recall)
    np.testing.assert_array_equal(evaluation.support, support)
    # load_data's held-out part is the run's test split, measured once with the kept model
    assert evaluation.accuracy == pytest.approx(result.metrics["test_accuracy"])


def test_three_splits_the_test_split_measured_once(short_run):
    """Val picks the epoch; the test split (load_data's held-out part) is only measured at the
    end, and that is the number reported beside the val accuracy."""
    result, text = short_run
    metrics = result.metrics
    loaded = load_data("digits")
    sizes = metrics["split_sizes"]
    assert sizes["test"] == len(loaded.val) == 359
    assert sizes["train"] + sizes["val"] == len(loaded.train)  # val is carved from train
    assert sizes["val"] == pytest.approx(0.2 * len(loaded.train), abs=10)
    for row in metrics["history"]:  # every epoch's val accuracy counts val images
        assert row["val_accuracy"] * sizes["val"] == pytest.approx(
            round(row["val_accuracy"] * sizes["val"]), abs=1e-6)
    assert metrics["test_accuracy"] * 359 == pytest.approx(round(metrics["test_accuracy"] * 359))
    info = json.loads((result.out_dir / "model.json").read_text())
    assert info["metrics"]["test_accuracy"] == pytest.approx(metrics["test_accuracy"])
    assert f"test accuracy {100 * metrics['test_accuracy']:.2f}%" in text


def test_svc_baseline_is_tuned_on_val_and_scored_once_on_test():
    """The baseline's C and gamma are those scikit-learn's own grid search picks on the same
    val split (an independent oracle), and its reported number is the test split's."""
    from sklearn.model_selection import GridSearchCV, PredefinedSplit
    from sklearn.svm import SVC

    from convlens.data import stratified_split
    from convlens.train.baseline import C_GRID, GAMMA_SCALES, svc_baseline

    loaded = load_data("digits")
    train_index, val_index = stratified_split(loaded.train.labels, 0.2, 0)
    train_set, val_set = loaded.train.subset(train_index), loaded.train.subset(val_index)
    baseline = svc_baseline(train_set, val_set, loaded.val)
    x = torch.cat([train_set.floats(), val_set.floats()]).flatten(1).numpy()
    y = torch.cat([train_set.labels, val_set.labels]).numpy()
    scale = 1.0 / (64 * train_set.floats().flatten(1).numpy().var())
    search = GridSearchCV(SVC(), {"C": list(C_GRID), "gamma": [f * scale for f in GAMMA_SCALES]},
                          cv=PredefinedSplit([-1] * len(train_set) + [0] * len(val_set)),
                          refit=False).fit(x, y)
    assert baseline["C"] == search.best_params_["C"]
    assert baseline["gamma"] == pytest.approx(search.best_params_["gamma"])
    assert baseline["val_accuracy"] == pytest.approx(search.best_score_)
    assert len(baseline["grid"]) == len(C_GRID) * len(GAMMA_SCALES)
    svc = SVC(C=baseline["C"], gamma=baseline["gamma"]).fit(train_set.floats().flatten(1).numpy(),
                                                          train_set.labels.numpy())
    test_x, test_y = loaded.val.floats().flatten(1).numpy(), loaded.val.labels.numpy()
    assert baseline["test_accuracy"] == pytest.approx(svc.score(test_x, test_y))


def test_eval_result_handles_empty_classes():
    result = EvalResult(["a", "b", "c"], np.array([[2, 0, 0], [1, 0, 0], [0, 0, 0]]), 0.0)
    assert result.accuracy == pytest.approx(2 / 3)
    np.testing.assert_allclose(result.precision, [2 / 3, 0, 0])
    np.testing.assert_allclose(result.recall, [1, 0, 0])


def test_predict_round_trip_gives_identical_predictions(short_run):
    result, _ = short_run
    opened = load_checkpoint(result.out_dir / "model.safetensors")
    model = opened.module
    images = list(load_data("digits").val.images[:6])
    ranked = predict(opened, images, top_k=3)
    again = predict(load_checkpoint(result.out_dir), images, top_k=3)
    assert ranked == again
    for image, top in zip(images, ranked):
        assert len(top) == 3
        probs = [p.probability for p in top]
        assert probs == sorted(probs, reverse=True) and sum(probs) <= 1 + 1e-6
        with torch.no_grad():
            expected = torch.softmax(model(prepare_input(image, opened).batch), 1)[0]
        assert top[0].label == str(int(expected.argmax()))
        assert top[0].probability == pytest.approx(float(expected.max()), rel=1e-5)
    assert len(predict(opened, images[:1], top_k=50)[0]) == 10
    rgb_big = torch.rand(3, 40, 30)  # any size, RGB into a gray model
    assert len(predict(opened, [rgb_big], top_k=2)[0]) == 2
    with pytest.raises(ModelError, match="1-channel images; this image has 2"):
        predict(opened, [torch.rand(2, 8, 8)])
    with pytest.raises(ConfigError, match="top-k"):
        predict(opened, images, top_k=0)


def test_same_seed_repeats_exactly_and_another_seed_differs(tmp_path):
    first, _ = _run(tmp_path / "a", epochs=2, seed=7, **QUICK)
    second, _ = _run(tmp_path / "b", epochs=2, seed=7, **QUICK)
    third, _ = _run(tmp_path / "c", epochs=2, seed=8, **QUICK)
    weights = [load_file(str(r.out_dir / "train-state.safetensors")) for r in
               (first, second, third)]
    assert weights[0].keys() == weights[1].keys()
    assert all(torch.equal(weights[0][k], weights[1][k]) for k in weights[0])
    assert not all(torch.equal(weights[0][k], weights[2][k]) for k in weights[0]
                   if k.startswith("model."))
    drop = ("seconds", "train_seconds", "images_per_second")
    strip = [[{k: v for k, v in row.items() if k not in drop} for row in r.history]
             for r in (first, second)]
    assert strip[0] == strip[1]


class _Stop(Exception):
    pass


def test_resume_continues_where_it_stopped(tmp_path):
    straight, _ = _run(tmp_path / "straight", epochs=3, **QUICK)

    def stop_after_two(record):
        if record["epoch"] == 2:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        train(TrainConfig(out=tmp_path / "cut", epochs=3, **QUICK), on_epoch_end=stop_after_two)
    state = json.loads((tmp_path / "cut" / "train-state.json").read_text())
    assert state["epoch"] == 2
    resumed = train(TrainConfig(out=tmp_path / "cut", resume=True))
    assert [row["epoch"] for row in resumed.history] == [1, 2, 3]
    a = load_file(str(straight.out_dir / "train-state.safetensors"))
    b = load_file(str(resumed.out_dir / "train-state.safetensors"))
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert [r["val_loss"] for r in resumed.history] == [r["val_loss"] for r in straight.history]
    with pytest.raises(ConfigError, match=r"nothing to resume: the run .* already finished"):
        train(TrainConfig(out=tmp_path / "cut", resume=True))
    with pytest.raises(ConfigError, match="nothing to resume"):
        train(TrainConfig(out=tmp_path / "empty", resume=True))
    # a state saved before the test split was held out cannot continue as an honest run
    older = json.loads((tmp_path / "cut" / "train-state.json").read_text())
    del older["splits"]
    older["epoch"] = 1
    (tmp_path / "old").mkdir()
    (tmp_path / "old" / "train-state.json").write_text(json.dumps(older))
    with pytest.raises(ConfigError, match="older convlens, whose val split was also"):
        train(TrainConfig(out=tmp_path / "old", resume=True))
    with pytest.raises(ConfigError, match="resume=True needs out") as refused:
        train(TrainConfig(resume=True))
    assert refused.value.worded("cli").startswith("--resume needs --out")


def test_output_folder_rules(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    first = train(TrainConfig(epochs=1, **QUICK))
    second = train(TrainConfig(epochs=1, **QUICK))
    assert first.out_dir == Path("runs/digits-tinyvgg")
    assert second.out_dir == Path("runs/digits-tinyvgg-2")  # never into a used folder
    with pytest.raises(ConfigError, match="not empty; pass force=True") as refused:
        train(TrainConfig(epochs=1, out=first.out_dir, **QUICK))
    assert "not empty; pass --force" in refused.value.worded("cli")
    train(TrainConfig(epochs=1, out=first.out_dir, force=True, **QUICK))


def test_bad_settings_fail_before_training():
    with pytest.raises(ConfigError, match="epochs must be at least 1"):
        train(TrainConfig(epochs=0))
    with pytest.raises(ModelError, match="did you mean lenet"):
        train(TrainConfig(model="lenett"))
    with pytest.raises(ConfigError, match="label smoothing"):
        train(TrainConfig(label_smoothing=1.0))


def test_learning_rate_schedule_is_the_triangle():
    # 10 steps, 20% warm-up to 1.0: 0.5, 1.0, then down linearly, 8/9 ... 1/9 at the end
    values = [_triangle(step, 10, 0.2, 1.0) for step in range(10)]
    assert values[:2] == [0.5, 1.0]
    np.testing.assert_allclose(values[2:], [(8 - i) / 9 for i in range(8)])
    assert max(values) == 1.0 and values[-1] > 0


def test_two_process_torchrun_writes_one_checkpoint(tmp_path):
    torchrun = Path(sys.executable).with_name("torchrun")
    out = tmp_path / "ddp"
    env = dict(os.environ, OMP_NUM_THREADS="1", COLUMNS="200")
    done = subprocess.run(
        [str(torchrun), "--standalone", "--nproc-per-node", "2", "-m", "convlens",
         "train", "--epochs", "1", "--no-gif", "--no-baseline", "--out", str(out)],
        capture_output=True, text=True, timeout=240, env=env, cwd=tmp_path)
    assert done.returncode == 0, f"stdout:\n{done.stdout[-1500:]}\nstderr:\n{done.stderr[-3000:]}"
    assert done.stdout.count("kept model") == 1  # only rank 0 speaks
    assert sorted(p.name for p in out.iterdir()) == [
        "confusion.png", "curves.png", "metrics.json", "model.json", "model.safetensors",
        "train-state.json", "train-state.safetensors"]
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["world_size"] == 2
    assert metrics["history"][0]["images"] >= 1150  # both shards of the train split counted
    info = load_checkpoint(out).info
    assert info.metrics["val_accuracy"] == pytest.approx(metrics["val_accuracy"])
    assert metrics["val_accuracy"] > 0.3  # one epoch learns something


def test_filters_gif_shows_the_change_since_the_random_start(tmp_path):
    """Training moves first-layer weights little against their random spread: drawn on the
    weights' scale the frames look alike, so each frame also draws the change since the start
    on a scale that reaches full colour. Read from the drawn data."""
    from matplotlib import colormaps

    from convlens.plot.stages import SIGNED_CMAP
    from convlens.plot.training import filter_mosaic, plot_filters_frame, save_filters_gif

    rng = np.random.default_rng(0)
    start = rng.normal(0, 0.3, (4, 1, 3, 3))
    drift = rng.normal(0, 0.01, (4, 1, 3, 3))
    history = [start + epoch * drift for epoch in range(4)]
    limit = max(np.abs(w).max() for w in history)
    change_limit = np.abs(history[-1] - start).max()

    first = plot_filters_frame(history[0], 0, limit, "conv1", start, change_limit)
    last = plot_filters_frame(history[-1], 3, limit, "conv1", start, change_limit)
    weights_first = np.asarray(first.axes[0].images[0].get_array())
    weights_last = np.asarray(last.axes[0].images[0].get_array())
    change_last = np.asarray(last.axes[1].images[0].get_array())
    assert np.abs(weights_last - weights_first).max() < 0.15  # on the weights' scale: alike
    np.testing.assert_allclose(change_last, filter_mosaic(history[-1] - start, change_limit))
    ends = [np.asarray(colormaps[SIGNED_CMAP](end)[:3]) for end in (0.0, 1.0)]
    pixels = change_last.reshape(-1, 3)
    assert min(np.abs(pixels - end).sum(axis=1).min() for end in ends) < 1e-6  # full colour
    assert "change since the random start" in last.axes[1].get_title()
    assert f"{change_limit:.3g}" in last.axes[1].get_title()
    assert "none yet" in first.axes[1].get_title()

    gif = Image.open(save_filters_gif(history, tmp_path / "evolution.gif", layer="conv1"))
    assert gif.n_frames == 4


def test_the_loop_prints_nothing_and_reports_through_events(tmp_path, capsys):
    """fit() speaks only through TrainEvents (the console table is one renderer of them) and
    draws no figures: those are the command's (convlens.results.training.train)."""
    from convlens.train import TrainEvents, fit

    class Recorder(TrainEvents):
        def __init__(self) -> None:
            self.calls: list[tuple] = []

        def note(self, text, tone=None):
            self.calls.append(("note", text))

        def begin(self, epochs, done, steps):
            self.calls.append(("begin", epochs, done, steps))

        def epoch(self, record, improved):
            self.calls.append(("epoch", record["epoch"], improved))

        def end(self):
            self.calls.append(("end",))

    recorder = Recorder()
    result = fit(TrainConfig(out=tmp_path / "run", epochs=2, **QUICK), recorder)
    assert capsys.readouterr().out == ""
    kinds = [call[0] for call in recorder.calls]
    assert kinds[-4:] == ["begin", "epoch", "epoch", "end"]
    train_images = result.metrics["split_sizes"]["train"]  # 1151: 17 batches of 64 and one of 63
    assert recorder.calls[-4][1:] == (2, 0, -(-train_images // 64))
    assert recorder.calls[-3] == ("epoch", 1, True)
    assert any("train /" in call[1] and "test images" in call[1] for call in recorder.calls
               if call[0] == "note")
    assert sorted(p.name for p in result.files) == ["metrics.json", "model.json",
                                                    "model.safetensors"]
    assert not (tmp_path / "run" / "curves.png").exists()


def test_evaluation_is_a_result_object(short_run, tmp_path):
    from convlens.outputs import check_out_dir
    from convlens.results.evaluation import evaluate_checkpoint

    result, _ = short_run
    evaluation = evaluate_checkpoint(result.out_dir, out=tmp_path / "ev")
    assert evaluation.data == "digits" and evaluation.label == "digits"
    report = evaluation.to_dict()
    assert report["accuracy"] == pytest.approx(result.metrics["test_accuracy"])
    assert report["images"] == 359 and report["model"] == str(result.out_dir)
    files = evaluation.write()
    assert [p.name for p in files] == ["confusion.png", "evaluation.json"]
    assert json.loads((tmp_path / "ev" / "evaluation.json").read_text()) == report
    with pytest.raises(ConfigError, match="not empty"):
        check_out_dir(tmp_path / "ev")
    with pytest.raises(ConfigError, match="not empty"):
        evaluation.write(tmp_path / "ev")
    assert len(evaluation.write(tmp_path / "ev", force=True)) == 2


def test_progress_bars_on_a_terminal(tmp_path):
    """With progress on a terminal the console draws an epoch bar and a batch bar (steps
    counted M/N) beside the table, and takes them away before the closing lines."""
    import io
    import re

    stream = io.StringIO()
    console = Console(file=stream, force_terminal=True, width=140)
    result = train(TrainConfig(out=tmp_path / "run", epochs=2, **QUICK), console=console,
                   progress=True)
    text = re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", stream.getvalue())  # colours and cursor moves
    steps = -(-result.metrics["split_sizes"]["train"] // 64)
    assert re.search(rf"\b{steps}/{steps}\b", text)  # the batch bar filled
    assert re.search(r"\bloss \d\.\d{3}\b", text)  # a batch's loss, read for the bar
    assert "epoch  train loss  train acc" in text and "kept model" in text


def test_predictions_are_a_result_object(short_run, tmp_path):
    from convlens.images import load_image
    from convlens.models import predict as rank
    from convlens.results.prediction import predict_files

    result, _ = short_run
    val = load_data("digits").val
    for index in range(3):
        pixels = (val.images[index, 0].numpy() * 255).round().astype(np.uint8)
        Image.fromarray(pixels).save(tmp_path / f"{index}.png")
    (tmp_path / "broken.png").write_bytes(b"not a png")
    paths = [tmp_path / f"{index}.png" for index in range(3)] + [tmp_path / "broken.png"]
    predictions = predict_files(result.out_dir, paths, top_k=2)
    assert predictions.total == 4 and [p for p, _ in predictions.failures] == [paths[3]]
    opened = load_checkpoint(result.out_dir)
    expected = rank(opened, [load_image(p) for p in paths[:3]], top_k=2)
    assert [image.top for image in predictions.images] == expected
    written = predictions.write(tmp_path / "out")
    assert json.loads(written[0].read_text()) == predictions.to_dict()
    assert predictions.to_dict()[0]["top"][0]["class"] == expected[0][0].label


def test_torchrun_with_one_process_joins_a_group_of_one(monkeypatch):
    """``torchrun --nproc-per-node 1`` (its environment, here set by hand) joins a process
    group of one, so DDP runs as on more GPUs; outside torchrun nothing is joined."""
    import socket

    import torch.distributed as torch_dist
    from torch.nn.parallel import DistributedDataParallel

    from convlens.train.distributed import distributed

    with distributed("cpu") as alone:
        assert not alone.active and alone.world == 1
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    for key, value in {"TORCHELASTIC_RUN_ID": "test", "MASTER_ADDR": "127.0.0.1",
                       "MASTER_PORT": str(port), "RANK": "0", "LOCAL_RANK": "0",
                       "WORLD_SIZE": "1", "LOCAL_WORLD_SIZE": "1"}.items():
        monkeypatch.setenv(key, value)
    with distributed("cpu") as joined:
        assert joined.active and joined.world == 1 and joined.main
        assert torch_dist.is_initialized() and torch_dist.get_backend() == "gloo"
        assert isinstance(joined.wrap(torch.nn.Linear(2, 2)), DistributedDataParallel)
        assert joined.all_sum(torch.tensor([1.5, 2.0])).tolist() == [1.5, 2.0]
        assert sorted(joined.shard(5, epoch=0, seed=0, generator=torch.Generator()).tolist()) \
            == [0, 1, 2, 3, 4]
    assert not torch_dist.is_initialized()  # left on the way out


def test_notes_name_settings_in_the_words_of_whoever_reads_them(tmp_path):
    """A note names a setting as the library spells it (amp=True, TrainConfig(..., resume=True));
    the CLI's console words it with its flags (--amp, convlens train --out ... --resume)."""
    from convlens.errors import Worded
    from convlens.train import TrainEvents, fit

    class Recorder(TrainEvents):
        def __init__(self) -> None:
            self.notes: list[str] = []

        def note(self, text, tone=None):
            self.notes.append(text)

    def stop_after_one(record):
        raise KeyboardInterrupt

    recorder = Recorder()
    out = tmp_path / "cut"
    with pytest.raises(KeyboardInterrupt):
        fit(TrainConfig(out=out, epochs=2, amp=True, **QUICK), recorder, stop_after_one)
    worded = [note for note in recorder.notes if isinstance(note, Worded)]
    assert [note.worded("python") for note in worded] == [
        "amp=True ignored on cpu (autocast pays off on CUDA GPUs)",
        f"interrupted after epoch 1; continue with: TrainConfig(out={str(out)!r}, resume=True)"]
    assert [note.worded("cli") for note in worded] == [
        "--amp ignored on cpu (autocast pays off on CUDA GPUs)",
        f"interrupted after epoch 1; continue with: convlens train --out {out} --resume"]
    assert not any("--" in note for note in recorder.notes)


@pytest.mark.parametrize(("surface", "shown"), [("python", "amp=True ignored"),
                                                 ("cli", "--amp ignored")])
def test_the_console_words_notes_for_its_surface(surface, shown):
    from convlens.errors import Option, Worded
    from convlens.results.training import ConsoleEvents

    console = Console(record=True, width=100, file=open(os.devnull, "w"))  # noqa: SIM115
    ConsoleEvents(console, progress=False, surface=surface).note(
        Worded("amp=True ignored on cpu", [Option("amp=True", "--amp")]))
    assert console.export_text() == f"{shown} on cpu\n"
