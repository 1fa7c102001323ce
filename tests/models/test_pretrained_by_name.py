"""init_cfg=dict(type="Pretrained", checkpoint=<zoo name | alias | checkpoint stem | URL>):
resolved through the zoo index, downloaded from an HTTP server on 127.0.0.1 into the cache
(sha256 checked), then loaded; offline and corrupted cases give clear errors."""
import hashlib
import importlib.util
import pickle
from pathlib import Path

import numpy as np
import pytest
import torch

from detzoo.errors import CheckpointError
from detzoo.models.backbones import ResNet, SENet
from detzoo.models.backbones.pretrained import resolve_pretrained
from detzoo.zoo import index as zoo_index



def _load(name: str, file: str):
    spec = importlib.util.spec_from_file_location(name, Path(__file__).resolve().parents[1] / "zoo" / file)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


FileServer = _load("_zoo_file_server", "conftest.py").FileServer  # the Range-capable local server
paddle_senet = _load("_paddle_names", "test_paddle_single_stage.py").paddle_senet  # Paddle's SENet names


@pytest.fixture
def server(tmp_path):
    served = tmp_path / "served"
    served.mkdir()
    srv = FileServer(served)
    yield srv
    srv.close()


@pytest.fixture
def zoo(tmp_path, monkeypatch):
    """A private zoo: rows written by the test into a metafile, the cache in tmp_path/home."""
    root = tmp_path / "configs"
    (root / "imagenet_pretrained").mkdir(parents=True)
    monkeypatch.setenv("DETZOO_HOME", str(tmp_path / "home"))
    monkeypatch.delenv("DETZOO_ZOO_MIRROR", raising=False)
    real_load = zoo_index.load_index
    monkeypatch.setattr(zoo_index, "load_index", lambda root_=None: real_load(root))

    def write(rows):
        import yaml

        data = {"method": "ImageNet-pretrained backbone", "models": rows}
        (root / "imagenet_pretrained" / "metafile.yml").write_text(yaml.safe_dump(data))
    return write


def serve_resnet18(server):
    torch.manual_seed(3)
    state = ResNet(depth=18).state_dict()
    state["fc.weight"] = torch.zeros(10, 512)  # a classifier the backbone lacks
    tmp = Path(server.root) / "tmp.pth"
    torch.save(state, tmp)
    data = tmp.read_bytes()
    sha8 = hashlib.sha256(data).hexdigest()[:8]
    url = server.put(f"models/resnet18-{sha8}.pth", data)
    return state, url, sha8


def resnet_row(url, sha8, **extra):
    row = dict(name="torchvision_resnet18", kind="pretrained", source="MMDetection",
               aliases=["torchvision://resnet18"], backbone_cfg={"type": "ResNet", "depth": 18},
               weights=url, sha256_prefix=sha8)
    row.update(extra)
    return row


def test_alias_and_stem_download_verify_cache_and_load(server, zoo, tmp_path):
    state, url, sha8 = serve_resnet18(server)
    zoo([resnet_row(url, sha8)])
    net = ResNet(depth=18, init_cfg=dict(type="Pretrained", checkpoint="torchvision://resnet18"))
    net.init_weights()
    assert torch.equal(net.layer3[1].conv2.weight, state["layer3.1.conv2.weight"])
    assert torch.equal(net.bn1.running_var, state["bn1.running_var"])
    cached = tmp_path / "home" / "checkpoints" / f"resnet18-{sha8}.pth"
    assert cached.is_file() and hashlib.sha256(cached.read_bytes()).hexdigest().startswith(sha8)
    assert not list(cached.parent.glob("*.part"))
    requests = len(server.requests)
    # the checkpoint stem and the row name resolve to the same cached file, without a download
    assert resolve_pretrained(f"resnet18-{sha8}") == cached
    assert resolve_pretrained("torchvision_resnet18") == cached
    assert len(server.requests) == requests


def test_offline_error_names_url_and_cache_and_preplaced_file_works(server, zoo, tmp_path):
    state, url, sha8 = serve_resnet18(server)
    dead = url.replace(server.base, "http://127.0.0.1:9")  # discard port: nothing listens
    zoo([resnet_row(dead, sha8)])
    with pytest.raises(CheckpointError) as info:
        ResNet(depth=18, init_cfg=dict(type="Pretrained", checkpoint="torchvision://resnet18")).init_weights()
    message = str(info.value)
    target = tmp_path / "home" / "checkpoints" / f"resnet18-{sha8}.pth"
    assert dead in message and str(target) in message and "place it at" in message
    # a file placed by hand into the cache is used offline
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_bytes((Path(server.root) / f"models/resnet18-{sha8}.pth").read_bytes())
    net = ResNet(depth=18, init_cfg=dict(type="Pretrained", checkpoint="torchvision://resnet18"))
    net.init_weights()
    assert torch.equal(net.layer4[0].downsample[0].weight, state["layer4.0.downsample.0.weight"])


def test_corrupted_download_is_refused_and_not_cached(server, zoo, tmp_path):
    _, url, sha8 = serve_resnet18(server)
    path = Path(server.root) / f"models/resnet18-{sha8}.pth"
    data = bytearray(path.read_bytes())
    data[100] ^= 0xFF
    path.write_bytes(bytes(data))
    zoo([resnet_row(url, sha8)])
    with pytest.raises(CheckpointError, match="sha256"):
        resolve_pretrained("torchvision://resnet18")
    assert not any((tmp_path / "home" / "checkpoints").iterdir())


def test_unknown_name_and_missing_path(zoo, tmp_path):
    zoo([resnet_row("https://example.invalid/resnet18-0123abcd.pth", "0123abcd")])
    with pytest.raises(CheckpointError, match=r"not found.*torchvision_resnet18"):
        resolve_pretrained("torchvision_resnet81")
    with pytest.raises(CheckpointError, match="pretrained backbone checkpoint not found"):
        resolve_pretrained(str(tmp_path / "nowhere" / "r18.pth"))


def test_paddle_imagenet_archive_is_converted_by_name(server, zoo):
    params = paddle_senet()  # SENet-154-vd names, narrow widths (conv widths 32 .. 256, 8 groups)
    params["fc6_weights"] = np.zeros((256, 10), np.float32)
    params["fc6_offset"] = np.zeros(10, np.float32)
    url = server.put("SENet154_vd_pretrained.pdparams", pickle.dumps(dict(params), protocol=2))
    zoo([dict(name="paddle_senet154_vd", kind="pretrained", source="PaddleDetection",
              backbone_cfg={"type": "SENet", "depth": 152}, weights=url)])
    net = SENet(depth=152, groups=8, base_width=4, base_channels=8, stem_channels=16,
                init_cfg=dict(type="Pretrained", checkpoint="SENet154_vd_pretrained"))
    net.init_weights()
    assert torch.equal(net.layer2[3].conv2.weight, torch.from_numpy(params["conv5_4_x2_weights"]))
    assert torch.equal(net.layer4[2].se.excitation.weight, torch.from_numpy(params["fc7_3_exc_weights"].T.copy()))
    assert torch.equal(net.stem[4].running_mean, torch.from_numpy(params["conv1_2_bn_mean"]))
