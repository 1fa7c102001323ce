"""The model-zoo index: every seed row is there with the seed's numbers, and statuses are computed."""
import re
from collections import Counter

import pytest

from detzoo.data.norm_presets import NORM_PRESETS
from detzoo.errors import ConfigError
from detzoo.zoo.index import (filter_entries, find_entries, get_entry, load_index, read_metafile,
                              sha256_prefix_from_name)
from shared_paths import SHARED

SEEDS = SHARED / "seeds"
MMDET_PAGE = SEEDS / "000_a079dfa66a88a006.txt"
PADDLE_PAGE = SEEDS / "004_562cbe3996dcda6c.txt"

# Rows of the two seed pages, counted by hand:
#  MMDetection page: 47 method links in "Baselines" (Cascade R-CNN and Cascade Mask R-CNN share
#    one -> 48 rows); 3 "Other datasets" (VOC, Cityscapes, WIDER FACE); 4 "Pre-trained Models"
#    (Faster / Mask R-CNN with R-50 and RegNetX-3.2G, multi-scale 3x); 1 training-speed
#    benchmark model; 7 ImageNet backbone files (6 table rows, RegNetX has two links) -> 63.
#  PaddleDetection page: Faster & Mask R-CNN 25, YOLOv3 COCO 9, YOLOv3 VOC 9, RetinaNet 2,
#    SSD 1, and the ResNet50_cos ImageNet weights 1 -> 47.
SEED_TABLE_ROWS = {
    "mmdet/baselines": 48, "mmdet/other-datasets": 3, "mmdet/pretrained-models": 4,
    "mmdet/speed-benchmark": 1, "mmdet/pretrained-backbones": 7,
    "paddle/faster-mask-rcnn": 25, "paddle/yolov3-coco": 9, "paddle/yolov3-voc": 9,
    "paddle/retinanet": 2, "paddle/ssd-voc": 1, "paddle/imagenet-pretrained": 1,
}
SEED_ROWS = 110
assert sum(SEED_TABLE_ROWS.values()) == SEED_ROWS

needs_seeds = pytest.mark.skipif(not PADDLE_PAGE.is_file(), reason="seed pages not available")


@pytest.fixture(scope="module")
def index():
    return load_index()


def test_seed_row_counts(index):
    counts = Counter(e.get("seed_table") for e in index if e.get("seed_table"))
    assert dict(counts) == SEED_TABLE_ROWS
    assert len(index) >= SEED_ROWS
    assert len({e.name for e in index}) == len(index)


def _paddle_seed_rows():
    """(section, cells) of every table row of the Paddle page that links a checkpoint."""
    section, rows = None, []
    for line in PADDLE_PAGE.read_text(encoding="utf-8").splitlines():
        if line.startswith("### "):
            section = line[4:].strip()
        elif line.startswith("|") and "bcebos.com/object_detection/" in line:
            cells = [c.strip() for c in line.strip().strip("|").split("|")]
            cells[-1] = re.search(r"\((https://[^)]+)\)", cells[-1]).group(1)
            rows.append((section, cells))
    return rows


@needs_seeds
def test_every_paddle_seed_row_is_indexed_with_its_numbers(index):
    tables = {"Faster & Mask R-CNN": "paddle/faster-mask-rcnn", "Yolo v3": "paddle/yolov3-coco",
              "Yolo v3 基于Pasacl VOC数据集": "paddle/yolov3-voc", "RetinaNet": "paddle/retinanet",
              "SSD on Pascal VOC": "paddle/ssd-voc"}
    methods = {"Faster": "Faster R-CNN", "Mask": "Mask R-CNN", "Cascade Faster": "Cascade R-CNN"}
    seed_rows = _paddle_seed_rows()
    assert len(seed_rows) == 46
    matched = set()
    for section, cells in seed_rows:
        url = cells[-1]
        if section == "Faster & Mask R-CNN":
            backbone, kind, per_gpu, schedule, box, mask = cells[:6]
            size = None
        elif section == "RetinaNet":
            (backbone, per_gpu, schedule, box), kind, mask, size = cells[:4], None, "-", None
        else:
            (backbone, size, per_gpu, schedule, box), kind, mask = cells[:5], None, "-"
        rows = [e for e in index if e.weights == url and (size is None or e.get("test_size") == int(size))]
        assert len(rows) == 1, (section, cells)
        row = rows[0]
        matched.add(row.name)
        assert row.source == "PaddleDetection" and row.get("seed_table") == tables[section]
        assert row.get("backbone") == backbone
        assert row.get("images_per_gpu") == int(per_gpu)
        assert row.get("schedule") == schedule
        assert row.box_ap == float(box)
        assert row.mask_ap == (None if mask == "-" else float(mask))
        if kind:
            assert row.method == methods[kind]
    assert len(matched) == 46


@needs_seeds
def test_every_mmdet_link_is_indexed(index):
    text = MMDET_PAGE.read_text(encoding="utf-8")
    folders = set(re.findall(r"mmdetection/blob/master/configs/([^)/]+)\)", text))
    assert len(folders) >= 50  # 47 methods + 3 datasets (+ links the pre-trained section repeats)
    seeded = {e.folder for e in index if (e.get("seed_table") or "").startswith("mmdet/")}
    assert folders <= seeded, folders - seeded
    files = set(re.findall(r"\((https://(?:download\.pytorch\.org|download\.openmmlab\.com|"
                           r"dl\.fbaipublicfiles\.com)/[^)]+)\)", text))
    recorded = {e.get(key) for e in index for key in ("weights", "original", "training_log")}
    assert files and files <= recorded, files - recorded


def test_sha256_prefix_from_names():
    assert sha256_prefix_from_name("faster_rcnn_r50_fpn_1x_coco_20200130-047c8118.pth") == "047c8118"
    assert sha256_prefix_from_name("mask_rcnn_r50_caffe_fpn_1x_coco_bbox_mAP-0.38__segm_mAP-0.344_"
                                   "20200504_231812-0ebd1859.pth") == "0ebd1859"
    assert sha256_prefix_from_name("resnet50-19c8e357.pth") == "19c8e357"
    assert sha256_prefix_from_name("faster_rcnn_r50_bbox_mAP-0.378.pth") is None
    assert sha256_prefix_from_name("yolov3_darknet.tar") is None
    assert sha256_prefix_from_name("x-ABCDEF12.pth") is None  # the convention is lowercase hex


def test_pretrained_norms_match_the_presets(index):
    rows = [e for e in index if e.get("img_norm_cfg")]
    assert len(rows) == 7
    for e in rows:
        assert e.get("img_norm_cfg") == NORM_PRESETS[e.get("img_norm")], e.name


def test_lookup_by_name_alias_and_checkpoint_stem(index):
    assert [e.name for e in find_entries("faster_rcnn_r50_vd_fpn_2x", index)] == ["faster_rcnn_r50_vd_fpn_2x"]
    voc = find_entries("yolov3_darknet_voc", index)
    assert sorted(e.get("test_size") for e in voc) == [320, 416, 608]
    assert sorted(e.box_ap for e in voc) == [82.2, 83.5, 83.6]
    assert [e.name for e in find_entries("resnet50-19c8e357", index)] == ["torchvision_resnet50"]
    assert [e.name for e in find_entries("torchvision://resnet50", index)] == ["torchvision_resnet50"]
    assert find_entries("faster_rcnn_r50_fpn_1x_coco_20200130-047c8118.pth", index)[0].name == \
        "faster_rcnn_r50_fpn_1x_coco"
    with pytest.raises(ConfigError, match="faster_rcnn_r50_fpn_1x_coco"):
        find_entries("faster_rcnn_r50_fpn_1x_cocoo", index)
    with pytest.raises(ConfigError, match="3 entries"):
        get_entry("yolov3_darknet_voc", index)


def test_filters_against_brute_force(index):
    order = ["planned", "buildable", "loadable"]
    got = filter_entries(index, min_ap=40, status="buildable")
    want = [e for e in index if e.box_ap is not None and e.box_ap >= 40
            and order.index(e.status) >= 1]
    assert got == want
    exact = filter_entries(index, status="buildable", exact_status=True)
    assert exact == [e for e in index if e.status == "buildable"]
    faster = filter_entries(index, method="faster-rcnn")
    assert faster and all(e.method == "Faster R-CNN" or e.folder == "faster_rcnn" for e in faster)
    # 46 detector rows + 10 ImageNet archives (configs/imagenet_pretrained: the seed page's
    # ResNet50_cos and the 9 others the Paddle configs' backbone init_cfg name)
    assert len(filter_entries(index, source="PaddleDetection")) == 56


# --- metafile validation and dynamic status on a scratch configs/ tree -------------------------
ROW = """
  - name: {name}
    source: MMDetection
    config: {config}
    box_ap: 37.4
    weights: https://download.openmmlab.com/x/{name}-047c8118.pth
    sha256_prefix: {sha}
"""


def write_metafile(root, folder, rows, method="Test Method"):
    (root / folder).mkdir(parents=True, exist_ok=True)
    path = root / folder / "metafile.yml"
    path.write_text(f"method: {method}\nmodels:\n" + "".join(rows), encoding="utf-8")
    return path


def test_status_follows_the_config_files(tmp_path):
    write_metafile(tmp_path, "m", [ROW.format(name="a", config="m/a.py", sha="047c8118"),
                                   ROW.format(name="b", config="null", sha="047c8118")])
    paddle = ("  - {name: p, source: PaddleDetection, config: m/p.py, "
              "weights: 'https://paddlemodels.bj.bcebos.com/object_detection/p.tar'}\n")
    write_metafile(tmp_path, "n", [paddle])
    status = {e.name: e.status for e in load_index(tmp_path)}
    assert status == {"a": "planned", "b": "planned", "p": "planned"}
    (tmp_path / "m" / "a.py").write_text("model = None\n")
    (tmp_path / "m" / "p.py").write_text("model = None\n")
    status = {e.name: e.status for e in load_index(tmp_path)}
    assert status == {"a": "loadable", "b": "planned", "p": "loadable"}  # Paddle: through the converter


@pytest.mark.parametrize("row, fragment", [
    (ROW.format(name="a", config="m/a.py", sha="deadbeef"), "carries '047c8118'"),
    (ROW.format(name="a", config="m/a.py", sha="047c8118") + "    box_aq: 1\n", "did you mean 'box_ap'"),
    ("  - {name: a, source: Detectron}\n", "source 'Detectron'"),
    ("  - {name: a, source: MMDetection, box_ap: high}\n", "field 'box_ap'"),
    ("  - {name: a, source: MMDetection, config: ../a.py}\n", "relative to configs/"),
    ("  - {name: a, source: MMDetection, weights: 'https://h/a-10127928.pth', sha256_prefix: 10127928}\n",
     "quote an all-digit"),
])
def test_bad_metafiles_name_file_and_entry(tmp_path, row, fragment):
    path = write_metafile(tmp_path, "m", [row])
    with pytest.raises(ConfigError) as err:
        load_index(tmp_path)
    message = str(err.value)
    assert str(path) in message and "entry a" in message and fragment in message


def test_duplicate_names_across_metafiles(tmp_path):
    write_metafile(tmp_path, "m1", [ROW.format(name="a", config="m1/a.py", sha="047c8118")])
    second = write_metafile(tmp_path, "m2", [ROW.format(name="a", config="m2/a.py", sha="047c8118")])
    with pytest.raises(ConfigError, match=f"{second}, entry a: the name is already used"):
        load_index(tmp_path)


def test_every_metafile_parses_on_its_own(index):
    paths = sorted({e.metafile for e in index})
    assert len(paths) >= 51  # 50 linked folders + the ImageNet backbones
    for path in paths:
        info, rows = read_metafile(path)
        assert rows and all(r["method"] for r in rows), path
