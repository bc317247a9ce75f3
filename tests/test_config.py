"""convlens.config: the layer's settings, shared by both backends, without torch."""

from __future__ import annotations

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from convlens.config import (
    Activation,
    LayerConfig,
    PaddingMode,
    PoolType,
    StageOutputs,
    check_positive,
    parse_enum,
    parse_padding,
    parse_pool,
)
from convlens.errors import ConfigError

configs = st.builds(
    LayerConfig,
    stride=st.integers(1, 1024),
    padding=st.one_of(st.integers(0, 1024), st.sampled_from(["same", "valid", " 3 "]),
                      st.tuples(*[st.integers(0, 1024)] * 4)),
    padding_mode=st.sampled_from(list(PaddingMode) + [m.value for m in PaddingMode]),
    dilation=st.integers(1, 1024),
    activation=st.sampled_from(list(Activation) + [a.value for a in Activation]),
    pool=st.one_of(st.none(), st.integers(0, 1024), st.just("none")),
    pool_type=st.sampled_from(["max", "avg", PoolType.MAX]),
    pool_stride=st.one_of(st.none(), st.integers(1, 1024)),
    bias=st.one_of(st.none(), st.lists(st.floats(-10, 10), max_size=3)),
)


@settings(max_examples=200, deadline=None)
@given(configs)
def test_settings_survive_json_and_back(config):
    """``to_dict`` is JSON, and the JSON gives the same layer back (as run.json records it)."""
    again = LayerConfig(**json.loads(json.dumps(config.to_dict())))
    assert again == config
    assert isinstance(again.padding_mode, PaddingMode) and isinstance(again.activation, Activation)


def test_text_and_members_are_the_same_settings():
    assert LayerConfig(padding_mode="reflect", activation="leaky-relu", pool_type="avg") == (
        LayerConfig(padding_mode=PaddingMode.REFLECT, activation=Activation.LEAKY_RELU,
                    pool_type=PoolType.AVG))
    assert LayerConfig(padding="valid", pool="none") == LayerConfig(padding=0, pool=None)


@pytest.mark.parametrize(("call", "message"), [
    (lambda: parse_enum(PoolType, "median", "pool type"),
     "pool type must be one of max, avg; got 'median'"),
    (lambda: parse_padding("half"), "padding must be a number of cells, 'valid' or 'same'"),
    (lambda: parse_padding((1, 2, 3)), "padding tuple must be 4 cells"),
    (lambda: parse_padding(-1), "padding must be >= 0 cells"),
    (lambda: parse_pool("big"), "pool must be a window size or 'none'"),
    (lambda: check_positive("stride", 0), "stride must be at least 1; got 0"),
    (lambda: check_positive("stride", 2.0), "stride must be a whole number"),
    (lambda: check_positive("stride", 2000, 1024), "stride is 2000; the limit is 1024"),
    (lambda: LayerConfig(dilation=True), "dilation must be a whole number"),
])
def test_bad_settings_are_one_line_without_flags(call, message):
    with pytest.raises(ConfigError, match=message) as refused:
        call()
    assert "\n" not in str(refused.value) and "--" not in str(refused.value)


def test_stage_outputs_name_the_three_stages():
    outputs = StageOutputs(1, 2, 3)
    assert StageOutputs._fields == ("conv", "activated", "pooled")
    assert (outputs.conv, outputs.activated, outputs.pooled) == (1, 2, 3)
