"""`detzoo zoo list / show / download` and init_detector(NAME, checkpoint="zoo")."""
import hashlib
import json
import re
import shutil

import pytest
import torch

from detzoo.cli.main import main
from detzoo.errors import CheckpointError, DetzooError
from detzoo.zoo.configs import configs_root
from detzoo.zoo.index import load_index


def run_cli(capsys, *argv):
    code = main(list(argv))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_list_shows_every_row_with_its_status(capsys):
    index = load_index()
    code, out, _ = run_cli(capsys, "zoo", "list")
    assert code == 0
    lines = out.splitlines()
    assert lines[0].split() == ["name", "method", "backbone", "schedule", "box", "AP", "mask", "AP", "status"]
    body = {line.split()[0]: line for line in lines[2:2 + len(index)]}
    assert set(body) == {e.name for e in index}
    for e in index:
        assert body[e.name].rstrip().endswith(e.status), e.name
    assert f"{len(index)} entries" in out


def test_list_filters_and_json(capsys):
    code, out, _ = run_cli(capsys, "zoo", "list", "--method", "yolo", "--min-ap", "80", "--json")
    rows = json.loads(out)
    assert code == 0
    # the Paddle YOLOv3 VOC rows at or above 80 mAP: 83.5 83.6 82.2 (DarkNet), 82.6 81.9 80.1 (R34)
    assert sorted(r["box_ap"] for r in rows) == [80.1, 81.9, 82.2, 82.6, 83.5, 83.6]
    # Paddle rows load (through the converter) once a config reproduces their architecture
    assert all(r["status"] == "loadable" and r["source"] == "PaddleDetection" for r in rows)
    code, out, _ = run_cli(capsys, "zoo", "list", "--source", "PaddleDetection")
    counts = re.search(r"(\d+) entries \((\d+) planned, (\d+) buildable, (\d+) loadable\)", out).groups()
    # 46 detector rows, all loadable (the C4 rows faster_rcnn_r50_1x/2x, r50_vd_1x, r101_1x,
    # mask_rcnn_r50_1x/2x load: tests/zoo/test_paddle_c4.py), plus the 10 ImageNet archives the
    # Paddle configs' init_cfg name (paddle_resnet50_cos from the seed page, 9 more): loadable too,
    # converted when an init_cfg names them (tests/models/test_pretrained_by_name.py)
    assert code == 0 and int(counts[0]) == 56 and int(counts[1]) == 0 and int(counts[2]) == 0 \
        and int(counts[3]) == 56


def test_show_by_checkpoint_stem(capsys):
    code, out, _ = run_cli(capsys, "zoo", "show", "yolov3_darknet_voc")
    assert code == 0
    assert out.startswith("yolov3_darknet_voc: 3 entries use yolov3_darknet_voc.tar")
    for name in ("yolov3_darknet_voc_608", "yolov3_darknet_voc_416", "yolov3_darknet_voc_320"):
        assert any(line.split() == ["name", name] for line in out.splitlines()), name
    code, out, _ = run_cli(capsys, "zoo", "show", "resnet50-19c8e357")
    assert code == 0 and "torchvision_resnet50" in out and "torchvision://resnet50" in out


def test_show_unknown_name_suggests_and_exits_2(capsys):
    code, out, err = run_cli(capsys, "zoo", "show", "faster_rcnn_r50_vd_fpn_2")
    assert code == 2 and out == ""
    lines = [l for l in err.splitlines() if l.strip()]
    assert len(lines) == 1 and "faster_rcnn_r50_vd_fpn_2x" in lines[0] and "Traceback" not in err


def test_download_through_mirror_is_cached(capsys, file_server, zoo_home, monkeypatch):
    data = b"paddle parameters" * 1000
    file_server.put("object_detection/yolov3_darknet_voc.tar", data)
    monkeypatch.setenv("DETZOO_ZOO_MIRROR", file_server.base)
    code, out, _ = run_cli(capsys, "zoo", "download", "yolov3_darknet_voc", "--no-progress")
    target = zoo_home / "checkpoints" / "yolov3_darknet_voc.tar"
    assert code == 0 and out.strip() == str(target)
    assert target.read_bytes() == data
    code, out, _ = run_cli(capsys, "zoo", "download", "yolov3_darknet_voc_320", "--no-progress")
    assert code == 0 and out.strip() == str(target)
    assert len(file_server.requests) == 1  # the second one came from the cache
    code, out, _ = run_cli(capsys, "zoo", "show", "yolov3_darknet_voc_608")
    assert f"cached           {target}" in out


def test_download_with_wrong_hash_is_refused(capsys, file_server, zoo_home, tmp_path):
    # served bytes are not the published file, so they cannot match its sha256 prefix
    file_server.put("mmdetection/v2.0/faster_rcnn/faster_rcnn_r50_fpn_1x_coco/"
                    "faster_rcnn_r50_fpn_1x_coco_20200130-047c8118.pth", b"not the checkpoint")
    dest = tmp_path / "dl"
    code, _, err = run_cli(capsys, "zoo", "download", "faster_rcnn_r50_fpn_1x_coco", "--dir", str(dest),
                           "--mirror", file_server.base, "--no-progress")
    assert code == 2 and "047c8118" in err and len(err.strip().splitlines()) == 1
    assert list(dest.iterdir()) == []
    assert not (zoo_home / "checkpoints").exists()


def test_download_of_an_entry_without_weights(capsys, zoo_home):
    code, _, err = run_cli(capsys, "zoo", "download", "fast_rcnn_r50_fpn_1x_coco")
    assert code == 2 and "no published checkpoint" in err


@pytest.fixture
def scratch_zoo(tmp_path, monkeypatch, file_server, zoo_home):
    """A configs/ tree holding the quickstart config and one zoo row whose weights (random, saved
    under their real sha256 prefix) the test server publishes at a mirrored download.openmmlab.com
    path."""
    from detzoo.config import load_config
    from detzoo.models.builder import build_detector

    root = tmp_path / "configs"
    shutil.copytree(configs_root() / "_base_", root / "_base_")
    shutil.copytree(configs_root() / "quickstart", root / "quickstart", ignore=shutil.ignore_patterns("*.yml"))
    torch.manual_seed(3)
    model = build_detector(load_config(root / "quickstart" / "faster_rcnn_r18_fpn_quickstart.py")["model"])
    blob = tmp_path / "blob.pth"
    torch.save({"meta": {}, "state_dict": model.state_dict()}, blob)
    data = blob.read_bytes()
    name = f"quick-{hashlib.sha256(data).hexdigest()[:8]}.pth"
    file_server.put(f"mmdetection/test/{name}", data)
    (root / "testzoo").mkdir()
    (root / "testzoo" / "metafile.yml").write_text(
        "method: Faster R-CNN\nmodels:\n"
        "  - name: quick_zoo_test\n    source: MMDetection\n"
        "    config: quickstart/faster_rcnn_r18_fpn_quickstart.py\n"
        f"    weights: https://download.openmmlab.com/mmdetection/test/{name}\n"
        f"    sha256_prefix: '{name[6:14]}'\n"
        "  - name: paddle_zoo_test\n    source: PaddleDetection\n"
        "    config: quickstart/faster_rcnn_r18_fpn_quickstart.py\n"
        "    weights: https://paddlemodels.bj.bcebos.com/object_detection/x.tar\n", encoding="utf-8")
    monkeypatch.setenv("DETZOO_CONFIGS", str(root))
    monkeypatch.setenv("DETZOO_ZOO_MIRROR", file_server.base)
    return model.state_dict(), zoo_home / "checkpoints" / name


def test_init_detector_from_zoo(scratch_zoo, file_server):
    from detzoo.apis.inference import init_detector

    weights, cached = scratch_zoo
    model = init_detector("quick_zoo_test", checkpoint="zoo")
    assert cached.is_file()
    for key, value in model.state_dict().items():
        assert torch.equal(value, weights[key]), key
    assert model.class_names == ("circle", "square", "triangle", "star")
    init_detector("quick_zoo_test", checkpoint="zoo")
    assert len(file_server.requests) == 1  # the second init used the cache
    # a Paddle row is loadable through the converter (tests/zoo/test_paddle_single_stage.py); here
    # its archive is not served, so the download fails with the status
    with pytest.raises(DetzooError, match="HTTP 404"):
        init_detector("paddle_zoo_test", checkpoint="zoo")
