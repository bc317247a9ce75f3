"""convlens.sizes as the one home of size arithmetic: one formula text everywhere, written
numbers that work out, receptive fields from one rule, and no torch needed to do it.

The oracle for every size is PyTorch itself (layers on the ``meta`` device: shapes only); the
oracle for a written formula is Python's own arithmetic on the numbers it writes.
"""

from __future__ import annotations

import math
import re
import subprocess
import sys

import pytest
import torch
import torch.nn.functional as F
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from convlens.config import LayerConfig
from convlens.errors import ConfigError
from convlens.sizes import (
    chain_field,
    check_at,
    check_fits,
    config_chain,
    parse_layers,
    resolve_padding,
    size_chain,
    size_formula,
)

FORMULA = re.compile(
    r"^\((\d+) - (\d+) \+ (?:2×(\d+)|(\d+)\+(\d+))\)/(\d+) \+ 1 = (?:(floor|ceil)\((-?\d+)/(\d+)\) "
    r"\+ 1(?: - 1)? = |(-?\d+) \+ 1 = )?(\d+)"
)


def work_out(text: str) -> int:
    """Check every step of a written formula with Python's arithmetic; return its result."""
    match = FORMULA.match(text)
    assert match, text
    (size, span, both, before, after, stride, rounding, numerator, divisor, quotient,
     result) = match.groups()
    pads = 2 * int(both) if both is not None else int(before) + int(after)
    written = int(size) - int(span) + pads
    if rounding:
        assert int(numerator) == written and int(divisor) == int(stride), text
        assert written % int(stride) != 0, f"rounding shown for an exact division: {text}"
        rounded = (math.floor if rounding == "floor" else math.ceil)(written / int(stride))
        dropped = " - 1 = " in text
        assert int(result) == rounded + 1 - dropped, text
    elif quotient is not None:
        assert written % int(stride) == 0 and int(quotient) == written // int(stride), text
        assert int(result) == int(quotient) + 1, text
    else:
        assert int(stride) == 1 and int(result) == written + 1, text
    return int(result)


def torch_stages(config: LayerConfig, height: int, width: int, kernel: tuple[int, int]):
    """Conv and pooled shapes of the layer as PyTorch computes them (meta tensors: no data)."""
    top, bottom, left, right = resolve_padding(config, height, width, kernel)
    x = F.pad(torch.empty(1, 1, height, width, device="meta"), (left, right, top, bottom))
    weight = torch.empty(1, 1, *kernel, device="meta")
    conv = F.conv2d(x, weight, stride=config.stride, dilation=config.dilation)
    shapes = [tuple(conv.shape[2:])]
    if config.pool is not None:
        pooled = F.max_pool2d(conv, config.pool, config.effective_pool_stride)
        shapes.append(tuple(pooled.shape[2:]))
    return shapes


configs = st.builds(
    LayerConfig,
    stride=st.integers(1, 4),
    padding=st.one_of(st.integers(0, 3), st.just("same"),
                      st.tuples(*[st.integers(0, 3)] * 4)),
    dilation=st.integers(1, 3),
    pool=st.one_of(st.none(), st.integers(1, 4)),
    pool_stride=st.one_of(st.none(), st.integers(1, 4)),
)


@settings(max_examples=150, deadline=None)
@given(configs, st.integers(1, 60), st.integers(1, 60), st.integers(1, 5), st.integers(1, 5))
def test_check_fits_sizes_match_torch_and_their_formulas_work_out(config, height, width, kh, kw):
    try:
        steps = check_fits(config, height, width, (kh, kw))
    except ConfigError:
        assume(False)
    assert [step.outputs for step in steps] == torch_stages(config, height, width, (kh, kw))
    for step in steps:
        for axis in (0, 1):
            assert work_out(step.axis_formula(axis)) == step.outputs[axis]


@settings(max_examples=150, deadline=None)
@given(configs, st.integers(1, 60), st.integers(1, 60), st.integers(1, 5), st.integers(1, 5))
def test_run_and_size_write_the_same_formula(config, height, width, kh, kw):
    """The stage table of ``run`` (check_fits) and ``convlens size`` / the page / the report
    (size chains) write one text for the same layer: the bug of two ways is gone."""
    try:
        steps = check_fits(config, height, width, (kh, kw))
    except ConfigError:
        assume(False)
    chain = config_chain(config, (height, width), (kh, kw))
    assert len(chain.steps) == len(steps)
    for step, link in zip(steps, chain.steps):
        assert step.axis_formula(0) == link.rows.formula()
        assert step.axis_formula(1) == link.cols.formula()
        assert step.formula() == f"H: {link.rows.formula()};  W: {link.cols.formula()}"


@pytest.mark.parametrize(("args", "text"), [
    ((5, 3, 0, 0, 1, 3), "(5 - 3 + 2×0)/1 + 1 = 3"),
    ((29, 3, 0, 0, 1, 27), "(29 - 3 + 2×0)/1 + 1 = 27"),
    ((30, 3, 1, 1, 2, 15), "(30 - 3 + 2×1)/2 + 1 = floor(29/2) + 1 = 15"),
    ((224, 2, 0, 0, 2, 112), "(224 - 2 + 2×0)/2 + 1 = 111 + 1 = 112"),
    ((10, 4, 1, 2, 1, 10), "(10 - 4 + 1+2)/1 + 1 = 10"),
])
def test_one_formula_text(args, text):
    assert size_formula(*args) == text
    assert "*" not in text and "floored" not in text


@settings(max_examples=100, deadline=None)
@given(st.lists(st.tuples(st.sampled_from(["conv", "pool"]), st.integers(1, 5),
                          st.integers(1, 3), st.integers(1, 3)), min_size=1, max_size=6))
def test_chain_field_is_the_sized_chains_receptive_field(layers):
    text = ", ".join(f"{kind}{size} s{stride}" + (f" d{dilation}" if kind == "conv" else "")
                     for kind, size, stride, dilation in layers)
    specs = parse_layers(text)
    try:
        chain = size_chain(4096, specs)
    except ConfigError:
        assume(False)
    assert chain_field(specs, 0) == chain.receptive_field[0]
    assert chain_field(specs, 1) == chain.receptive_field[1]


def test_chain_field_against_a_pixel_that_moves():
    """The receptive field, independently: the input pixels whose change moves one output of
    the chain (ones-weight convs and average pools, so every pixel in the field counts)."""
    specs = parse_layers("conv3, pool2, conv3 d2, pool2 s1")
    x = torch.zeros(1, 1, 64, 64, requires_grad=True)
    y = x
    for spec in specs:
        if spec.kind == "conv":
            y = F.conv2d(y, torch.ones(1, 1, *spec.kernel), dilation=spec.dilation)
        else:
            y = F.avg_pool2d(y, spec.kernel, spec.stride)
    y[0, 0, 5, 5].backward()
    rows = torch.nonzero(x.grad[0, 0].abs().sum(dim=1)).flatten()
    assert chain_field(specs) == int(rows.max() - rows.min() + 1)


@pytest.mark.parametrize(("row", "col", "message"), [
    (3, 0, r"outside the 3x4 conv map: row must be 0..2 and col 0..3"),
    (-1, 0, "outside"),
    (0.5, 0, "whole numbers"),
    (True, 0, "whole numbers"),
])
def test_check_at_refuses_with_the_valid_range(row, col, message):
    with pytest.raises(ConfigError, match=message):
        check_at("conv pixel", row, col, (3, 4), "conv map")
    check_at("conv pixel", 2, 3, (3, 4), "conv map")


def test_library_messages_name_no_flags():
    with pytest.raises(ConfigError) as refused:
        check_fits(LayerConfig(pool=9), 10, 10, (3, 3))
    assert "--" not in str(refused.value) and "pool" in str(refused.value)


def test_the_arithmetic_modules_import_no_torch_numba_or_matplotlib():
    code = ("import sys, convlens.sizes as s, convlens.config, convlens.numbers, convlens.limits\n"
            "s.size_chain(224, 'conv3 p1, pool2').to_dict()\n"
            "s.check_fits(convlens.config.LayerConfig(), 30, 30, (3, 3))\n"
            "print(sorted({'torch', 'numba', 'matplotlib'} & set(sys.modules)))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_a_small_run_never_loads_numba():
    """The dispatcher asks the fused backend whether it applies without loading its kernel:
    a photo-sized run stays on the torch reference and numba is never imported."""
    code = ("import sys, torch\n"
            "from convlens.config import LayerConfig\n"
            "from convlens.kernels import parse_kernels\n"
            "from convlens.layers import compute_stages\n"
            "import convlens.fused as fused\n"
            "compute_stages(torch.rand(1, 40, 50), parse_kernels(['sobel-h']), LayerConfig(),\n"
            "               device='cpu')\n"
            "print(fused.is_available(), fused.is_loaded(), 'numba' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["True", "False", "False"]


def test_auto_keeps_the_reference_where_the_fused_backend_is_missing(monkeypatch):
    from convlens import fused, layers

    monkeypatch.setattr(fused, "is_available", lambda: False)
    monkeypatch.setattr(layers, "FUSED_MIN_MACS", 0)
    called = []
    monkeypatch.setattr(fused, "run_layer", lambda *args, **kwargs: called.append(1))
    outputs = layers.run_layer(torch.rand(1, 1, 9, 9), torch.rand(2, 1, 3, 3), LayerConfig(),
                               "cpu", "auto")
    assert not called and tuple(outputs.pooled.shape) == (1, 2, 3, 3)


def test_unknown_backend_is_one_line():
    from convlens.layers import run_layer

    with pytest.raises(ConfigError, match="backend must be auto, torch, fused or numpy; got 'gpu'"):
        run_layer(torch.rand(1, 1, 9, 9), torch.rand(1, 1, 3, 3), LayerConfig(), "cpu", "gpu")


def test_notebooks_draw_a_size_chain_as_its_table():
    """The chain carries no renderer (sizes imports none); the notebook display knows it."""
    import types

    from IPython.core.formatters import DisplayFormatter

    from convlens.display import enable_notebook_display, size_chain_html

    chain = size_chain(224, "conv3 p1, pool2")
    shell = types.SimpleNamespace(display_formatter=DisplayFormatter())
    assert "text/html" not in shell.display_formatter.format(chain)[0]
    enable_notebook_display(shell)
    html = shell.display_formatter.format(chain)[0]["text/html"]
    assert html == size_chain_html(chain) and "111 + 1 = 112" in html
