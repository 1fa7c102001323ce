"""COCO evaluation: results <-> COCO JSON, pycocotools metrics under MMDetection's names."""
from detzoo.evaluation.coco_metric import (AP_ITEMS, METRICS, ar_items, evaluate_coco,
                                           evaluate_results_file, format_metrics_line)
from detzoo.evaluation.evaluator import CocoEvaluator
from detzoo.evaluation.proposals_io import (load_proposals, result_to_mmdet_lists,
                                            save_mmdet_results, save_proposals)
from detzoo.evaluation.results_io import (load_coco_gt, load_results_json, result_to_coco_json,
                                          results_to_coco_json, save_results_json,
                                          validate_results)

__all__ = [
    "AP_ITEMS", "METRICS", "ar_items", "evaluate_coco", "evaluate_results_file",
    "format_metrics_line", "CocoEvaluator", "load_coco_gt", "load_results_json",
    "result_to_coco_json", "results_to_coco_json", "save_results_json", "validate_results",
    "load_proposals", "save_proposals", "result_to_mmdet_lists", "save_mmdet_results",
]

# Pascal VOC mAP (docs/voc.md)
from detzoo.evaluation.voc_metric import (average_precision, bbox_overlaps_np, eval_map,  # noqa: E402
                                          format_map_table, voc_results_to_json)

__all__ += ["eval_map", "average_precision", "bbox_overlaps_np", "format_map_table", "voc_results_to_json"]
