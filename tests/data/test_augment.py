"""Augmentation steps of the SSD / YOLOv3 recipes and the batch-level resize, against
hand-worked pixels (colorsys), brute-force IoU loops, cv2 references and images that encode
their own coordinates (pixel (y, x) holds (x, y, marker)), so a crop or a paste can be located
without trusting the step."""
import colorsys

import cv2
import numpy as np
import pytest
import torch

from detzoo.data import CocoDataset, build_dataloader, make_shapes_dataset
from detzoo.data.batch_augment import BatchRandomResize, build_batch_augments
from detzoo.data.transforms import (Collect, DefaultFormatBundle, Expand, LoadAnnotations,
                                    LoadImageFromFile, MinIoURandomCrop, MixUp,
                                    MultiImageMixDataset, Normalize, Pad, PhotoMetricDistortion,
                                    RandomFlip, RandomInterpResize, build_step)
from detzoo.errors import ConfigError, DataError

MARK = 7


def _coord_image(h, w):
    """uint8 [h, w, 3] with pixel (y, x) = (x, y, MARK): any crop tells where it came from."""
    assert h <= 256 and w <= 256
    ys, xs = np.mgrid[:h, :w]
    return np.stack([xs, ys, np.full_like(xs, MARK)], -1).astype(np.uint8)


def _random_boxes(rng, n, h, w, min_size=8.0, max_frac=0.5):
    xy = rng.uniform(0, [w - 20, h - 20], size=(n, 2))
    wh = rng.uniform(min_size, [w * max_frac, h * max_frac], size=(n, 2))
    boxes = np.concatenate([xy, np.minimum(xy + wh, [w, h])], 1)
    return boxes.astype(np.float32)


def _sample(h=120, w=160, n=6, seed=0, polygons=False, **box_kw):
    rng = np.random.default_rng(seed)
    boxes = _random_boxes(rng, n, h, w, **box_kw)
    masks = (rng.random((n, h, w)) < 0.5).astype(np.uint8)
    results = dict(img=_coord_image(h, w), img_shape=(h, w, 3), ori_shape=(h, w, 3),
                   pad_shape=(h, w, 3), img_fields=["img"], gt_bboxes=boxes,
                   gt_labels=np.arange(n, dtype=np.int64), bbox_fields=["gt_bboxes"],
                   gt_masks=masks, mask_fields=["gt_masks"])
    if polygons:
        results["gt_polys"] = [[np.array([b[0], b[1], b[2], b[1], b[2], b[3]], np.float32)]
                               for b in boxes]
        results["mask_fields"].append("gt_polys")
    return results


class _Scripted:
    """A stand-in generator returning prescribed draws; uniform() checks the range it is given."""

    def __init__(self, ints, uniforms, perm=(0, 1, 2)):
        self.ints, self.uniforms, self.perm = list(ints), list(uniforms), np.array(perm)
        self.ranges = []

    def integers(self, n):
        return self.ints.pop(0)

    def uniform(self, low, high):
        value = self.uniforms.pop(0)
        assert low <= value <= high, (low, value, high)
        self.ranges.append((low, high))
        return value

    def permutation(self, n):
        return self.perm


def _hsv_reference(bgr, brightness, alpha, sat, hue_deg, perm):
    """One pixel through the documented order, with colorsys in float64."""
    b, g, r = (np.asarray(bgr, np.float64) + brightness) * alpha  # contrast first
    h, s, v = colorsys.rgb_to_hsv(r, g, b)
    h = (h * 360 + hue_deg) % 360 / 360
    r, g, b = colorsys.hsv_to_rgb(h, s * sat, v)
    return np.array([b, g, r])[list(perm)]


# ---------------------------------------------------------------- PhotoMetricDistortion
def test_photometric_distortion_matches_a_hand_worked_pixel():
    img = np.array([[[30, 120, 200], [20, 10, 200]]], np.uint8)  # hue 31.8 and 356.8 degrees
    boxes = np.array([[0, 0, 1, 1]], np.float32)
    # coins: brightness on, contrast first, contrast on, saturation on, hue on, shuffle on
    rng = _Scripted(ints=[1, 0, 1, 1, 1, 1], uniforms=[10.0, 1.2, 0.8, 15.0], perm=(2, 0, 1))
    out = PhotoMetricDistortion()(dict(img=img, gt_bboxes=boxes.copy(), rng=rng))
    assert rng.ranges == [(-32, 32), (0.5, 1.5), (0.5, 1.5), (-18, 18)]
    assert out["img"].dtype == np.float32 and np.array_equal(out["gt_bboxes"], boxes)
    for x in range(2):
        expected = _hsv_reference(img[0, x], 10.0, 1.2, 0.8, 15.0, (2, 0, 1))
        np.testing.assert_allclose(out["img"][0, x], expected, rtol=1e-4, atol=0.02)
    # the red pixel's hue wrapped past 360 to 11.8 degrees: orange-ish (G > B), not magenta;
    # after the (2, 0, 1) shuffle the channels read (R, B, G)
    assert out["img"][0, 1][2] > out["img"][0, 1][1]


def test_photometric_distortion_contrast_last_and_no_ops():
    img = np.array([[[50, 60, 70]]], np.uint8)
    # brightness off, contrast last, saturation off, hue off, contrast on (0.5), shuffle off
    rng = _Scripted(ints=[0, 1, 0, 0, 1, 0], uniforms=[0.5])
    out = PhotoMetricDistortion()(dict(img=img, rng=rng))
    np.testing.assert_allclose(out["img"][0, 0], [25, 30, 35], atol=1e-3)


def test_photometric_distortion_random_draws_stay_in_range_and_are_seeded():
    gray = np.full((4, 5, 3), 100, np.uint8)  # hue/saturation/shuffle cannot change gray
    step = PhotoMetricDistortion(brightness_delta=32, contrast_range=(0.5, 1.5))
    values = []
    for seed in range(40):
        out = step(dict(img=gray, rng=np.random.default_rng(seed)))["img"]
        again = step(dict(img=gray, rng=np.random.default_rng(seed)))["img"]
        assert np.array_equal(out, again)
        assert np.ptp(out) < 1e-3  # one brightness and one contrast for the whole image
        values.append(float(out[0, 0, 0]))
    values = np.array(values)
    assert values.min() >= (100 - 32) * 0.5 - 1e-3 and values.max() <= (100 + 32) * 1.5 + 1e-3
    assert len(np.unique(values.round(3))) > 10 and (np.abs(values - 100) < 1e-3).sum() > 0


# ---------------------------------------------------------------- Expand
@pytest.mark.parametrize("seed", range(6))
def test_expand_pastes_the_image_and_shifts_boxes_and_masks(seed):
    h, w = 40, 50
    results = _sample(h, w, n=3, seed=seed, polygons=True)
    orig = {k: (v.copy() if isinstance(v, np.ndarray) else v) for k, v in results.items()}
    mean_rgb = (200, 100, 50)
    out = Expand(mean=mean_rgb, to_rgb=True, ratio_range=(1, 4), prob=1.0)(
        dict(results, rng=np.random.default_rng(seed)))
    canvas = out["img"]
    top, left = np.argwhere(canvas[..., 2] == MARK).min(0)
    assert h <= canvas.shape[0] <= 4 * h and w <= canvas.shape[1] <= 4 * w
    assert out["img_shape"] == canvas.shape == out["pad_shape"]
    assert np.array_equal(canvas[top:top + h, left:left + w], orig["img"])
    outside = np.ones(canvas.shape[:2], bool)
    outside[top:top + h, left:left + w] = False
    assert (canvas[outside] == np.array([50, 100, 200], np.uint8)).all()  # BGR fill
    shift = np.float32([left, top, left, top])
    np.testing.assert_array_equal(out["gt_bboxes"], orig["gt_bboxes"] + shift)
    assert out["gt_masks"].shape == (3,) + canvas.shape[:2]
    assert np.array_equal(out["gt_masks"][:, top:top + h, left:left + w], orig["gt_masks"])
    assert out["gt_masks"][:, outside].sum() == 0
    for polys, old in zip(out["gt_polys"], orig["gt_polys"]):
        np.testing.assert_allclose(polys[0], old[0] + np.tile([left, top], 3))


def test_expand_probability_zero_keeps_the_sample():
    results = _sample(40, 50, n=2)
    img = results["img"].copy()
    out = Expand(prob=0.0)(dict(results, rng=np.random.default_rng(0)))
    assert np.array_equal(out["img"], img) and out["img_shape"] == (40, 50, 3)


# ---------------------------------------------------------------- MinIoURandomCrop
class _Spy:
    """Wraps a generator and records the crop modes MinIoURandomCrop draws."""

    def __init__(self, seed, num_modes):
        self.rng, self.num_modes, self.modes = np.random.default_rng(seed), num_modes, []

    def integers(self, n):
        value = self.rng.integers(n)
        if n == self.num_modes:
            self.modes.append(int(value))
        return value

    def __getattr__(self, name):
        return getattr(self.rng, name)


def _iou(a, b):
    iw = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    ih = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = iw * ih
    return inter / ((a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter)


def test_min_iou_random_crop_keeps_centres_clips_and_honours_the_min_iou():
    step = MinIoURandomCrop(min_ious=(0.1, 0.3, 0.5), min_crop_size=0.3)
    modes = (1, 0.1, 0.3, 0.5, 0)
    cropped, constrained = 0, 0
    for seed in range(40):
        # two big boxes, so that crops with a positive min IoU do get accepted
        results = _sample(120, 160, n=2, seed=seed, min_size=40, max_frac=0.9)
        orig = {k: (v.copy() if isinstance(v, np.ndarray) else v) for k, v in results.items()}
        spy = _Spy(seed, len(modes))
        out = step(dict(results, rng=spy))
        min_iou = modes[spy.modes[-1]]
        if min_iou == 1:
            assert np.array_equal(out["img"], orig["img"])
            assert np.array_equal(out["gt_bboxes"], orig["gt_bboxes"])
            continue
        cropped += 1
        constrained += min_iou > 0
        crop = out["img"]
        x1, y1 = int(crop[0, 0, 0]), int(crop[0, 0, 1])
        x2, y2 = x1 + crop.shape[1], y1 + crop.shape[0]
        assert np.array_equal(crop, orig["img"][y1:y2, x1:x2])
        assert out["img_shape"] == crop.shape
        patch = (x1, y1, x2, y2)
        assert all(_iou(patch, box) >= min_iou for box in orig["gt_bboxes"])
        inside = [k for k, b in enumerate(orig["gt_bboxes"])
                  if x1 < (b[0] + b[2]) / 2 < x2 and y1 < (b[1] + b[3]) / 2 < y2]
        assert out["gt_labels"].tolist() == inside and inside
        for j, k in enumerate(inside):
            b = orig["gt_bboxes"][k]
            expected = [max(b[0], x1) - x1, max(b[1], y1) - y1, min(b[2], x2) - x1,
                        min(b[3], y2) - y1]
            np.testing.assert_allclose(out["gt_bboxes"][j], expected, atol=1e-4)
            assert np.array_equal(out["gt_masks"][j], orig["gt_masks"][k][y1:y2, x1:x2])
    assert cropped >= 15 and constrained >= 8


def test_min_iou_random_crop_filters_polygons_and_scores_with_their_boxes():
    for seed in range(20):
        results = _sample(100, 120, n=5, seed=seed, polygons=True)
        polys = results.pop("gt_polys")
        results["gt_masks"] = polys  # polygons as the gt_masks field
        results["mask_fields"] = ["gt_masks"]
        results["gt_score"] = np.linspace(0.1, 0.5, 5).astype(np.float32)
        orig_polys = [p[0].copy() for p in polys]
        out = MinIoURandomCrop()(dict(results, rng=np.random.default_rng(seed)))
        if out["img"].shape == (100, 120, 3):
            continue
        x1, y1 = int(out["img"][0, 0, 0]), int(out["img"][0, 0, 1])
        kept = out["gt_labels"]
        np.testing.assert_allclose(out["gt_score"], np.linspace(0.1, 0.5, 5)[kept], rtol=1e-6)
        assert len(out["gt_masks"]) == len(kept)
        for poly, k in zip(out["gt_masks"], kept):
            np.testing.assert_allclose(poly[0], orig_polys[k] - np.tile([x1, y1], 3))


def test_min_iou_random_crop_without_boxes_still_crops_the_image():
    results = _sample(60, 80, n=0)
    out = MinIoURandomCrop(min_ious=(0.5,))(dict(results, rng=np.random.default_rng(3)))
    assert out["gt_bboxes"].shape == (0, 4)
    assert out["gt_masks"].shape == (0,) + out["img"].shape[:2]


# ---------------------------------------------------------------- MixUp
def test_mixup_blends_images_concatenates_boxes_and_weights_scores():
    rng = np.random.default_rng(0)
    a = dict(img=rng.integers(0, 256, (30, 40, 3)).astype(np.uint8),
             gt_bboxes=np.array([[1, 2, 10, 12]], np.float32), gt_labels=np.array([3]),
             bbox_fields=["gt_bboxes"], gt_masks=np.ones((1, 30, 40), np.uint8),
             mask_fields=["gt_masks"], img_shape=(30, 40, 3))
    b = dict(img=rng.integers(0, 256, (50, 20, 3)).astype(np.uint8),
             gt_bboxes=np.array([[0, 0, 5, 5], [2, 3, 9, 40]], np.float32),
             gt_labels=np.array([0, 1]), bbox_fields=["gt_bboxes"],
             gt_masks=np.full((2, 50, 20), 2, np.uint8), mask_fields=["gt_masks"])
    img_a, img_b = a["img"].astype(np.float64), b["img"].astype(np.float64)
    lam = np.random.default_rng(11).beta(1.5, 1.5)
    out = MixUp(alpha=1.5, beta=1.5)(dict(a, mix_results=[b], rng=np.random.default_rng(11)))
    assert "mix_results" not in out
    img = out["img"]
    assert img.shape == (50, 40, 3) and out["img_shape"] == (50, 40, 3)
    np.testing.assert_allclose(img[:30, :20], lam * img_a[:, :20] + (1 - lam) * img_b[:30],
                               atol=1e-3)
    np.testing.assert_allclose(img[:30, 20:], lam * img_a[:, 20:], atol=1e-3)
    np.testing.assert_allclose(img[30:, :20], (1 - lam) * img_b[30:], atol=1e-3)
    assert (img[30:, 20:] == 0).all()
    np.testing.assert_array_equal(out["gt_bboxes"], [[1, 2, 10, 12], [0, 0, 5, 5], [2, 3, 9, 40]])
    assert out["gt_labels"].tolist() == [3, 0, 1]
    np.testing.assert_allclose(out["gt_score"], [lam, 1 - lam, 1 - lam], rtol=1e-6)
    masks = out["gt_masks"]
    assert masks.shape == (3, 50, 40)
    assert masks[0, :30, :40].all() and masks[0, 30:].sum() == 0
    assert (masks[1:, :, :20] == 2).all() and masks[1:, :, 20:].sum() == 0


def test_mixup_without_a_second_sample_is_a_clear_error():
    with pytest.raises(DataError, match="MultiImageMixDataset"):
        MixUp()(dict(img=np.zeros((4, 4, 3), np.uint8), rng=np.random.default_rng(0)))
    with pytest.raises(ConfigError, match="positive"):
        MixUp(alpha=0)


# ---------------------------------------------------------------- RandomInterpResize
def test_random_interp_resize_uses_the_drawn_cv2_method():
    img = np.random.default_rng(1).integers(0, 256, (37, 53, 3)).astype(np.uint8)
    step = RandomInterpResize(img_scale=(40, 30), keep_ratio=False)
    flags = dict(nearest=cv2.INTER_NEAREST, bilinear=cv2.INTER_LINEAR, area=cv2.INTER_AREA,
                 bicubic=cv2.INTER_CUBIC, lanczos=cv2.INTER_LANCZOS4)
    seen = set()
    for seed in range(30):
        out = step(dict(img=img.copy(), rng=np.random.default_rng(seed)))
        method = out["interpolation"]
        seen.add(method)
        assert np.array_equal(out["img"], cv2.resize(img, (40, 30), interpolation=flags[method]))
    assert seen == set(flags)
    assert step.interpolation == "nearest"  # the shared step object is left unchanged
    with pytest.raises(ConfigError, match="interpolations"):
        RandomInterpResize(img_scale=(4, 4), interpolations=["cubic"])


# ---------------------------------------------------------------- BatchRandomResize
def _batch():
    rng = np.random.default_rng(5)
    shapes = [(50, 70), (64, 90)]
    img = torch.zeros(2, 3, 64, 96)
    metas, boxes, bitmaps, polys = [], [], [], []
    for i, (h, w) in enumerate(shapes):
        img[i, :, :h, :w] = torch.from_numpy(rng.normal(size=(3, h, w)).astype(np.float32))
        metas.append(dict(img_shape=(h, w, 3), pad_shape=(64, 96, 3), img_id=i,
                          scale_factor=np.array([2, 3, 2, 3], np.float32)))
        boxes.append(torch.from_numpy(_random_boxes(rng, 3, h, w)))
        m = torch.zeros(3, 64, 96, dtype=torch.uint8)
        m[:, :h, :w] = torch.from_numpy((rng.random((3, h, w)) < 0.5).astype(np.uint8))
        bitmaps.append(m)
        polys.append([[np.array([1, 2, 3, 4, 5, 6], np.float32)]])
    return dict(img=img, img_metas=metas, gt_bboxes=boxes,
                gt_labels=[torch.arange(3), torch.arange(3)], gt_masks=bitmaps), polys


def test_batch_random_resize_scales_everything_consistently():
    sizes = [320 // 4, 352 // 4, 384 // 4, 416 // 4]  # small stand-ins for 320..608
    step = BatchRandomResize(sizes=sizes, interval=1)
    drawn = set()
    for iteration in range(12):
        batch, _ = _batch()
        out = step(dict(batch), seed=7, iteration=iteration)
        size = out["img"].shape[-1]
        drawn.add(size)
        assert size in sizes and out["img"].shape == (2, 3, size, size)
        for i, meta in enumerate(batch["img_metas"]):
            h, w = meta["img_shape"][:2]
            sx, sy = size / w, size / h
            new = out["img_metas"][i]
            assert new["img_shape"] == (size, size, 3) and new["pad_shape"] == (size, size, 3)
            np.testing.assert_allclose(new["scale_factor"], [2 * sx, 3 * sy, 2 * sx, 3 * sy],
                                       rtol=1e-6)
            expected = batch["gt_bboxes"][i].numpy() * np.array([sx, sy, sx, sy], np.float32)
            np.testing.assert_allclose(out["gt_bboxes"][i].numpy(), expected, rtol=1e-6)
            valid = batch["img"][i, :, :h, :w].numpy().transpose(1, 2, 0)
            ref = cv2.resize(valid, (size, size), interpolation=cv2.INTER_LINEAR)
            np.testing.assert_allclose(out["img"][i].numpy().transpose(1, 2, 0), ref, atol=1e-4)
            mask = batch["gt_masks"][i][:, :h, :w].numpy()
            ref_mask = np.stack([cv2.resize(m, (size, size), interpolation=cv2.INTER_NEAREST)
                                 for m in mask])
            assert np.array_equal(out["gt_masks"][i].numpy(), ref_mask)
        assert batch["img_metas"][0]["img_shape"] == (50, 70, 3)  # input metas untouched
    assert len(drawn) >= 3


def test_batch_random_resize_is_a_function_of_seed_and_iteration():
    step = BatchRandomResize(sizes=list(range(320, 609, 32)), interval=3,
                             interpolation="random")
    run = [step.choose(seed=1, iteration=i) for i in range(60)]
    assert run == [step.choose(seed=1, iteration=i) for i in range(60)]
    assert all(run[i] == run[i - i % 3] for i in range(60))  # one draw per 3 iterations
    assert len({s for s, _ in run}) >= 5 and len({m for _, m in run}) == 4
    assert run != [step.choose(seed=2, iteration=i) for i in range(60)]


def test_batch_random_resize_keep_ratio_and_polygons():
    batch, polys = _batch()
    batch["gt_masks"] = polys
    out = BatchRandomResize(sizes=[(48, 80)], keep_ratio=True)(batch, seed=0, iteration=0)
    assert out["img"].shape == (2, 3, 48, 80)
    for i, (h, w) in enumerate([(50, 70), (64, 90)]):
        scale = min(48 / h, 80 / w)
        new_h, new_w = int(h * scale + 0.5), int(w * scale + 0.5)
        assert out["img_metas"][i]["img_shape"] == (new_h, new_w, 3)
        assert out["img"][i, :, new_h:].abs().sum() == 0
        assert out["img"][i, :, :, new_w:].abs().sum() == 0
        expected = np.array([1, 2, 3, 4, 5, 6]) * np.tile([new_w / w, new_h / h], 3)
        np.testing.assert_allclose(out["gt_masks"][i][0][0], expected, rtol=1e-6)


def test_build_batch_augments_from_config_and_errors():
    augments = build_batch_augments([dict(type="BatchRandomResize", sizes=[64])])
    batch, _ = _batch()
    assert augments(batch, seed=0, iteration=0)["img"].shape[-2:] == (64, 64)
    assert build_batch_augments(None) is None and build_batch_augments([]) is None
    with pytest.raises(ConfigError, match="unknown type"):
        build_batch_augments([dict(type="BatchRandomResise", sizes=[64])])
    with pytest.raises(ConfigError, match="positive int"):
        BatchRandomResize(sizes=[0])


class _ShapeRecorder(torch.nn.Module):
    """A "detector" that records the image size of every training batch."""

    def __init__(self):
        super().__init__()
        self.weight = torch.nn.Parameter(torch.zeros(1))
        self.sizes = []

    def loss(self, batch):
        self.sizes.append(tuple(batch["img"].shape[-2:]))
        return {"loss": (self.weight - batch["img"].mean()) ** 2}


class _TinySet(torch.utils.data.Dataset):
    CLASSES = ("a",)
    flag = np.zeros(6, np.uint8)

    def __len__(self):
        return 6

    def __getitem__(self, i):
        shape = (32, 32, 3)
        return dict(img=torch.full((3, 32, 32), float(i)), gt_bboxes=torch.tensor([[1., 2, 9, 9]]),
                    gt_labels=torch.tensor([0]),
                    img_metas=dict(img_shape=shape, pad_shape=shape, img_id=i,
                                   scale_factor=np.ones(4, np.float32)))


def test_trainer_applies_data_batch_augments(tmp_path):
    from detzoo.engine import train_detector

    step = dict(type=BatchRandomResize, sizes=[32, 48, 64, 96])
    cfg = dict(data=dict(samples_per_gpu=2, workers_per_gpu=0, batch_augments=[step]),
               optimizer=dict(type="SGD", lr=0.01), runner=dict(type="EpochBasedRunner",
                                                                  max_epochs=2),
               log_config=dict(interval=100), auto_scale_lr=dict(enable=False))
    model = _ShapeRecorder()
    train_detector(model, _TinySet(), cfg, tmp_path, seed=5, validate=False)
    reference = BatchRandomResize(sizes=[32, 48, 64, 96])
    expected = [reference.choose(5, i)[0] for i in range(6)]
    assert model.sizes == expected and len(set(expected)) > 1


# ---------------------------------------------------------------- the pipeline in the loader
@pytest.fixture(scope="module")
def shapes(tmp_path_factory):
    return make_shapes_dataset(str(tmp_path_factory.mktemp("aug_shapes")), num_train=6,
                               num_val=1, img_size_range=(64, 96), seed=0, max_objects=3)


def _mix_dataset(shapes):
    inner = CocoDataset(shapes["train_ann"], shapes["img_dir"],
                        [dict(type=LoadImageFromFile), dict(type=LoadAnnotations, with_mask=True)])
    pipeline = [dict(type=MixUp), dict(type=PhotoMetricDistortion),
                dict(type=Expand, mean=[123.675, 116.28, 103.53], ratio_range=(1, 2)),
                dict(type=MinIoURandomCrop),
                dict(type=RandomInterpResize, img_scale=[(96, 64), (128, 96)]),
                dict(type=RandomFlip, flip_ratio=0.5),
                dict(type=Normalize, mean=[0, 0, 0], std=[255, 255, 255]),
                dict(type=Pad, size_divisor=32), dict(type=DefaultFormatBundle),
                dict(type=Collect, keys=["img", "gt_bboxes", "gt_labels", "gt_score",
                                         "gt_masks"])]
    return MultiImageMixDataset(inner, pipeline)


def _same(a, b):
    assert len(a) == len(b)
    for x, y in zip(a, b):
        assert torch.equal(x["img"], y["img"])
        for key in ("gt_bboxes", "gt_labels", "gt_masks"):
            assert all(torch.equal(p, q) for p, q in zip(x[key], y[key]))
        assert all(np.array_equal(p, q) for p, q in zip(x["gt_score"], y["gt_score"]))


def test_augmented_pipeline_is_identical_for_0_and_2_workers(shapes):
    ds = _mix_dataset(shapes)
    assert ds.CLASSES == ("circle", "square", "triangle", "star") and len(ds.flag) == 6
    serial = list(build_dataloader(ds, samples_per_gpu=2, workers_per_gpu=0, seed=3))
    parallel = list(build_dataloader(ds, samples_per_gpu=2, workers_per_gpu=2, seed=3,
                                     persistent_workers=False))
    _same(serial, parallel)
    for batch in serial:
        for boxes, masks, score in zip(batch["gt_bboxes"], batch["gt_masks"], batch["gt_score"]):
            assert len(boxes) == len(masks) == len(score)
            assert ((score > 0) & (score <= 1)).all()
    scores = np.concatenate([s for batch in serial for s in batch["gt_score"]])
    assert (scores < 1).all()  # every sample was mixed (lam in (0, 1))
    other = list(build_dataloader(ds, samples_per_gpu=2, workers_per_gpu=0, seed=4))
    assert any(x["img"].shape != y["img"].shape or not torch.equal(x["img"], y["img"])
               for x, y in zip(serial, other))


def test_steps_build_by_name_and_repr():
    for name, kwargs in (("PhotoMetricDistortion", {}), ("Expand", {}),
                         ("MinIoURandomCrop", {}), ("MixUp", {}),
                         ("RandomInterpResize", dict(img_scale=(8, 8)))):
        step = build_step(dict(type=name, **kwargs))
        assert repr(step).startswith(name + "(")
    with pytest.raises(ConfigError, match="ratio_range"):
        Expand(ratio_range=(0.5, 2))
