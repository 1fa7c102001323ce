"""ONNX export + ONNX Runtime inference against the PyTorch model.

Reference: the PyTorch detector itself (``inference_detector`` on the same image), which never
touches ONNX. Models have random weights whose output layers are re-drawn with a larger spread
(seeded), so that scores are distinct and a score threshold of 0 keeps many detections: with the
default initialisation every RetinaNet score is 0.0100 and the kept set is decided by float
noise. Inputs are made small (test pipeline scale 320) so export and inference stay fast.
"""
import builtins
import json

import cv2
import numpy as np
import pytest
import torch

from shared_paths import DEMO_JPG

pytest.importorskip("onnxruntime")
pytest.importorskip("onnxscript")

from detzoo.apis.inference import inference_detector, init_detector  # noqa: E402
from detzoo.config import load_config  # noqa: E402
from detzoo.errors import ConfigError, DataError, DetzooError  # noqa: E402
from detzoo.export import OrtDetector, export_onnx, load_sidecar, ort_session  # noqa: E402

SIZE = 320
# ResNet-18 instead of -50 in the R-CNN / RetinaNet configs halves the export time; the graphs
# hold the same kinds of layers (the full R50 configs are exported by the slow test below)
R18 = {"model.backbone.depth": 18, "model.neck.in_channels": [64, 128, 256, 512]}
# (config, dotted override that keeps every detection above 0, output layers to spread, their
# weight std: Darknet-53's random-init features are ~1e3, so its logits need much smaller weights)
MODELS = {
    "retinanet": ("retinanet_r50_fpn_1x_coco", {"model.test_cfg.score_thr": 0.0, **R18}, ("retina_cls", "retina_reg"),
                  0.05),
    "yolov3": ("yolov3_d53_mstrain-608_273e_coco", {"model.test_cfg.score_thr": 0.0, "model.test_cfg.conf_thr": 0.0},
               ("convs_pred",), 3e-5),
    "faster_rcnn": ("faster_rcnn_r50_fpn_1x_coco", {"model.test_cfg.rcnn.score_thr": 0.0, **R18},
                    ("rpn_cls", "rpn_reg", "fc_cls", "fc_reg"), 0.05),
}


def small_config(name, options):
    cfg = load_config(name)
    cfg.merge_from_dotted(options)
    cfg["data"]["test"]["pipeline"][1]["img_scale"] = (SIZE, SIZE)  # MultiScaleFlipAug
    return cfg


def spread_model(cfg, layers, std):
    torch.manual_seed(0)
    model = init_detector(cfg, None)
    gen = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for name, param in model.named_parameters():
            if any(f".{layer}." in f".{name}" for layer in layers):
                param.copy_(torch.randn(param.shape, generator=gen) * (std if param.ndim > 1 else 0.5))
    return model


# (model, dynamic H/W, the config's own ResNet-50): one static and one dynamic graph in the quick
# run; the other combinations, and the full-depth backbones, in the slow one
CASES = [("retinanet", False, False), ("yolov3", False, True), ("faster_rcnn", True, False),
         pytest.param(("retinanet", True, True), marks=pytest.mark.slow),
         pytest.param(("yolov3", True, True), marks=pytest.mark.slow),
         pytest.param(("faster_rcnn", False, True), marks=pytest.mark.slow)]


@pytest.fixture(scope="module", params=CASES, ids=lambda c: f"{c[0]}-{'dynamic' if c[1] else 'static'}"
                + ("-full" if c[2] and c[0] != "yolov3" else ""))
def exported(request, tmp_path_factory):
    key, dynamic, full = request.param
    name, options, layers, std = MODELS[key]
    if full:
        options = {k: v for k, v in options.items() if k not in R18}
    cfg = small_config(name, options)
    model = spread_model(cfg, layers, std)
    out = tmp_path_factory.mktemp(key) / f"{key}.onnx"
    meta = export_onnx(name, "none", str(out), shape=(SIZE, SIZE), dynamic=dynamic, cfg_options=options, model=model)
    return key, cfg, model, out, meta


def match_detections(ref, got):
    """Greedy one-to-one match by order: both are sorted by score, equal scores tie-broken alike
    only up to float noise, so each reference detection is paired with an unused detection of the
    same label whose score is within 1e-4 and box within 1e-3 relative."""
    used = np.zeros(len(got), bool)
    scale = np.maximum(np.abs(ref.boxes.numpy()), 1.0)
    for i in range(len(ref)):
        close = ((np.abs(got.scores.numpy() - float(ref.scores[i])) <= 1e-4)
                 & (got.labels.numpy() == int(ref.labels[i]))
                 & (np.abs(got.boxes.numpy() - ref.boxes[i].numpy()) <= 1e-3 * scale[i]).all(1) & ~used)
        if not close.any():
            return i
        used[np.flatnonzero(close)[0]] = True
    return None


def test_ort_matches_pytorch(exported):
    key, cfg, model, out, meta = exported
    image = str(DEMO_JPG)  # 640x427: a 320x224 network input, which the dynamic graphs take as is
    if not meta["input"]["dynamic"]:  # the static graph takes 320x320 only: a square crop fills it
        image = cv2.imread(str(DEMO_JPG))[:, :427].copy()
    ref = inference_detector(model, image)
    got = OrtDetector(str(out), cfg, threads=1)(image)
    assert len(ref) >= 50, f"{key}: the test needs many detections, PyTorch kept {len(ref)}"
    assert len(got) == len(ref)
    # distinct scores (else the test would be deciding ties): the spread worked
    assert torch.unique(ref.scores).numel() > 0.9 * len(ref)
    assert match_detections(ref, got) is None, f"{key}: detection {match_detections(ref, got)} has no ORT match"
    # in order, the scores agree too; labels and boxes may only trade places between detections
    # whose scores differ by float noise (~1e-7), which the one-to-one match above allows
    torch.testing.assert_close(got.scores, ref.scores, rtol=0, atol=1e-4)
    assert sorted(got.labels.tolist()) == sorted(ref.labels.tolist())


def test_sidecar_describes_graphs(exported):
    key, cfg, model, out, meta = exported
    side = load_sidecar(str(out))
    assert side == json.loads(json.dumps(meta))
    assert side["class_names"] == list(model.class_names) and len(side["class_names"]) == 80
    assert side["input"]["normalisation"]["mean"] == list(map(float, cfg["img_norm_cfg"]["mean"]))
    session = ort_session(str(out), threads=1)
    assert [o.name for o in session.get_outputs()] == side["graphs"]["dense"]["outputs"]
    assert ("bbox_head" in side["graphs"]) == (key == "faster_rcnn")


# -- the command line, on the quickstart checkpoint ------------------------------------------------
QUICKSTART = "faster_rcnn_r18_fpn_quickstart"


@pytest.fixture(scope="module")
def quickstart_onnx(quickstart_checkpoint, tmp_path_factory):
    from detzoo.cli.main import main

    out = tmp_path_factory.mktemp("quick") / "quick.onnx"
    assert main(["export", QUICKSTART, str(quickstart_checkpoint), "--format", "onnx", "--out", str(out),
                 "--shape", "256", "320"]) == 0
    return out


def test_cli_infer_backends_agree(quickstart_onnx, quickstart_checkpoint, tmp_path):
    """`detzoo infer --backend onnxruntime` writes the same detections.json as the PyTorch backend."""
    from detzoo.cli.main import main

    common = [QUICKSTART, "--score-thr", "0", "--cfg-options", "model.test_cfg.rcnn.score_thr=0"]
    # a 320x256 picture is the network input as is (no resize, no padding): fits the static graph
    cv2.imwrite(str(tmp_path / "img.png"), cv2.resize(cv2.imread(str(DEMO_JPG)), (320, 256)))
    runs = {}
    for backend, weights in (("pytorch", quickstart_checkpoint), ("onnxruntime", quickstart_onnx)):
        out_dir = tmp_path / backend
        assert main(["infer", common[0], str(weights), str(tmp_path / "img.png"), "--out-dir", str(out_dir),
                     "--backend", backend, *common[1:]]) == 0
        runs[backend] = json.loads((out_dir / "detections.json").read_text())[0]["detections"]
        assert (out_dir / "img.png").is_file()
    ref, got = runs["pytorch"], runs["onnxruntime"]
    assert len(ref) >= 20 and len(got) == len(ref)
    assert {d["label"] for d in ref} <= {"circle", "square", "triangle", "star"}
    key = lambda d: (d["label"], d["bbox"])  # noqa: E731 (order may differ between float-noise ties)
    for a, b in zip(sorted(ref, key=key), sorted(got, key=key)):
        assert a["label"] == b["label"]
        assert np.allclose(a["bbox"], b["bbox"], rtol=1e-3, atol=0.011)  # json rounds to 0.01
        assert abs(a["score"] - b["score"]) <= 1e-4 + 1e-4  # and scores to 1e-4
    drawn = [cv2.imread(str(tmp_path / b / "img.png")).astype(int) for b in ("pytorch", "onnxruntime")]
    assert np.abs(drawn[0] - drawn[1]).mean() < 0.5


def test_static_shape_pads_smaller_input_and_rejects_larger(quickstart_onnx):
    detector = OrtDetector(str(quickstart_onnx), threads=1)
    small = np.full((100, 100, 3), 127, np.uint8)  # network input 256x256: padded to 256x320
    assert detector(small).boxes.shape[1] == 4
    config = load_config(QUICKSTART)
    config["data"]["test"]["pipeline"][1]["img_scale"] = (640, 512)
    bigger = OrtDetector(str(quickstart_onnx), config, threads=1)
    with pytest.raises(DataError, match=r"448x640 .* larger than the exported static shape 256x320"):
        bigger(cv2.imread(str(DEMO_JPG)))


def test_config_that_does_not_fit_the_graph_is_reported(quickstart_onnx):
    with pytest.raises(ConfigError, match="80 classes but .*quick.onnx was exported with 4"):
        OrtDetector(str(quickstart_onnx), QUICKSTART, cfg_options={"model.roi_head.bbox_head.num_classes": 80})
    with pytest.raises(ConfigError, match="builds a RetinaNet .* but .*quick.onnx holds a FasterRCNN"):
        OrtDetector(str(quickstart_onnx), "retinanet_r18_fpn_quickstart")


def test_missing_sidecar_is_reported(quickstart_onnx, tmp_path):
    lone = tmp_path / "lone.onnx"
    lone.write_bytes(quickstart_onnx.read_bytes())
    with pytest.raises(DataError, match="lone.onnx.json is missing"):
        OrtDetector(str(lone))


def test_missing_onnxruntime_is_reported(quickstart_onnx, monkeypatch):
    real_import = builtins.__import__

    def no_onnxruntime(name, *args, **kwargs):
        if name == "onnxruntime" or name.startswith("onnxruntime."):
            raise ImportError("No module named 'onnxruntime'")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_onnxruntime)
    with pytest.raises(DetzooError, match="needs the 'onnxruntime' package.*pip install onnxruntime"):
        OrtDetector(str(quickstart_onnx))
    with pytest.raises(DetzooError, match="pip install onnxruntime"):
        ort_session(str(quickstart_onnx))


def test_unsupported_format_model_and_shape(tmp_path, capsys):
    from detzoo.cli.main import main

    with pytest.raises(ConfigError, match="export format 'tflite' is not supported"):
        export_onnx(QUICKSTART, "none", str(tmp_path / "m.onnx"), fmt="tflite")
    with pytest.raises(ConfigError, match="MaskRCNN .*with a mask head.* cannot be exported"):
        export_onnx("mask_rcnn_r18_fpn_quickstart", "none", str(tmp_path / "m.onnx"))
    with pytest.raises(ConfigError, match="--shape 250 320: .*multiples of .* size_divisor \\(32\\)"):
        export_onnx(QUICKSTART, "none", str(tmp_path / "m.onnx"), shape=(250, 320))
    # the CLI turns them into one line and exit status 2, and writes nothing
    assert main(["export", QUICKSTART, "none", "--format", "tflite", "--out", str(tmp_path / "m.onnx")]) == 2
    assert "error: export format 'tflite' is not supported" in capsys.readouterr().err
    assert list(tmp_path.iterdir()) == []


def test_failed_export_keeps_previous_file(tmp_path, monkeypatch):
    """The graph is written to a temp file and renamed: a crash mid-write leaves the old model."""
    out = tmp_path / "m.onnx"
    out.write_bytes(b"previous model")

    def crash(module, args, path, **kwargs):
        with open(path, "wb") as f:
            f.write(b"half a graph")
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(torch.onnx, "export", crash)
    with pytest.raises(OSError, match="No space left"):
        export_onnx(QUICKSTART, "none", str(out), shape=(256, 320))
    assert out.read_bytes() == b"previous model"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.onnx"]


def test_c4_faster_rcnn_is_refused_not_exported_wrong(tmp_path):
    """The box-head graph pools RoIs straight into the box head: a C4 model's res5 shared head
    would be skipped, so such models must be refused."""
    from detzoo.errors import ConfigError
    from detzoo.export import export_onnx

    with pytest.raises(ConfigError, match="shared res5 head"):
        export_onnx("faster_rcnn_r50_caffe_c4_1x_coco", "none", str(tmp_path / "c4.onnx"), shape=(320, 320))
    assert not list(tmp_path.iterdir())
