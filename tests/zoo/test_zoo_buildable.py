"""Every buildable zoo entry builds, and its random weights round-trip through save/load.

The count check recomputes, from the metafiles and the files under configs/, which rows must be
buildable, and compares with what `detzoo zoo list --status buildable` reports (configs are
being added, so the number is computed, not fixed). Building one full-size model takes ~1 s:
the default suite builds a small fixed subset; `-m slow` builds every buildable entry.
"""
import json

import pytest
import torch
import yaml

from detzoo.cli.main import main
from detzoo.config import instantiate, load_config
from detzoo.engine.checkpoint import load_checkpoint, load_model_weights, save_checkpoint
from detzoo.models import backbones
from detzoo.models.builder import build_detector
from detzoo.zoo.configs import configs_root
from detzoo.zoo.index import load_index

# small models first: the default suite builds these (when buildable) plus one full-size R-50
FAST_SUBSET = ("faster_rcnn_r18_fpn_quickstart", "mask_rcnn_r18_fpn_quickstart",
               "cascade_rcnn_r18_fpn_quickstart", "faster_rcnn_r50_fpn_1x_coco", "torchvision_resnet50")


def expected_buildable_names():
    """Independent of detzoo.zoo.index: plain YAML plus file / class existence."""
    root = configs_root()
    names = set()
    for path in sorted(root.glob("*/metafile.yml")):
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
        for row in data["models"]:
            if row.get("kind") == "pretrained":
                cfg = row.get("backbone_cfg")
                if cfg and isinstance(getattr(backbones, cfg["type"], None), type):
                    names.add(row["name"])
            elif row.get("config") and (root / row["config"]).is_file():
                names.add(row["name"])
    return names


def test_buildable_count_matches_zoo_list(capsys):
    assert main(["zoo", "list", "--status", "buildable", "--json"]) == 0
    listed = json.loads(capsys.readouterr().out)
    expected = expected_buildable_names()
    assert len(listed) == len(expected)
    assert {row["name"] for row in listed} == expected
    assert all(row["status"] in ("buildable", "loadable") for row in listed)


def build(entry):
    if entry.kind == "pretrained":
        cfg = dict(entry.get("backbone_cfg"))
        cfg["type"] = getattr(backbones, cfg["type"])
        return instantiate(cfg)
    return build_detector(load_config(entry.config_path)["model"])


def assert_round_trip(entry, tmp_path):
    torch.manual_seed(0)
    model = build(entry)
    reference = {k: v.clone() for k, v in model.state_dict().items()}
    path = save_checkpoint(tmp_path / f"{entry.name}.pth", model, save_rng=False)
    loaded = load_checkpoint(path, weights_only=True)
    assert list(loaded["state_dict"]) == list(reference)
    for key, value in reference.items():
        assert torch.equal(loaded["state_dict"][key], value), key
    torch.manual_seed(1)
    other = build(entry)  # different random init: loading must overwrite every tensor
    load_model_weights(other, loaded, strict=True)
    for key, value in other.state_dict().items():
        assert torch.equal(value, reference[key]), key
    assert not list(tmp_path.glob("*.tmp"))  # the save was atomic


def buildable_entries():
    return [e for e in load_index() if e.at_least("buildable")]


@pytest.mark.parametrize("name", FAST_SUBSET)
def test_fast_subset_round_trips(name, tmp_path):
    entry = next((e for e in buildable_entries() if e.name == name), None)
    if entry is None:
        pytest.skip(f"{name} is not buildable in this tree")
    assert_round_trip(entry, tmp_path)


@pytest.mark.slow
def test_every_buildable_entry_round_trips(tmp_path):
    failures = []
    entries = buildable_entries()
    for entry in entries:
        try:
            assert_round_trip(entry, tmp_path)
        except Exception as exc:  # noqa: BLE001 - collect every broken entry, then report
            failures.append(f"{entry.name}: {type(exc).__name__}: {exc}")
    assert not failures, "\n".join(failures)
    assert len(entries) == len(expected_buildable_names())
