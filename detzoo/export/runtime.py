"""Run an exported detector with ONNX Runtime and detzoo's own post-processing.

    from detzoo.export import OrtDetector
    det = OrtDetector("retinanet.onnx")            # config from the sidecar, or pass config=
    result = det("demo.jpg")                       # DetResult in original-image pixels

``OrtDetector`` quacks like a detzoo detector (``cfg``, ``class_names``, ``device``,
``predict(img, img_metas, rescale)``), so :func:`detzoo.apis.inference.inference_detector` and
``detzoo infer --backend onnxruntime`` use it unchanged: same test pipeline, same post-processing
code (the PyTorch model built from the config supplies the heads' decoding and NMS; its weights
are never used), only the dense graphs run in ONNX Runtime.
"""
from __future__ import annotations

import json
import os
from typing import Dict, List, Optional, Sequence

import numpy as np
import torch

from detzoo.errors import ConfigError, DataError, DetzooError
from detzoo.structures import DetResult
from .graphs import SINGLE_STAGE, TWO_STAGE
from .onnx_export import SIDECAR_FORMAT, sidecar_path


def import_onnxruntime():
    """The onnxruntime module, or a one-line error saying how to get it."""
    try:
        import onnxruntime
    except ImportError as exc:
        raise DetzooError("the onnxruntime backend needs the 'onnxruntime' package, which is not installed "
                          f"({exc}); install it with: pip install onnxruntime") from None
    return onnxruntime


def ort_session(onnx_path: str, threads: int = 2, providers: Optional[Sequence[str]] = None,
                spinning: bool = False):
    """An ``onnxruntime.InferenceSession`` for ``onnx_path`` using ``threads`` intra-op threads
    (all graph optimisations on; CPU provider unless ``providers`` says otherwise).

    ``spinning``: ORT's worker threads busy-wait between ops by default; off here because the
    graphs alternate with detzoo's PyTorch post-processing, whose threads the spinning workers
    would compete with (and on a shared CPU it measured slower: 2.9 s vs 1.8 s for the Faster
    R-CNN dense graph at 800x1216, 2 threads)."""
    ort = import_onnxruntime()
    if not os.path.isfile(onnx_path):
        raise DataError(f"ONNX model {onnx_path} does not exist (make it with `detzoo export`)")
    options = ort.SessionOptions()
    options.intra_op_num_threads = int(threads)
    options.inter_op_num_threads = 1
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.log_severity_level = 3  # errors only
    options.add_session_config_entry("session.intra_op.allow_spinning", "1" if spinning else "0")
    return ort.InferenceSession(onnx_path, sess_options=options,
                                providers=list(providers or ["CPUExecutionProvider"]))


def load_sidecar(onnx_path: str) -> dict:
    """The sidecar JSON written by :func:`detzoo.export.export_onnx` beside ``onnx_path``."""
    path = sidecar_path(onnx_path)
    if not os.path.isfile(path):
        raise DataError(f"{onnx_path}: its sidecar {path} is missing (re-export with `detzoo export`; the "
                        "runtime needs it for the graph layout and class names)")
    try:
        with open(path, encoding="utf-8") as f:
            meta = json.load(f)
    except (OSError, ValueError) as exc:
        raise DataError(f"{path}: not a readable sidecar JSON ({exc})") from None
    if meta.get("format") != SIDECAR_FORMAT or meta.get("kind") not in (SINGLE_STAGE, TWO_STAGE):
        raise DataError(f"{path}: not a detzoo ONNX sidecar (format={meta.get('format')!r}, kind={meta.get('kind')!r})")
    return meta


class OrtDetector:
    """An exported detector: ONNX Runtime for the dense graphs, detzoo for the rest.

    Args:
        onnx_path: the dense graph written by ``detzoo export`` (its sidecar ``.json`` beside it).
        config: config path / zoo name / Config for the test pipeline and post-processing
            (default: the one recorded in the sidecar, with the ``--cfg-options`` of the export).
        cfg_options: dotted overrides (e.g. score thresholds), applied last.
        threads: ONNX Runtime intra-op threads.
    """

    def __init__(self, onnx_path: str, config=None, cfg_options: Optional[dict] = None, threads: int = 2,
                 providers: Optional[Sequence[str]] = None):
        from detzoo.apis.inference import init_detector
        from detzoo.config import Config, load_config
        from .graphs import detector_kind

        import_onnxruntime()
        onnx_path = os.fspath(onnx_path)
        self.meta = load_sidecar(onnx_path)
        options = dict(cfg_options or {})
        if config is None:  # the sidecar's config with the overrides it was exported with
            config = self.meta.get("config")
            if not config:
                raise ConfigError(f"{sidecar_path(onnx_path)} records no config: pass the config explicitly")
            options = {**self.meta.get("cfg_options", {}), **options}
        cfg = config if isinstance(config, Config) else load_config(config)
        config = cfg.filename or "the given config" if isinstance(config, Config) else config  # for messages
        model = init_detector(cfg, None, device="cpu", cfg_options=options or None)
        kind = detector_kind(model, where=str(config))
        if kind != self.meta["kind"]:
            raise ConfigError(f"config {config} builds a {type(model).__name__} ({kind}) but {onnx_path} holds a "
                              f"{self.meta.get('detector')} ({self.meta['kind']})")
        names = tuple(self.meta.get("class_names") or model.class_names)
        num_classes = _num_classes(model)
        if num_classes is not None and len(names) != num_classes:
            raise ConfigError(f"config {config} has {num_classes} classes but {onnx_path} was exported with "
                              f"{len(names)} ({sidecar_path(onnx_path)} class_names)")
        # only the post-processing is used: drop the dense weights the graphs replace
        model.backbone, model.neck = None, None
        self.model = model
        self.cfg = model.cfg
        self.class_names = names
        self.kind = kind
        folder = os.path.dirname(os.path.abspath(onnx_path))
        graphs = self.meta["graphs"]
        self.dense = ort_session(onnx_path, threads, providers)
        self.box_head = (ort_session(os.path.join(folder, graphs["bbox_head"]["file"]), threads, providers)
                         if kind == TWO_STAGE else None)
        self.groups: Dict[str, int] = dict(graphs["dense"]["groups"])
        self.input_name = self.dense.get_inputs()[0].name
        self.static_hw = None if self.meta["input"]["dynamic"] else tuple(self.meta["input"]["shape"][2:])

    @property
    def device(self) -> torch.device:
        return torch.device("cpu")

    def __call__(self, imgs):
        """End to end on a path / BGR uint8 array (or a list): DetResult(s) in original-image pixels."""
        from detzoo.apis.inference import inference_detector

        return inference_detector(self, imgs)

    # -- the dense graphs ------------------------------------------------------------------------
    def _fit_input(self, img: torch.Tensor, meta: dict) -> np.ndarray:
        """[1, 3, h, w] -> the graph's input: padded bottom/right with 0 up to a static shape."""
        if img.ndim != 4 or img.shape[:2] != (1, 3):
            raise DataError(f"{meta.get('filename') or 'image'}: network input of shape {tuple(img.shape)}; the exported "
                            "graph takes [1, 3, H, W]")
        array = img.detach().to("cpu", torch.float32).numpy()
        if self.static_hw is None:
            return array
        height, width = array.shape[2:]
        static_h, static_w = self.static_hw
        if height > static_h or width > static_w:
            raise DataError(f"{meta.get('filename') or 'image'}: network input is {height}x{width} after the test "
                            f"pipeline, larger than the exported static shape {static_h}x{static_w}; re-export "
                            "with --dynamic or a larger --shape")
        if (height, width) != (static_h, static_w):
            array = np.pad(array, ((0, 0), (0, 0), (0, static_h - height), (0, static_w - width)))
            meta["pad_shape"] = (static_h, static_w, 3)
        return array

    def run_dense(self, array: np.ndarray) -> Dict[str, List[torch.Tensor]]:
        """The dense graph's outputs as per-level tensor lists, keyed by group name."""
        outputs = self.dense.run(None, {self.input_name: array})
        grouped, start = {}, 0
        for name, count in self.groups.items():
            grouped[name] = [torch.from_numpy(o) for o in outputs[start:start + count]]
            start += count
        return grouped

    def run_box_head(self, roi_feats: torch.Tensor):
        """Pooled RoI features [K, C, S, S] -> (cls_score [K, C+1], bbox_pred [K, 4C]) from the box-head graph."""
        if roi_feats.shape[0] < 2:  # the graph's symbolic RoI count starts at 2: pad, then drop the extras
            padded = torch.cat([roi_feats, roi_feats.new_zeros((2 - roi_feats.shape[0], *roi_feats.shape[1:]))])
            cls_score, bbox_pred = self.run_box_head(padded)
            return cls_score[: roi_feats.shape[0]], bbox_pred[: roi_feats.shape[0]]
        cls_score, bbox_pred = self.box_head.run(None, {"roi_feats": roi_feats.contiguous().numpy()})
        return torch.from_numpy(cls_score), torch.from_numpy(bbox_pred)

    # -- detector API ----------------------------------------------------------------------------
    def predict(self, img: torch.Tensor, img_metas: List[dict], rescale: bool = True) -> List[DetResult]:
        """img [B, 3, H, W] (normalised, padded) -> one DetResult per image, as ``model.predict``.
        Images of a batch run one at a time (the graphs have batch size 1)."""
        return [self._predict_one(img[i:i + 1], dict(meta), rescale) for i, meta in enumerate(img_metas)]

    @torch.inference_mode()
    def _predict_one(self, img: torch.Tensor, meta: dict, rescale: bool) -> DetResult:
        from detzoo.models.roi_heads.base_roi_head import boxes_to_rois

        outs = self.run_dense(self._fit_input(img, meta))
        model = self.model
        if self.kind == SINGLE_STAGE:
            head = model.bbox_head
            if "pred_map" in outs:  # YOLOv3: one group of per-level maps
                return head.predict_by_feat(outs["pred_map"], [meta], rescale)[0]
            return head.predict_by_feat(outs["cls_score"], outs["bbox_pred"], [meta], outs.get("score_factor"),
                                        rescale)[0]
        # two-stage: the steps of RPNHead.simple_test_rpn and StandardRoIHead.simple_test
        proposals = model.rpn_head.proposals(outs["rpn_cls"], outs["rpn_reg"], [meta], model.rpn_head.test_cfg)
        rois = boxes_to_rois(proposals)
        roi_head = model.roi_head
        cls_score, bbox_pred = self.run_box_head(roi_head.bbox_roi_extractor(outs["feat"], rois))
        return roi_head.bbox_head.predict_single(rois, cls_score, bbox_pred, meta, roi_head.test_cfg, rescale=rescale)


def _num_classes(model) -> Optional[int]:
    from detzoo.models.builder import _num_classes as count

    try:
        return count(model)
    except Exception:  # a model the builder cannot count: skip the check
        return None


def load_ort_detector(onnx_path: str, config=None, threads: int = 2, cfg_options: Optional[dict] = None
                      ) -> OrtDetector:
    """Shorthand for :class:`OrtDetector` (``config`` defaults to the sidecar's)."""
    return OrtDetector(onnx_path, config=config, cfg_options=cfg_options, threads=threads)


def ort_runner(onnx_path: str, threads: int = 2, config=None, cfg_options: Optional[dict] = None):
    """A callable ``image (path or BGR array) -> DetResult`` that runs preprocessing, ONNX Runtime
    and post-processing end to end (for benchmarks)."""
    return OrtDetector(onnx_path, config=config, cfg_options=cfg_options, threads=threads)
