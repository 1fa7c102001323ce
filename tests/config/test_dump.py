"""Dump -> load round trip and the layout of the dumped text."""
import email.message
import math
import os

import numpy as np
import pytest
import torch

from detzoo.config import Config, load_config
from detzoo.errors import ConfigError

BASE = """
    from detzoo_cfgtest_helpers import Leaf, Outer, make_pair

    model = dict(
        type=Leaf,
        size=(7, 7),
        inner=dict(type=Outer.Inner),
        factory=make_pair,
        channels=[256, 512, 1024, 2048, 4096, 8192, 16384, 32768, 65536, 131072, 262144, 524288],
    )
"""

CHILD = """
    import email.message
    import math

    from detzoo_cfgtest_helpers import Message

    from .base import model

    model["size"] = (800,)
    messages = [dict(type=Message, text="it's \\"quoted\\""), dict(type=email.message.Message)]
    odd_keys = {"a-b": 1, 3: "three", "class": None}
    numbers = dict(small=1e-5, neg=-2, big=10**20, inf=math.inf, flag=False, empty_list=[], empty_tuple=(),
                   empty=dict(), nested=((1, [2, (3,)]), {"k": (4, 5)}))
    funcs = dict(sqrt=math.sqrt, length=len, cast=float)
    import torch as _torch
    dtype = _torch.float16
"""


def test_round_trip_equals_and_keeps_types(write_tree, helpers, tmp_path):
    root = write_tree({"cfgs/base.py": BASE, "cfgs/child.py": CHILD})
    cfg = load_config(root / "cfgs" / "child.py")
    out = cfg.dump(tmp_path / "out" / "dumped.py")
    again = load_config(out)
    assert again.to_dict() == cfg.to_dict()
    assert again == cfg
    # classes and functions come back as the very same objects
    assert again.model.type is helpers.Leaf
    assert again.model.inner.type is helpers.Outer.Inner
    assert again.model.factory is helpers.make_pair
    assert again.messages[0].type is helpers.Message
    assert again.messages[1].type is email.message.Message
    assert again.funcs.sqrt is math.sqrt and again.funcs.length is len and again.funcs.cast is float
    # tuples stay tuples, at every depth
    assert type(again.model.size) is tuple and again.model.size == (800,)
    nested = again.numbers.nested
    assert type(nested) is tuple and type(nested[0][1][1]) is tuple and type(nested[1]["k"]) is tuple
    assert again.numbers.inf == math.inf
    assert again.dtype is torch.float16
    assert again.odd_keys == {"a-b": 1, 3: "three", "class": None}
    # the dump is a flat file: dumping the reloaded config gives the same text
    assert again.pretty_text.splitlines()[1:] == cfg.pretty_text.splitlines()[1:]


def test_clashing_class_names_are_aliased(write_tree, helpers):
    source = """
        import email.message
        import math
        from detzoo_cfgtest_helpers import Message

        messages = [dict(type=Message), dict(type=email.message.Message)]
        funcs = dict(sqrt=math.sqrt, length=len, cast=float)
    """
    root = write_tree({"c.py": source})
    text = load_config(root / "c.py").pretty_text
    imports = [line for line in text.splitlines() if line.startswith("from ")]
    assert sorted(imports) == sorted(
        [
            "from detzoo_cfgtest_helpers import Message",
            "from email.message import Message as Message_1",
            "from math import sqrt",
        ]
    )
    assert "type=Message_1" in text and "cast=float" in text and "length=len" in text


def test_exact_text_of_a_small_config(helpers):
    cfg = Config(dict(a=dict(type=helpers.Leaf, size=(1,)), b=[1, "x", None], c={2: 0.5}))
    assert cfg.pretty_text == (
        "# Resolved detzoo config\n"
        "\n"
        "from detzoo_cfgtest_helpers import Leaf\n"
        "\n"
        "a = dict(type=Leaf, size=(1,))\n"
        "\n"
        "b = [1, 'x', None]\n"
        "\n"
        "c = {2: 0.5}\n"
    )


def test_long_values_are_broken_into_indented_lines(helpers):
    pipeline = [dict(type=helpers.Leaf, size=(1333, 800), scale=0.5) for _ in range(4)]
    cfg = Config(dict(data=dict(train=dict(pipeline=pipeline, ann_file="x" * 40), samples_per_gpu=2)))
    lines = cfg.pretty_text.splitlines()
    body = lines[lines.index("data = dict(") :]
    assert body == [
        "data = dict(",
        "    train=dict(",
        "        pipeline=[",
        "            dict(type=Leaf, size=(1333, 800), scale=0.5),",
        "            dict(type=Leaf, size=(1333, 800), scale=0.5),",
        "            dict(type=Leaf, size=(1333, 800), scale=0.5),",
        "            dict(type=Leaf, size=(1333, 800), scale=0.5),",
        "        ],",
        "        ann_file='" + "x" * 40 + "',",
        "    ),",
        "    samples_per_gpu=2,",
        ")",
    ]


def test_numpy_scalars_become_python(tmp_path):
    cfg = Config(dict(x=np.float32(0.5), y=np.int64(3), z=[np.bool_(True)], w=np.float64(0.1)))
    again = load_config(cfg.dump(tmp_path / "np.py"))
    assert again.to_dict() == {"x": 0.5, "y": 3, "z": [True], "w": 0.1}
    assert [type(again[k]) for k in "xyw"] == [float, int, float] and type(again.z[0]) is bool


def test_dump_is_atomic_and_overwrites(tmp_path):
    target = tmp_path / "cfg.py"
    target.write_text("old = 1\n")
    Config(dict(new=2)).dump(target)
    assert load_config(target).to_dict() == {"new": 2}
    assert os.listdir(tmp_path) == ["cfg.py"]  # no temp file left behind


def test_unimportable_values_are_errors(tmp_path):
    class Local:
        pass

    with pytest.raises(ConfigError, match="'model.type'.*not importable"):
        Config(dict(model=dict(type=Local))).dump(tmp_path / "x.py")
    with pytest.raises(ConfigError, match="'arr'.*ndarray"):
        Config(dict(arr=np.zeros(3))).pretty_text
    assert not (tmp_path / "x.py").exists()


def test_long_scalar_lists_are_packed(tmp_path):
    cfg = Config(dict(ids=list(range(100)), names=tuple(f"class_{i}" for i in range(30))))
    text = cfg.pretty_text
    assert max(len(line) for line in text.splitlines()) <= 88
    assert len(text.splitlines()) < 25  # packed, not one item per line
    again = load_config(cfg.dump(tmp_path / "ids.py"))
    assert again.ids == list(range(100)) and again.names == cfg.names and type(again.names) is tuple
