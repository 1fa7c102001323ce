"""Dotted overrides: value parsing (MMDetection --cfg-options), list indices, typo errors."""
import pytest
import torch

from detzoo.config import Config, ConfigDict, load_config, parse_cli_options, parse_option_value
from detzoo.errors import ConfigError


class Resize:  # signature known: new keys must be real argument names
    def __init__(self, img_scale=None, keep_ratio=True):
        pass


class Anything:  # **kwargs: any new key is accepted
    def __init__(self, **kwargs):
        pass


@pytest.mark.parametrize(
    "text, expected",
    [
        ("1", 1),
        ("-3", -3),
        ("0.5", 0.5),
        ("1e-3", 0.001),
        ("True", True),
        ("false", False),
        ("None", None),
        ("none", None),
        ("'1'", "1"),
        ('"a,b"', "a,b"),
        ("bbox", "bbox"),
        ("work_dirs/r50/latest.pth", "work_dirs/r50/latest.pth"),
        ("", ""),
        ("a,b,c", ["a", "b", "c"]),
        ("1,2.5,x,None", [1, 2.5, "x", None]),
        ("x,", ["x"]),
        ("(1333,800)", (1333, 800)),
        ("[1,2]", [1, 2]),
        ("[(1333, 800), (1333, 640)]", [(1333, 800), (1333, 640)]),
        ("(1333,800),(1333,640)", [(1333, 800), (1333, 640)]),
        ("[person,car]", ["person", "car"]),
        ("[1,[a,b]]", [1, ["a", "b"]]),
        ("(a,)", ("a",)),
        ("(a)", "a"),
        ("{'a': 1}", {"a": 1}),
    ],
)
def test_parse_option_value(text, expected):
    value = parse_option_value(text)
    assert value == expected
    assert type(value) is type(expected)
    if isinstance(expected, list):
        assert [type(v) for v in value] == [type(v) for v in expected]


def test_parse_cli_options_keeps_raw_strings():
    assert parse_cli_options(["a.b=1", "c=x,y", "d=k=v"]) == {"a.b": "1", "c": "x,y", "d": "k=v"}
    with pytest.raises(ConfigError, match="key=value"):
        parse_cli_options(["lr0.01"])


@pytest.fixture
def cfg():
    return Config(
        dict(
            model=dict(backbone=dict(depth=50, frozen_stages=1, norm_eval=True, style="pytorch")),
            optimizer=dict(type=torch.optim.SGD, lr=0.02, momentum=0.9),
            data=dict(
                samples_per_gpu=2,
                train=dict(
                    classes=None,
                    pipeline=[
                        dict(type="LoadImageFromFile"),
                        dict(type="LoadAnnotations", with_bbox=True),
                        dict(type=Resize, img_scale=(1333, 800), keep_ratio=True),
                    ],
                ),
            ),
            anchor_scales=(8, 16, 32),
            ratios=[0.5, 1.0, 2.0],
        )
    )


def test_dotted_overrides_of_every_value_type(cfg):
    cfg.merge_from_dotted(
        parse_cli_options(
            [
                "model.backbone.depth=101",
                "optimizer.lr=1e-3",
                "model.backbone.norm_eval=False",
                "data.train.classes=None",
                "model.backbone.style='caffe'",
                "model.backbone.frozen_stages=-1",
                "data.train.pipeline.2.img_scale=(640,480)",
                "data.train.pipeline.1.with_bbox=false",
                "ratios=0.25,1,4.0",
                "anchor_scales.1=12",
                "data.samples_per_gpu=[1,2]",
            ]
        )
    )
    assert cfg.model.backbone.depth == 101
    assert cfg.optimizer.lr == 0.001
    assert cfg.model.backbone.norm_eval is False
    assert cfg.data.train.classes is None
    assert cfg.model.backbone.style == "caffe"
    assert cfg.model.backbone.frozen_stages == -1
    assert cfg.data.train.pipeline[2].img_scale == (640, 480)
    assert cfg.data.train.pipeline[1].with_bbox is False
    assert cfg.ratios == [0.25, 1, 4.0]
    assert cfg.anchor_scales == (8, 12, 32) and type(cfg.anchor_scales) is tuple
    assert cfg.data.samples_per_gpu == [1, 2]
    # untouched neighbours stay
    assert cfg.data.train.pipeline[2].keep_ratio is True
    assert cfg.optimizer.momentum == 0.9


def test_non_string_values_are_used_as_given(cfg):
    cfg.merge_from_dotted({"model.backbone": {"depth": 18, "extra": [dict(a=1)]}, "optimizer.lr": "0.1"})
    assert isinstance(cfg.model.backbone, ConfigDict)
    assert cfg.model.backbone.extra[0].a == 1
    assert cfg.optimizer.lr == 0.1


@pytest.mark.parametrize(
    "key, suggestion",
    [
        ("optimizer.lrr", "optimizer.lr"),  # component dict, but SGD has no 'lrr'
        ("optimzer.lr", "optimizer.lr"),  # typo at the top level
        ("model.backbone.dept", "model.backbone.depth"),  # typo at depth 3
        ("model.bakbone.frozen_stage", "model.backbone.frozen_stages"),  # two typos
        ("data.train.pipline.2.img_scale", "data.train.pipeline.2.img_scale"),  # through a list
        ("data.train.pipeline.2.img_scal", "data.train.pipeline.2.img_scale"),  # typed component
        ("data.sample_per_gpu", "data.samples_per_gpu"),
    ],
)
def test_unknown_key_suggests_nearest_path(cfg, key, suggestion):
    before = cfg.to_dict()
    with pytest.raises(ConfigError) as info:
        cfg.merge_from_dotted({key: "1"})
    assert str(info.value) == f"unknown config key '{key}'; did you mean '{suggestion}'?"
    assert cfg.to_dict() == before


def test_new_argument_of_component_dict_is_accepted(cfg):
    cfg.merge_from_dotted({"optimizer.nesterov": "True", "data.train.pipeline.0.to_float32": "True"})
    assert cfg.optimizer.nesterov is True  # SGD takes nesterov
    assert cfg.data.train.pipeline[0].to_float32 is True  # string type: signature unknown
    cfg["data"]["train"]["pipeline"].append(dict(type=Anything))
    cfg.merge_from_dotted({"data.train.pipeline.3.whatever": "x"})
    assert cfg.data.train.pipeline[3].whatever == "x"


def test_new_subtree_needs_allow_new(cfg):
    with pytest.raises(ConfigError, match="unknown config key 'work_dir.sub'"):
        cfg.merge_from_dotted({"work_dir.sub": "x"})
    cfg.merge_from_dotted({"work_dir.sub": "x", "model.neck.num_outs": "5"}, allow_new=True)
    assert cfg.work_dir == {"sub": "x"} and isinstance(cfg.work_dir, ConfigDict)
    assert cfg.model.neck.num_outs == 5


def test_bad_index_and_scalar_parent(cfg):
    with pytest.raises(ConfigError, match="'data.train.pipeline.7' is not an index"):
        cfg.merge_from_dotted({"data.train.pipeline.7.x": "1"})
    with pytest.raises(ConfigError, match="'model.backbone.depth' holds a value of type int"):
        cfg.merge_from_dotted({"model.backbone.depth.x": "1"})


def test_overrides_on_loaded_config(write_tree):
    root = write_tree({"c.py": "data = dict(train=dict(pipeline=[dict(scale=(1, 2)), dict(p=0.5)]))\n"})
    cfg = load_config(root / "c.py", options=parse_cli_options(["data.train.pipeline.1.p=0.0"]))
    assert cfg.get("data.train.pipeline.1.p") == 0.0
    assert cfg.get("data.train.pipeline.0.scale") == (1, 2)
