"""Export a detector's dense graph(s) to ONNX, with a sidecar JSON the runtime reads.

    from detzoo.export import export_onnx
    export_onnx("retinanet_r50_fpn_1x_coco", "none", "retinanet.onnx", shape=(800, 1216))

Files written (each to a temp file, then renamed): ``OUT`` (the dense graph), for two-stage
models ``OUT`` with ``.bbox_head.onnx`` in place of ``.onnx`` (the box head), and ``OUT.json``
(the sidecar, see :func:`sidecar_path`). Which steps are inside / outside the graphs is
described in detzoo/export/graphs.py and docs/export.md.

Exporter: ``torch.onnx.export(..., dynamo=True)`` (torch.export + onnxscript). The legacy
TorchScript exporter is deprecated in torch >= 2.9; the dynamo exporter traces the detzoo
backbones/necks/heads cleanly, including symbolic input heights and widths for ``dynamic``.
"""
from __future__ import annotations

import json
import logging
import os
import tempfile
import warnings
from typing import Optional, Sequence, Tuple

import torch

from detzoo.errors import CheckpointError, ConfigError
from detzoo.utils.fileio import default_file_mode
from .graphs import (SINGLE_STAGE, TWO_STAGE, BoxHeadGraph, SingleStageGraph, TwoStageDenseGraph,
                     detector_kind, dense_output_layout)

SUPPORTED_FORMATS = ("onnx",)
SIDECAR_FORMAT = "detzoo-onnx"
SIDECAR_VERSION = 1
DEFAULT_OPSET = 18


def sidecar_path(onnx_path: str) -> str:
    """``model.onnx`` -> ``model.onnx.json``."""
    return os.fspath(onnx_path) + ".json"


def box_head_path(onnx_path: str) -> str:
    """``model.onnx`` -> ``model.bbox_head.onnx`` (the second graph of a two-stage model)."""
    root, ext = os.path.splitext(os.fspath(onnx_path))
    return f"{root}.bbox_head{ext or '.onnx'}"


def _find_normalize(pipeline) -> dict:
    """mean / std / to_rgb and pad size_divisor of a test pipeline (searched through wrappers)."""
    found = {}

    def visit(step):
        if isinstance(step, (list, tuple)):
            for s in step:
                visit(s)
        elif isinstance(step, dict):
            step_type = step.get("type")
            type_name = getattr(step_type, "__name__", step_type)
            if type_name == "Normalize":
                found["normalisation"] = {k: (list(map(float, step[k])) if k != "to_rgb" else bool(step[k]))
                                          for k in ("mean", "std", "to_rgb") if k in step}
            elif type_name == "Pad":
                found["pad_size_divisor"] = step.get("size_divisor")
            visit(step.get("transforms", []))

    visit(list(pipeline))
    return found


def _atomic_export(module: torch.nn.Module, example: torch.Tensor, out_path: str, input_name: str,
                   output_names: Sequence[str], dynamic_shapes: Optional[dict], opset: int) -> None:
    """torch.onnx.export into a temp file beside ``out_path``, renamed over it when complete."""
    folder = os.path.dirname(os.path.abspath(out_path))
    os.makedirs(folder, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{os.path.basename(out_path)}.", suffix=".tmp", dir=folder)
    os.close(fd)
    try:
        # the exporter's notices (deprecations; "torchvision is not installed. Skipping
        # torchvision::nms", from probing its op registry: detzoo needs no torchvision op)
        registry_log = logging.getLogger("torch.onnx._internal.exporter._registration")
        level = registry_log.level
        registry_log.setLevel(logging.ERROR)
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                torch.onnx.export(module, (example,), tmp, dynamo=True, input_names=[input_name],
                                  output_names=list(output_names), dynamic_shapes=dynamic_shapes,
                                  opset_version=opset, external_data=False, verbose=False)
        finally:
            registry_log.setLevel(level)
        os.chmod(tmp, default_file_mode())  # mkstemp made it 0600; a model is meant to be shared
        os.replace(tmp, out_path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise


def _load_model(config, checkpoint: Optional[str], cfg_options: Optional[dict]):
    from detzoo.apis.inference import init_detector

    random_weights = checkpoint is None or str(checkpoint).lower() == "none"
    if not random_weights and not os.path.isfile(checkpoint) and checkpoint != "zoo":
        raise CheckpointError(f"checkpoint {checkpoint} does not exist (use 'none' for random weights)")
    # random weights are drawn from seed 0 (the global RNG is left as it was): two exports of the
    # same config are identical, and equal a model built after torch.manual_seed(0)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        model = init_detector(config, None if random_weights else checkpoint, device="cpu", cfg_options=cfg_options)
    return model, random_weights


def export_onnx(config, checkpoint: Optional[str], out_path: str, shape: Tuple[int, int] = (800, 1216),
                dynamic: bool = False, fmt: str = "onnx", cfg_options: Optional[dict] = None,
                opset: int = DEFAULT_OPSET, model: Optional[torch.nn.Module] = None) -> dict:
    """Export ``config`` (path or zoo name) with ``checkpoint`` (None / "none": random weights,
    "zoo": the published weights) to ``out_path``; returns the sidecar dict (also written).

    shape: (H, W) of the network input (after resize and padding). ``dynamic``: H and W are
    symbolic (multiples of the pipeline's pad divisor); otherwise the graph accepts exactly
    ``shape`` and the runtime pads smaller inputs up to it. Batch size is 1.
    ``model``: an already-built detector to export instead of building one from the config.
    """
    if fmt not in SUPPORTED_FORMATS:
        raise ConfigError(f"export format '{fmt}' is not supported (supported: {', '.join(SUPPORTED_FORMATS)})")
    if not str(out_path).endswith(".onnx"):
        raise ConfigError(f"--out {out_path}: the output file name must end with .onnx")
    height, width = (int(v) for v in shape)
    if model is None:
        model, random_weights = _load_model(config, checkpoint, cfg_options)
    else:
        random_weights = checkpoint is None or str(checkpoint).lower() == "none"
    model = model.cpu().float().eval()
    kind = detector_kind(model, where=str(config))
    pipeline_info = _find_normalize(model.cfg["data"]["test"]["pipeline"]) if getattr(model, "cfg", None) else {}
    divisor = int(pipeline_info.get("pad_size_divisor") or 32)
    if height <= 0 or width <= 0 or height % divisor or width % divisor:
        raise ConfigError(f"--shape {height} {width}: both must be positive multiples of the test pipeline's pad "
                          f"size_divisor ({divisor})")
    example = torch.rand(1, 3, height, width) * 2 - 1
    layout = dense_output_layout(model, kind, example)
    output_names = [f"{group}_{i}" for group, count in layout.items() for i in range(count)]

    dense_module = SingleStageGraph(model) if kind == SINGLE_STAGE else TwoStageDenseGraph(model)
    dynamic_shapes = None
    if dynamic:
        from torch.export import Dim

        # heights and widths are multiples of the pad divisor, which lets the exporter prove that
        # every stride-2 stage and every upsample-and-add of the neck lines up
        rows = Dim("rows", min=2, max=8192 // divisor)
        cols = Dim("cols", min=2, max=8192 // divisor)
        dynamic_shapes = {"img": {2: divisor * rows, 3: divisor * cols}}
    _atomic_export(dense_module, example, out_path, "img", output_names, dynamic_shapes, opset)

    graphs = {"dense": {"file": os.path.basename(out_path), "input": "img", "outputs": output_names,
                        "groups": layout}}
    if kind == TWO_STAGE:
        extractor = model.roi_head.bbox_roi_extractor
        roi_shape = (extractor.out_channels, *extractor.output_size)
        roi_example = torch.randn(8, *roi_shape)
        from torch.export import Dim

        num_rois = Dim("num_rois", min=2, max=1 << 20)
        _atomic_export(BoxHeadGraph(model.roi_head.bbox_head), roi_example, box_head_path(out_path), "roi_feats",
                       ["cls_score", "bbox_pred"], {"roi_feats": {0: num_rois}}, opset)
        graphs["bbox_head"] = {"file": os.path.basename(box_head_path(out_path)), "input": "roi_feats",
                               "input_shape": ["num_rois", *roi_shape], "outputs": ["cls_score", "bbox_pred"]}

    meta = {
        "format": SIDECAR_FORMAT, "version": SIDECAR_VERSION,
        # as given (a zoo name stays a zoo name), else the file the config came from
        "config": ((os.path.abspath(config) if os.path.isfile(config) else config) if isinstance(config, str)
                   else getattr(getattr(model, "cfg", None), "filename", None)),
        "cfg_options": dict(cfg_options or {}),
        "checkpoint": None if random_weights else str(checkpoint),
        "random_weights": random_weights,
        "detector": type(model).__name__,
        "kind": kind,
        "class_names": list(model.class_names or ()),
        "input": {"name": "img", "layout": "NCHW float32, normalised, padded bottom/right with 0",
                  "shape": [1, 3, "H" if dynamic else height, "W" if dynamic else width],
                  "dynamic": bool(dynamic), "example_shape": [1, 3, height, width],
                  "pad_size_divisor": divisor, **{k: v for k, v in pipeline_info.items() if k != "pad_size_divisor"}},
        "graphs": graphs,
        "outside_graph": (["priors", "score filter + top-k", "box decoding", "rescale", "class-wise NMS"]
                          if kind == SINGLE_STAGE else
                          ["RPN proposals (top-k, decoding, NMS)", "RoIAlign", "softmax + box decoding + rescale",
                           "class-wise NMS"]),
        "opset": opset, "torch": torch.__version__,
    }
    from detzoo.utils.fileio import atomic_write_text

    atomic_write_text(sidecar_path(out_path), json.dumps(meta, indent=1))
    return meta
