"""torchvision's COCO checkpoints in the zoo: the index rows (checked against torchvision's own
source), `detzoo zoo list/show`, and init_detector(NAME, checkpoint="zoo") downloading a
torchvision-layout file from a 127.0.0.1 server, verifying its sha256 prefix, converting it once
(cached as <stem>.detzoo.pth) and loading it strictly."""
import hashlib
import json
import re
import shutil
from pathlib import Path

import pytest
import torch

from detzoo.cli.main import main
from detzoo.errors import CheckpointError
from detzoo.zoo.configs import configs_root
from detzoo.zoo.index import find_entries, load_index

LAYOUTS = Path("/work/shared/checkpoint-layouts/torchvision")
if not LAYOUTS.exists():
    LAYOUTS = Path(__file__).resolve().parents[2] / "tests" / "data" / "checkpoint-layouts" / "torchvision"

# torchvision/models/detection/{faster_rcnn,mask_rcnn,retinanet,fcos}.py: the COCO_V1 weights'
# url and "_metrics" "COCO-val2017" (box_map, mask_map), written out by hand
PUBLISHED = {
    "fasterrcnn_resnet50_fpn": ("fasterrcnn_resnet50_fpn_coco-258fb6c6.pth", 37.0, None),
    "maskrcnn_resnet50_fpn": ("maskrcnn_resnet50_fpn_coco-bf2d0c1e.pth", 37.9, 34.6),
    "retinanet_resnet50_fpn": ("retinanet_resnet50_fpn_coco-eeacb38b.pth", 36.4, None),
    "fcos_resnet50_fpn": ("fcos_resnet50_fpn_coco-99b0c9b7.pth", 39.2, None),
}
FRCNN_FILE = PUBLISHED["fasterrcnn_resnet50_fpn"][0]


def run_cli(capsys, *argv):
    code = main(list(argv))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_rows_are_torchvisions_published_checkpoints():
    rows = [e for e in load_index() if e.source == "torchvision"]
    assert len(rows) == 4
    for builder, (file_name, box_ap, mask_ap) in PUBLISHED.items():
        stem = file_name.split("-")[0]
        (row,) = [e for e in rows if e.name == stem]
        assert row.weights == f"https://download.pytorch.org/models/{file_name}"
        assert row.sha256_prefix == file_name[-12:-4]
        assert (row.box_ap, row.mask_ap) == (box_ap, mask_ap)
        assert row.config == f"torchvision/{builder}.py" and row.config_path.is_file()
        assert row.get("aliases") == [builder]
        assert row.get("seed_table") is None  # beyond the seed pages: no seed-table counts change
        assert row.status == "loadable"  # converted on load
        # the builder name, the alias and the file stem all find the row
        for query in (builder, stem, file_name[:-4], file_name):
            assert [e.name for e in find_entries(query, rows)] == [stem], query


def test_cli_list_and_show(capsys):
    code, out, _ = run_cli(capsys, "zoo", "list", "--source", "torchvision")
    assert code == 0
    assert re.search(r"^4 entries \(0 planned, 0 buildable, 4 loadable\)$", out, re.M)
    code, out, _ = run_cli(capsys, "zoo", "show", "fasterrcnn_resnet50_fpn", "--json")
    (row,) = json.loads(out)
    assert code == 0 and row["name"] == "fasterrcnn_resnet50_fpn_coco" and row["checkpoint_file"] == FRCNN_FILE
    code, out, _ = run_cli(capsys, "zoo", "show", "fasterrcnn_resnet50_fpn")
    assert out.startswith("fasterrcnn_resnet50_fpn is an alias of fasterrcnn_resnet50_fpn_coco")


def test_the_real_rows_hash_refuses_other_bytes(zoo_home, file_server, monkeypatch):
    """The published row through a mirror: bytes that are not torchvision's file fail its prefix."""
    from detzoo.apis.inference import init_detector

    file_server.put(f"models/{FRCNN_FILE}", b"not the torchvision checkpoint" * 100)
    monkeypatch.setenv("DETZOO_ZOO_MIRROR", file_server.base)
    with pytest.raises(CheckpointError, match="does not match the expected 258fb6c6"):
        init_detector("fasterrcnn_resnet50_fpn_coco", checkpoint="zoo")
    assert [p.name for p in (zoo_home / "checkpoints").iterdir()] == []  # nothing cached or converted


def synth_torchvision_state(arch: str) -> dict:
    """A state dict with torchvision's exact keys and shapes (recorded from torchvision 0.28)."""
    layout = json.loads((LAYOUTS / f"{arch}.json").read_text())["layout"]
    gen = torch.Generator().manual_seed(5)
    state = {key: torch.randn(shape, generator=gen) * 0.05 for key, shape in layout}
    for key in state:
        if key.endswith("running_var"):
            state[key] = state[key].abs() + 1.0
    return state


@pytest.fixture
def scratch_torchvision_zoo(tmp_path, monkeypatch, file_server, zoo_home):
    """A configs/ tree with the torchvision Faster R-CNN config and one row whose weights (a
    synthesised torchvision file, named with its own sha256 prefix as torch.hub names files) the
    test server publishes at the mirrored download.pytorch.org path."""
    root = tmp_path / "configs"
    (root / "torchvision").mkdir(parents=True)
    shutil.copy(configs_root() / "torchvision" / "fasterrcnn_resnet50_fpn.py", root / "torchvision")
    state = synth_torchvision_state("fasterrcnn_resnet50_fpn")
    blob = tmp_path / "blob.pth"
    torch.save(state, blob)
    data = blob.read_bytes()
    prefix = hashlib.sha256(data).hexdigest()[:8]
    name = f"fasterrcnn_resnet50_fpn_coco-{prefix}.pth"
    file_server.put(f"models/{name}", data)
    (root / "torchvision" / "metafile.yml").write_text(
        "method: Faster R-CNN\nmodels:\n"
        "  - name: fasterrcnn_resnet50_fpn_coco\n    source: torchvision\n"
        "    config: torchvision/fasterrcnn_resnet50_fpn.py\n"
        "    aliases: [fasterrcnn_resnet50_fpn]\n"
        f"    weights: https://download.pytorch.org/models/{name}\n"
        f"    sha256_prefix: '{prefix}'\n", encoding="utf-8")
    monkeypatch.setenv("DETZOO_CONFIGS", str(root))
    monkeypatch.setenv("DETZOO_ZOO_MIRROR", file_server.base)
    return state, zoo_home / "checkpoints" / name


def _fingerprints(tensors):
    """(shape, sum, sum of squares) of every tensor, sorted: equal iff the same values arrived
    (up to a renaming), independent of the converter's key mapping."""
    return sorted((tuple(t.shape), round(float(t.double().sum()), 6), round(float(t.double().square().sum()), 6))
                  for t in tensors)


def test_init_detector_downloads_converts_once_and_loads_strictly(scratch_torchvision_zoo, file_server,
                                                                    monkeypatch):
    from detzoo.apis.inference import init_detector
    from detzoo.models.torchvision_compat import TORCHVISION_COCO_CATEGORIES
    import detzoo.zoo.converters as converters

    state, cached = scratch_torchvision_zoo
    model = init_detector("fasterrcnn_resnet50_fpn_coco", checkpoint="zoo")
    converted = cached.with_name(cached.name[:-len(".pth")] + ".detzoo.pth")
    assert cached.is_file() and converted.is_file()
    assert sorted(p.name for p in cached.parent.iterdir()) == sorted([cached.name, converted.name])  # no .part/.tmp
    # every value of the torchvision file is in the model, and nothing else (strict load)
    assert _fingerprints(model.state_dict().values()) == _fingerprints(state.values())
    loaded = model.state_dict()
    for tv_key, dz_key in {"backbone.body.layer3.5.conv2.weight": "backbone.layer3.5.conv2.weight",
                           "backbone.fpn.inner_blocks.2.0.weight": "neck.lateral_convs.2.conv.weight",
                           "rpn.head.bbox_pred.bias": "rpn_head.rpn_reg.bias",
                           "roi_heads.box_predictor.cls_score.weight": "roi_head.bbox_head.fc_cls.weight"}.items():
        assert torch.equal(loaded[dz_key], state[tv_key]), tv_key
    assert model.class_names == TORCHVISION_COCO_CATEGORIES and len(model.class_names) == 91
    assert len(file_server.requests) == 1

    stamp = converted.stat().st_mtime_ns

    def no_conversion(*args, **kwargs):
        raise AssertionError("converted again although the cached conversion is current")

    monkeypatch.setattr(converters, "convert_file", no_conversion)
    again = init_detector("configs/torchvision/fasterrcnn_resnet50_fpn.py", checkpoint="zoo")  # by alias
    assert len(file_server.requests) == 1  # from the cache: no new request
    assert converted.stat().st_mtime_ns == stamp
    for key, value in again.state_dict().items():
        assert torch.equal(value, loaded[key]), key
