"""The layer settings the backend parity tests draw (tests/test_fused.py, tests/test_plain.py):
sizes, padding, stride, dilation, activation, pooling and bias that fit each other."""

from __future__ import annotations

from hypothesis import assume
from hypothesis import strategies as st

from convlens.config import Activation, LayerConfig, PaddingMode
from convlens.errors import ConfigError
from convlens.sizes import check_fits


def fitting_layer(draw, max_kernel: int = 5, max_side: int = 20) -> tuple:
    """``(n, channels, kernels, kh, kw, height, width, config)``: a small batch's shape, the
    kernels' shape and a :class:`LayerConfig` that fits them (examples that do not are
    discarded)."""
    n = draw(st.integers(1, 2))
    channels = draw(st.sampled_from([1, 3]))
    kernels = draw(st.integers(1, 4))
    kh, kw = draw(st.integers(1, max_kernel)), draw(st.integers(1, max_kernel))
    height, width = draw(st.integers(1, max_side)), draw(st.integers(1, max_side))
    padding = draw(st.one_of(
        st.integers(0, 3), st.sampled_from(["valid", "same"]),
        st.tuples(*[st.integers(0, 3)] * 4),
    ))
    config = LayerConfig(
        stride=draw(st.integers(1, 3)),
        padding=padding,
        padding_mode=draw(st.sampled_from(list(PaddingMode))),
        dilation=draw(st.integers(1, 3)),
        activation=draw(st.sampled_from(list(Activation))),
        pool=draw(st.one_of(st.none(), st.integers(1, 4))),
        pool_type=draw(st.sampled_from(["max", "avg"])),
        pool_stride=draw(st.one_of(st.none(), st.integers(1, 4))),
        bias=draw(st.one_of(st.none(), st.lists(st.floats(-2, 2), min_size=kernels,
                                                  max_size=kernels))),
    )
    try:
        check_fits(config, height, width, (kh, kw))
    except ConfigError:
        assume(False)
    return n, channels, kernels, kh, kw, height, width, config
