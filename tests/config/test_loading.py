"""Executing config files: inheritance by relative imports, isolation between loads, errors."""
import pytest

from detzoo.config import Config, ConfigDict, load_config
from detzoo.errors import ConfigError

BASE_MODEL = """
    from collections import OrderedDict

    model = dict(
        type=OrderedDict,
        backbone=dict(type=OrderedDict, depth=50, out_indices=(0, 1, 2, 3)),
        neck=dict(in_channels=[256, 512, 1024, 2048], out_channels=256),
    )
"""

# Level 1: takes the model from _base_ and adds a schedule.
R50 = """
    from .._base_.models.model import model
    from .._base_.schedule import *

    work_name = "r50"
"""

# Level 2: everything from R50, deeper backbone, longer schedule (mutations of imported objects).
R101 = """
    from .r50 import *

    model["backbone"]["depth"] = 101
    model["neck"]["in_channels"].append(4096)
    optimizer["lr"] = 0.01
    work_name = "r101"
"""

SCHEDULE = """
    import math as _math_alias
    import torch

    from collections import OrderedDict

    optimizer = dict(lr=0.02, momentum=0.9)
    max_epochs = 12
    _private = 3


    def helper():
        return 1
"""


@pytest.fixture
def tree(write_tree):
    return write_tree(
        {
            "_base_/models/model.py": BASE_MODEL,
            "_base_/schedule.py": SCHEDULE,
            "det/r50.py": R50,
            "det/r101.py": R101,
        }
    )


def test_two_level_inheritance_with_mutation(tree):
    from collections import OrderedDict

    cfg = load_config(tree / "det" / "r101.py")
    assert isinstance(cfg, Config)
    assert cfg.filename == str(tree / "det" / "r101.py")
    assert cfg.model.backbone.depth == 101
    assert cfg.model.backbone.type is OrderedDict
    assert cfg.model.neck.in_channels == [256, 512, 1024, 2048, 4096]
    assert cfg.optimizer == {"lr": 0.01, "momentum": 0.9}
    assert cfg.work_name == "r101"
    assert cfg.max_epochs == 12
    # Modules, classes, functions and _private names are helpers, not config values.
    assert sorted(cfg.keys()) == ["max_epochs", "model", "optimizer", "work_name"]


def test_mutation_does_not_leak_to_sibling_loaded_afterwards(tree):
    child = load_config(tree / "det" / "r101.py")
    sibling = load_config(tree / "det" / "r50.py")
    assert sibling.model.backbone.depth == 50
    assert sibling.model.neck.in_channels == [256, 512, 1024, 2048]
    assert sibling.optimizer.lr == 0.02
    assert sibling.work_name == "r50"
    # ...and loading the child again re-executes the bases (no cumulative appends).
    again = load_config(tree / "det" / "r101.py")
    assert again.model.neck.in_channels == [256, 512, 1024, 2048, 4096]
    assert again == child


def test_nested_values_are_configdicts_with_attribute_access(tree):
    cfg = load_config(tree / "det" / "r50.py")
    assert isinstance(cfg.model, ConfigDict)
    assert isinstance(cfg["model"]["backbone"], ConfigDict)
    assert cfg.model.backbone.out_indices == (0, 1, 2, 3)
    assert type(cfg.model.backbone.out_indices) is tuple
    assert cfg.get("model.neck.in_channels.1") == 512
    assert cfg.get("model.neck.missing", "dflt") == "dflt"
    plain = cfg.to_dict()
    assert type(plain["model"]) is dict and type(plain["model"]["backbone"]) is dict


def test_star_import_exports_only_config_values(write_tree):
    root = write_tree(
        {
            "base.py": """
                import os
                from collections import OrderedDict
                a = 1
                b = dict(type=OrderedDict)
                _hidden = 2
                def f():
                    return 0
            """,
            "child.py": """
                from .base import *
                names = sorted(k for k in dir() if not k.startswith("__"))
            """,
        }
    )
    cfg = load_config(root / "child.py")
    assert cfg.names == ["a", "b"]


def test_from_dot_import_sibling_module(write_tree):
    root = write_tree(
        {
            "parts/__init__.py": "",
            "parts/sizes.py": "small = 3\nlarge = 9\n",
            "parts/cfg.py": """
                from . import sizes
                total = sizes.small + sizes.large
            """,
        }
    )
    assert load_config(root / "parts" / "cfg.py").to_dict() == {"total": 12}


def test_base_is_executed_once_per_load(write_tree):
    # Like Python modules within one load: separate imports of one base share its objects.
    root = write_tree(
        {
            "base.py": "pipeline = [1, 2]\ndata = dict(train=dict(pipeline=pipeline))\n",
            "child.py": """
                from .base import pipeline
                from .base import data
                pipeline.append(3)
            """,
        }
    )
    assert load_config(root / "child.py").data.train.pipeline == [1, 2, 3]


def test_missing_file_is_named(tmp_path):
    missing = tmp_path / "nowhere" / "cfg.py"
    with pytest.raises(ConfigError, match="not found") as info:
        load_config(missing)
    assert str(missing) in str(info.value)


def test_syntax_error_names_file_and_line(write_tree):
    root = write_tree({"bad.py": "a = 1\nb = 2\nc = = 3\n"})
    with pytest.raises(ConfigError) as info:
        load_config(root / "bad.py")
    message = str(info.value)
    assert str(root / "bad.py") in message and "line 3" in message
    assert "\n" not in message


def test_syntax_error_in_base_names_the_base(write_tree):
    root = write_tree({"_base_/b.py": "x = (\n", "c.py": "from ._base_.b import x\n"})
    with pytest.raises(ConfigError, match="syntax error") as info:
        load_config(root / "c.py")
    assert str(root / "_base_" / "b.py") in str(info.value)


def test_missing_base_names_importer_and_target(write_tree):
    root = write_tree({"det/c.py": "y = 1\nfrom .._base_.models.nothere import model\n"})
    with pytest.raises(ConfigError) as info:
        load_config(root / "det" / "c.py")
    message = str(info.value)
    assert f"{root / 'det' / 'c.py'}, line 2" in message
    assert str(root / "_base_" / "models" / "nothere.py") in message


def test_missing_name_in_base_suggests_nearest(write_tree):
    root = write_tree({"base.py": "model = 1\n", "c.py": "from .base import modle\n"})
    with pytest.raises(ConfigError, match="did you mean 'model'"):
        load_config(root / "c.py")


def test_runtime_error_names_file_and_line(write_tree):
    root = write_tree({"c.py": "model = dict(a=1)\ndepth = model['b']\n"})
    with pytest.raises(ConfigError) as info:
        load_config(root / "c.py")
    message = str(info.value)
    assert f"{root / 'c.py'}, line 2" in message and "KeyError" in message


def test_circular_import_is_reported(write_tree):
    root = write_tree({"a.py": "from .b import y\nx = 1\n", "b.py": "from .a import x\ny = 2\n"})
    with pytest.raises(ConfigError, match="circular"):
        load_config(root / "a.py")


def test_absolute_imports_use_normal_machinery(write_tree):
    root = write_tree({"c.py": "import json\nfrom detzoo.errors import ConfigError\nname = ConfigError.__name__\n"})
    assert load_config(root / "c.py").to_dict() == {"name": "ConfigError"}


def test_load_config_applies_options(tree):
    cfg = load_config(tree / "det" / "r50.py", options={"model.backbone.depth": "18"})
    assert cfg.model.backbone.depth == 18


def test_configdict_conversion_copy_and_pickle():
    import copy
    import pickle

    cfg = Config(dict(a=dict(b=[dict(c=1), (dict(d=2),)])), filename="f.py")
    cfg.new = dict(x=dict(y=1))
    cfg.a.b[0].c = 5
    assert isinstance(cfg.new.x, ConfigDict) and isinstance(cfg.a.b[1][0], ConfigDict)
    assert cfg.to_dict() == {"a": {"b": [{"c": 5}, ({"d": 2},)]}, "new": {"x": {"y": 1}}}
    for other in (pickle.loads(pickle.dumps(cfg)), copy.deepcopy(cfg), cfg.copy()):
        assert other == cfg and other.filename == "f.py" and isinstance(other.a.b[1][0], ConfigDict)
    clone = cfg.copy()
    clone.a.b[0].c = 9
    assert cfg.a.b[0].c == 5
    with pytest.raises(AttributeError, match="no key 'missing'"):
        cfg.a.missing
    assert not hasattr(cfg, "missing")
