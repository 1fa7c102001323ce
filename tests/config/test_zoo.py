"""Zoo config names: listing, resolution by name or path, nearest-name errors."""
from pathlib import Path

import pytest

from detzoo.config import load_config
from detzoo.errors import ConfigError
from detzoo.zoo import configs_root, list_config_names, resolve_config


@pytest.fixture
def zoo(write_tree, tmp_path, monkeypatch):
    root = write_tree(
        {
            "__init__.py": "",
            "_base_/models/faster_rcnn_r50_fpn.py": "model = dict(depth=50)\n",
            "_base_/default_runtime.py": "seed = 0\n",
            "faster_rcnn/__init__.py": "",
            "faster_rcnn/faster_rcnn_r50_fpn_1x_coco.py": "from .._base_.models.faster_rcnn_r50_fpn import model\n",
            "faster_rcnn/faster_rcnn_r50_fpn_2x_coco.py": "from .faster_rcnn_r50_fpn_1x_coco import *\nmax_epochs = 24\n",
            "faster_rcnn/faster_rcnn_r101_fpn_1x_coco.py": "from .faster_rcnn_r50_fpn_1x_coco import *\nmodel['depth'] = 101\n",
            "retinanet/retinanet_r50_fpn_1x_coco.py": "name = 'retina'\n",
            "quickstart/tiny/_scratch/notes.py": "x = 1\n",
            "quickstart/tiny/tiny_det.py": "name = 'tiny'\n",
        },
        root=tmp_path / "configs",
    )
    monkeypatch.setenv("DETZOO_CONFIGS", str(root))
    return root


def test_default_root_is_repo_configs(monkeypatch):
    monkeypatch.delenv("DETZOO_CONFIGS", raising=False)
    repo = Path(__file__).resolve().parents[2]  # tests/config/test_zoo.py -> repo root
    assert configs_root() == repo / "configs"


def test_env_var_overrides_root(zoo):
    assert configs_root() == zoo


def test_list_config_names_skips_base_private_and_init(zoo):
    assert list_config_names() == [
        "faster_rcnn_r101_fpn_1x_coco",
        "faster_rcnn_r50_fpn_1x_coco",
        "faster_rcnn_r50_fpn_2x_coco",
        "retinanet_r50_fpn_1x_coco",
        "tiny_det",
    ]


def test_resolve_by_name_relative_path_and_existing_path(zoo, write_tree, tmp_path):
    expected = zoo / "faster_rcnn" / "faster_rcnn_r50_fpn_2x_coco.py"
    assert resolve_config("faster_rcnn_r50_fpn_2x_coco") == expected
    assert resolve_config("faster_rcnn_r50_fpn_2x_coco.py") == expected
    assert resolve_config("faster_rcnn/faster_rcnn_r50_fpn_2x_coco") == expected
    assert resolve_config("quickstart/tiny/tiny_det.py") == zoo / "quickstart" / "tiny" / "tiny_det.py"
    # an existing file wins over a zoo config of the same stem
    mine = write_tree({"mine/retinanet_r50_fpn_1x_coco.py": "name = 'mine'\n"}) / "mine" / "retinanet_r50_fpn_1x_coco.py"
    assert resolve_config(mine) == mine
    assert resolve_config(str(mine)) == mine


def test_load_config_by_zoo_name(zoo):
    cfg = load_config("faster_rcnn_r101_fpn_1x_coco")
    assert cfg.to_dict() == {"model": {"depth": 101}}
    assert cfg.filename == str(zoo / "faster_rcnn" / "faster_rcnn_r101_fpn_1x_coco.py")
    assert load_config("faster_rcnn_r50_fpn_2x_coco").to_dict() == {"model": {"depth": 50}, "max_epochs": 24}


def test_unknown_name_lists_nearest(zoo):
    with pytest.raises(ConfigError) as info:
        resolve_config("faster_rcnn_r50_fpn_3x_coco")
    message = str(info.value)
    assert "unknown config 'faster_rcnn_r50_fpn_3x_coco'" in message
    nearest = message.split("nearest: ")[1].split(", ")
    assert nearest[:2] == ["faster_rcnn_r50_fpn_1x_coco", "faster_rcnn_r50_fpn_2x_coco"] or nearest[:2] == [
        "faster_rcnn_r50_fpn_2x_coco",
        "faster_rcnn_r50_fpn_1x_coco",
    ]
    assert "tiny_det" not in nearest


def test_nearest_list_is_capped_at_five(write_tree, tmp_path, monkeypatch):
    root = write_tree({f"m/model_v{i}.py": "x = 1\n" for i in range(8)}, root=tmp_path / "many")
    monkeypatch.setenv("DETZOO_CONFIGS", str(root))
    with pytest.raises(ConfigError) as info:
        resolve_config("model_v")
    assert len(str(info.value).split("nearest: ")[1].split(", ")) == 5


def test_missing_path_and_ambiguous_name(zoo, write_tree):
    with pytest.raises(ConfigError, match="config file not found: no/such/file.py"):
        resolve_config("no/such/file.py")
    write_tree({"other/tiny_det.py": "x = 2\n"}, root=zoo)
    with pytest.raises(ConfigError, match="ambiguous") as info:
        resolve_config("tiny_det")
    assert "other/tiny_det.py" in str(info.value) and "quickstart/tiny/tiny_det.py" in str(info.value)
