"""Deployment: ONNX export of a detector's dense graph(s) and ONNX Runtime inference.

    detzoo export CONFIG CHECKPOINT --format onnx --out model.onnx [--shape H W] [--dynamic]
    detzoo infer CONFIG model.onnx IMAGES --backend onnxruntime

See docs/export.md for what runs inside and outside the graphs.
"""
from .onnx_export import SUPPORTED_FORMATS, box_head_path, export_onnx, sidecar_path
from .runtime import OrtDetector, import_onnxruntime, load_ort_detector, load_sidecar, ort_runner, ort_session

__all__ = ["SUPPORTED_FORMATS", "OrtDetector", "box_head_path", "export_onnx", "import_onnxruntime",
           "load_ort_detector", "load_sidecar", "ort_runner", "ort_session", "sidecar_path"]
