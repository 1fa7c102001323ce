"""CocoEvaluator: batched accumulation, rank merging with duplicated padding images."""
import pickle

import pytest

from coco_helpers import expected_metrics, jittered_detections, reference_dicts, reference_eval
from detzoo.errors import DataError
from detzoo.evaluation import CocoEvaluator, load_results_json


class _FakeDataset:
    def __init__(self, coco):
        self.coco = coco
        self.cat_ids = [1, 5, 9]
        self.img_ids = coco.getImgIds()


def _metas(img_ids):
    return [dict(img_id=i, filename=f"img{i}.jpg") for i in img_ids]


def test_two_ranks_merge_to_the_reference_numbers(synthetic_gt, tmp_path):
    gt, coco = synthetic_gt
    dets_by_img = jittered_detections(gt, seed=11, with_masks=True)
    ids = list(dets_by_img)
    # rank 0 takes images 0, 2, 4; rank 1 takes 1, 3, 5 and a padded repeat of image 0
    ranks = [ids[0::2], ids[1::2] + [ids[0]]]
    evaluators = [CocoEvaluator.from_dataset(_FakeDataset(coco), print_fn=None)
                  for _ in ranks]
    for evaluator, rank_ids in zip(evaluators, ranks):
        for start in range(0, len(rank_ids), 2):  # batches of 2
            batch = rank_ids[start:start + 2]
            evaluator.process(_metas(batch), [dets_by_img[i][0] for i in batch])
    gathered = [pickle.loads(pickle.dumps(e.state())) for e in evaluators]  # all_gather_object
    main = evaluators[0]
    main.merge(gathered[1:])
    assert main.num_images == len(ids)

    metrics = main.evaluate(("bbox", "segm"))
    ref_dicts = reference_dicts(dets_by_img)
    ref_bbox = reference_eval(coco, ref_dicts, "bbox", drop="segmentation")
    ref_segm = reference_eval(coco, ref_dicts, "segm", drop="bbox")
    for key, value in {**expected_metrics(ref_bbox, "bbox_"),
                       **expected_metrics(ref_segm, "segm_")}.items():
        assert metrics[key] == pytest.approx(value, abs=1e-9), key

    # a partial run: unprocessed images count as having no detections (MMDetection semantics)
    partial = CocoEvaluator(coco, cat_ids=[1, 5, 9], print_fn=None)
    partial.process(_metas(ranks[0]), [dets_by_img[i][0] for i in ranks[0]])
    only_rank0 = [d for d in ref_dicts if d["image_id"] in ranks[0]]
    expected = expected_metrics(reference_eval(coco, only_rank0, "bbox",
                                               drop="segmentation"), "bbox_")
    assert partial.evaluate("bbox")["bbox_mAP"] == expected["bbox_mAP"]

    path = tmp_path / "dets.json"
    main.save(str(path))
    saved = load_results_json(str(path), coco)
    assert len(saved) == len(ref_dicts)  # the padded repeat is not saved twice
    assert [d["image_id"] for d in saved] == sorted(d["image_id"] for d in ref_dicts)


def test_process_rejects_mismatched_batches(synthetic_gt):
    gt, coco = synthetic_gt
    result = next(iter(jittered_detections(gt).values()))[0]
    evaluator = CocoEvaluator(coco, cat_ids=[1, 5, 9])
    with pytest.raises(DataError, match="2 img_metas but 1 results"):
        evaluator.process(_metas([10, 11]), [result])
    with pytest.raises(DataError, match="has no 'img_id'"):
        evaluator.process([dict(filename="x.jpg")], [result])
