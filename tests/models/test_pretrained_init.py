"""ImageNet initialisation when training: every zoo config names a backbone checkpoint the zoo
index resolves (no download), train_from_config loads exactly those weights into the built model
(nothing else changes, nothing is re-randomised), resuming skips it, and offline it fails with
one line that says what to do."""
import inspect
from pathlib import Path

import pytest
import torch
import torch.nn as nn

from detzoo.apis import train as train_api
from detzoo.config import load_config
from detzoo.errors import CheckpointError
from detzoo.models import backbones
from detzoo.models.backbones import ResNet
from detzoo.models.backbones.pretrained import load_pretrained_weights, pretrained_init_cfgs
from detzoo.models.roi_heads.shared_heads.res_layer import ResLayer
from detzoo.zoo import index as zoo_index
from detzoo.zoo.configs import configs_root

QUICKSTART = "faster_rcnn_r18_fpn_quickstart"
TINY_BACKBONE = dict(depth=18, stem_channels=32, base_channels=32)  # the quickstart's ResNet-18


# --- (a) the zoo configs ----------------------------------------------------------------------
def _zoo_config_files():
    """Every trainable config under configs/ (the torchvision ones are inference-only)."""
    root = configs_root()
    return sorted(p for p in root.rglob("*.py")
                  if "_base_" not in p.parts and p.relative_to(root).parts[0] != "torchvision")


def _class_default(cls, key):
    param = inspect.signature(cls.__init__).parameters.get(key)
    return None if param is None or param.default is inspect.Parameter.empty else param.default


def _mismatches(backbone: dict, entry) -> list:
    """Where a config's backbone dict disagrees with the architecture the zoo row's weights
    were trained for (row ``backbone_cfg`` and ``style``)."""
    row = entry.get("backbone_cfg") or {}
    cls = backbone["type"]
    problems = [] if cls.__name__ == row.get("type") else [f"type {cls.__name__} != {row.get('type')}"]
    for key, want in row.items():
        if key == "type":
            continue
        have = backbone.get(key, _class_default(cls, key))
        if isinstance(want, dict):  # norm_cfg / conv_cfg: the row's keys must agree
            have = have or {}
            ok = all(have.get(k) == v for k, v in want.items())
        else:
            ok = have == want
        if not ok:
            problems.append(f"{key}={have!r}, weights for {want!r}")
    if "style" in inspect.signature(cls.__init__).parameters and entry.get("style") in ("caffe", "pytorch"):
        style = backbone.get("style", _class_default(cls, "style"))
        if style != entry.get("style"):
            problems.append(f"style {style!r}, weights for {entry.get('style')!r}")
    return problems


def _init_modules(model_cfg: dict):
    """(where, module cfg) of the config's modules that take ImageNet weights."""
    found = [("backbone", model_cfg["backbone"])]
    shared = (model_cfg.get("roi_head") or {}).get("shared_head")
    if shared is not None:
        found.append(("roi_head.shared_head", shared))
    return found


@pytest.fixture(scope="module")
def index():
    return zoo_index.load_index()


def test_every_zoo_config_names_one_matching_checkpoint_file(index):
    """No download: the name must resolve in the index to one weights file whose backbone is the
    config's (type, depth, groups, width, stem, norm/conv type, stride style)."""
    files = _zoo_config_files()
    assert len(files) > 100
    failures, resolved = [], {}
    for path in files:
        rel = path.relative_to(configs_root()).as_posix()
        model_cfg = load_config(str(path))["model"]
        for where, module_cfg in _init_modules(model_cfg):
            init_cfg = module_cfg.get("init_cfg")
            if rel.startswith("quickstart/"):
                # trained from scratch, and saying so explicitly
                if "init_cfg" not in module_cfg or init_cfg is not None:
                    failures.append(f"{rel}: {where}.init_cfg must be None explicitly, got {init_cfg!r}")
                continue
            if not (isinstance(init_cfg, dict) and init_cfg.get("type") == "Pretrained"):
                failures.append(f"{rel}: {where}.init_cfg={init_cfg!r} is not a Pretrained checkpoint")
                continue
            try:
                entries = zoo_index.find_entries(init_cfg["checkpoint"], index)
            except Exception as exc:  # noqa: BLE001 - collect every broken config
                failures.append(f"{rel}: {exc}")
                continue
            if len({e.weights for e in entries}) != 1 or not entries[0].weights:
                failures.append(f"{rel}: {init_cfg['checkpoint']} names {len(entries)} files")
                continue
            entry = entries[0]
            if entry.kind != "pretrained":
                failures.append(f"{rel}: {init_cfg['checkpoint']} is the detector row {entry.name}")
            if where == "backbone":
                failures += [f"{rel}: {p}" for p in _mismatches(module_cfg, entry)]
            resolved[(rel, where)] = entry
    assert not failures, "\n".join(failures)
    # every non-quickstart config got a backbone checkpoint, and the C4 ones a res5 one too
    assert sum(where == "backbone" for _, where in resolved) == \
        sum(1 for p in files if p.relative_to(configs_root()).parts[0] != "quickstart")
    c4 = {rel for rel, where in resolved if where == "roi_head.shared_head"}
    assert "faster_rcnn/faster_rcnn_r50_caffe_c4_1x_coco.py" in c4 and "faster_rcnn/faster_rcnn_r50_vd_1x.py" in c4
    for (rel, where), entry in resolved.items():  # a shared head reads the backbone's own archive
        if where == "roi_head.shared_head":
            assert entry.weights == resolved[(rel, "backbone")].weights, rel


def test_mmdetection_r50_pytorch_configs_use_torchvision_resnet50(index):
    by_config = {e.config: e for e in index if e.config and e.source == "MMDetection"}
    checked = 0
    for path in _zoo_config_files():
        rel = path.relative_to(configs_root()).as_posix()
        if rel not in by_config:
            continue
        b = load_config(str(path))["model"]["backbone"]
        plain = (b["type"] is ResNet and b.get("depth") == 50 and b.get("style", "pytorch") == "pytorch"
                 and (b.get("norm_cfg") or {}).get("type", "BN") == "BN" and b.get("conv_cfg") is None)
        if plain:
            assert zoo_index.get_entry(b["init_cfg"]["checkpoint"], index).name == "torchvision_resnet50", rel
            assert zoo_index.get_entry(b["init_cfg"]["checkpoint"], index).weights == \
                "https://download.pytorch.org/models/resnet50-19c8e357.pth"
            checked += 1
    assert checked >= 20  # Faster/Mask/Cascade/RetinaNet/RPN/Fast R-CNN/ATSS/GFL/DCN/VOC R-50 rows


def test_paddle_rows_use_paddles_archives(index):
    cases = {"faster_rcnn/faster_rcnn_r50_fpn_1x.py": "ResNet50_cos_pretrained.tar",
             "faster_rcnn/faster_rcnn_r101_vd_fpn_2x.py": "ResNet101_vd_pretrained.tar",
             "mask_rcnn/mask_rcnn_x101_vd_64x4d_fpn_1x.py": "ResNeXt101_vd_64x4d_pretrained.tar",
             "faster_rcnn/faster_rcnn_se154_vd_fpn_s1x.py": "SENet154_vd_pretrained.tar",
             "yolo/yolov3_darknet_voc.py": "DarkNet53_pretrained.tar",
             "yolo/yolov3_mobilenet_v1_270e_coco.py": "MobileNetV1_pretrained.tar",
             "yolo/yolov3_r34_voc.py": "ResNet34_pretrained.tar"}
    for rel, file in cases.items():
        b = load_config(str(configs_root() / rel))["model"]["backbone"]
        entry = zoo_index.get_entry(b["init_cfg"]["checkpoint"], index)
        assert entry.source == "PaddleDetection" and entry.weights == \
            f"https://paddle-imagenet-models-name.bj.bcebos.com/{file}", rel


# --- load_pretrained_weights on a small composite model ----------------------------------------
class _TwoPart(nn.Module):
    """A backbone, a C4-style shared head (both with init_cfg) and a randomly initialised head."""

    def __init__(self, backbone_init=None, head_init=None):
        super().__init__()
        self.backbone = ResNet(**TINY_BACKBONE, init_cfg=backbone_init)
        self.shared_head = ResLayer(depth=50, base_channels=8, init_cfg=head_init)
        self.head = nn.Linear(4, 3)


def _save(state, path):
    torch.save(state, path)
    return str(path)


def test_loads_each_pretrained_module_and_draws_no_random_numbers(tmp_path):
    torch.manual_seed(5)
    source = _TwoPart()
    backbone_file = _save({"state_dict": {**source.backbone.state_dict(), "fc.weight": torch.ones(2, 2)}},
                          tmp_path / "r18.pth")
    head_file = _save({f"layer4.{k.split('.', 1)[1]}": v for k, v in source.shared_head.state_dict().items()},
                      tmp_path / "res5.pth")
    torch.manual_seed(0)
    plain = _TwoPart()
    torch.manual_seed(0)
    model = _TwoPart(dict(type="Pretrained", checkpoint=backbone_file), dict(type="Pretrained", checkpoint=head_file))
    rng = torch.get_rng_state()
    lines = []
    loaded = load_pretrained_weights(model, log=lines.append)
    assert torch.equal(torch.get_rng_state(), rng)  # nothing re-randomised
    assert loaded == [("backbone", backbone_file), ("shared_head", head_file)]
    assert len(lines) == 2 and lines[0].startswith("backbone:") and backbone_file in lines[0]
    for key, value in model.backbone.state_dict().items():
        assert torch.equal(value, source.backbone.state_dict()[key]), key
    for key, value in model.shared_head.state_dict().items():
        assert torch.equal(value, source.shared_head.state_dict()[key]), key
    assert torch.equal(model.head.weight, plain.head.weight)  # same init as a model without init_cfg
    assert not torch.equal(plain.backbone.layer1[0].conv1.weight, model.backbone.layer1[0].conv1.weight)
    assert [name for name, _, _ in pretrained_init_cfgs(plain)] == []
    assert load_pretrained_weights(plain, log=None) == []


def test_wrong_architecture_names_the_module(tmp_path):
    wrong = _save(ResNet(depth=18).state_dict(), tmp_path / "wide_r18.pth")  # 64 channels, not 32
    model = _TwoPart(dict(type="Pretrained", checkpoint=wrong))
    with pytest.raises(CheckpointError, match=r"^backbone: .*shape.*model\.backbone\.init_cfg=None"):
        load_pretrained_weights(model, log=None)


def _paddle_res5(cin=128, width=64, vd=True, seed=0):
    """A Paddle ImageNet archive's res5 blocks (plus a vd stem conv, which marks a vd archive),
    named as Paddle's ResNet writes them: ``res5a_branch2a_weights``, ``bn5a_branch2a_scale`` ...
    (static/ppdet/modeling/backbones/name_adapter.py), conv weights OIHW."""
    import numpy as np

    rng = np.random.default_rng(seed)
    shapes = {"conv1_1_weights": (32, 3, 3, 3)} if vd else {"conv1_weights": (64, 3, 7, 7)}
    for block, c_in in (("5a", cin), ("5b", 4 * width), ("5c", 4 * width)):
        convs = [("branch2a", width, c_in, 1), ("branch2b", width, width, 3), ("branch2c", 4 * width, width, 1)]
        if block == "5a":
            convs.append(("branch1", 4 * width, c_in, 1))
        for branch, cout, cinn, k in convs:
            shapes[f"res{block}_{branch}_weights"] = (cout, cinn, k, k)
            for part in ("scale", "offset", "mean"):
                shapes[f"bn{block}_{branch}_{part}"] = (cout,)
            shapes[f"bn{block}_{branch}_variance"] = (cout,)
    params = {name: rng.standard_normal(shape).astype(np.float32) for name, shape in shapes.items()}
    for name in params:
        if name.endswith("_variance"):
            params[name] = np.abs(params[name]) + 0.5
    return params


def test_paddle_archive_fills_a_c4_shared_head(tmp_path):
    import pickle

    params = _paddle_res5()
    path = tmp_path / "ResNet50_vd_pretrained.pdparams"
    path.write_bytes(pickle.dumps(params, protocol=2))
    head = ResLayer(depth=50, base_channels=8, avg_down=True,
                    init_cfg=dict(type="Pretrained", checkpoint=str(path)))
    assert load_pretrained_weights(head, log=None) == [("ResLayer", str(path))]
    state = head.state_dict()
    assert torch.equal(state["layer4.0.conv1.weight"], torch.from_numpy(params["res5a_branch2a_weights"]))
    assert torch.equal(state["layer4.1.conv2.weight"], torch.from_numpy(params["res5b_branch2b_weights"]))
    # vd shortcut: avg-pool (index 0), then the 1x1 conv and its norm
    assert torch.equal(state["layer4.0.downsample.1.weight"], torch.from_numpy(params["res5a_branch1_weights"]))
    assert torch.equal(state["layer4.0.downsample.2.running_var"],
                       torch.from_numpy(params["bn5a_branch1_variance"]))
    assert torch.equal(state["layer4.2.bn3.weight"], torch.from_numpy(params["bn5c_branch2c_scale"]))
    assert torch.equal(state["layer4.2.bn3.bias"], torch.from_numpy(params["bn5c_branch2c_offset"]))


# --- (b) train_from_config ---------------------------------------------------------------------
class _Captured(Exception):
    pass


@pytest.fixture
def run_until_first_step(monkeypatch):
    """train_from_config up to the trainer: returns the model it built and initialised (the
    datasets are replaced by a stub; the trainer is where the first step would happen)."""
    class _Stub:
        CLASSES = ("circle", "square", "triangle", "star")

    monkeypatch.setattr(train_api, "build_datasets", lambda cfg, with_val=True: (_Stub(), None))

    def run(cfg, work_dir, **kwargs):
        seen = {}

        def fake_trainer(model, *args, **kw):
            seen["model"], seen["resume_from"] = model, kw.get("resume_from")
            raise _Captured

        monkeypatch.setattr("detzoo.engine.trainer.train_detector", fake_trainer)
        with pytest.raises(_Captured):
            train_api.train_from_config(cfg, str(work_dir), validate=False, seed=7, **kwargs)
        return seen["model"]
    return run


def _quickstart(init_cfg):
    cfg = load_config(QUICKSTART)
    cfg["model"]["backbone"]["init_cfg"] = init_cfg
    return cfg


def test_training_starts_from_the_init_cfg_weights(tmp_path, run_until_first_step, capsys):
    torch.manual_seed(123)
    imagenet = {**ResNet(**TINY_BACKBONE).state_dict(), "fc.weight": torch.zeros(10, 256)}
    file = _save(imagenet, tmp_path / "imagenet_r18.pth")
    model = run_until_first_step(_quickstart(dict(type="Pretrained", checkpoint=file)), tmp_path / "a")
    scratch = run_until_first_step(_quickstart(None), tmp_path / "b")
    assert f"backbone: initialised from {file}" in capsys.readouterr().out
    state, scratch_state = model.state_dict(), scratch.state_dict()
    backbone_keys = [k for k in state if k.startswith("backbone.")]
    assert len(backbone_keys) == len(imagenet) - 1
    for key in backbone_keys:
        assert torch.equal(state[key], imagenet[key[len("backbone."):]]), key
    others = [k for k in state if not k.startswith("backbone.")]
    assert others and all(torch.equal(state[k], scratch_state[k]) for k in others)  # same seeded init
    assert not torch.equal(scratch_state["backbone.conv1.weight"], imagenet["conv1.weight"])


def test_resume_does_not_load_it(tmp_path, run_until_first_step):
    missing = dict(type="Pretrained", checkpoint=str(tmp_path / "nowhere" / "never_read.pth"))
    scratch = run_until_first_step(_quickstart(None), tmp_path / "s")
    resumed = run_until_first_step(_quickstart(missing), tmp_path / "r", resume_from=str(tmp_path / "epoch_1.pth"))
    assert torch.equal(resumed.backbone.conv1.weight, scratch.backbone.conv1.weight)
    work = tmp_path / "auto"
    work.mkdir()
    (work / "epoch_3.pth").write_bytes(b"")  # resume_from="auto" finds it: no init_cfg loading
    run_until_first_step(_quickstart(missing), work, resume_from="auto")
    # "auto" with nothing to resume starts fresh: the init_cfg is read (and here is missing)
    with pytest.raises(CheckpointError, match="never_read.pth"):
        train_api.train_from_config(_quickstart(missing), str(tmp_path / "empty"), validate=False,
                                    resume_from="auto")


# --- (c) offline ------------------------------------------------------------------------------
@pytest.fixture
def offline_zoo(tmp_path, monkeypatch):
    """A private index whose torchvision://resnet18 lives on a port where nothing listens."""
    import yaml

    root = tmp_path / "configs"
    (root / "imagenet_pretrained").mkdir(parents=True)
    url = "http://127.0.0.1:9/models/resnet18-f37072fd.pth"
    rows = [dict(name="torchvision_resnet18", kind="pretrained", source="MMDetection",
                 aliases=["torchvision://resnet18"], backbone_cfg={"type": "ResNet", "depth": 18},
                 weights=url, sha256_prefix="f37072fd")]
    (root / "imagenet_pretrained" / "metafile.yml").write_text(yaml.safe_dump({"method": "x", "models": rows}))
    monkeypatch.setenv("DETZOO_HOME", str(tmp_path / "home"))
    monkeypatch.delenv("DETZOO_ZOO_MIRROR", raising=False)
    real_load = zoo_index.load_index
    monkeypatch.setattr(zoo_index, "load_index", lambda root_=None: real_load(root))
    return url, tmp_path / "home" / "checkpoints" / "resnet18-f37072fd.pth"


def test_offline_name_gives_one_line_with_the_way_out(offline_zoo, tmp_path, monkeypatch):
    url, target = offline_zoo

    class _Stub:
        CLASSES = ("circle", "square", "triangle", "star")

    monkeypatch.setattr(train_api, "build_datasets", lambda cfg, with_val=True: (_Stub(), None))
    cfg = _quickstart(dict(type="Pretrained", checkpoint="torchvision://resnet18"))
    with pytest.raises(CheckpointError) as info:
        train_api.train_from_config(cfg, str(tmp_path / "w"), validate=False)
    message = str(info.value)
    assert "\n" not in message and message.startswith("backbone: ")
    assert url in message and str(target) in message and "place it at" in message
    assert "--cfg-options model.backbone.init_cfg=None" in message
    assert not target.exists()
