"""Pipeline steps against hand-worked cases, cv2/numpy references and float64 maths."""
import struct

import cv2
import numpy as np
import pytest
import torch

from detzoo.errors import ConfigError, DataError
from detzoo.data.transforms import (DEFAULT_META_KEYS, Collect, Compose, DefaultFormatBundle,
                                    LoadAnnotations, LoadImageFromFile, LoadImageFromNDArray,
                                    MultiScaleFlipAug, Normalize, Pad, RandomFlip, Resize)

from shared_paths import DATA as _DATA

DATA = str(_DATA)
DEMO = f"{DATA}/demo.jpg"


def _load(path=DEMO, **kwargs):
    return LoadImageFromFile(**kwargs)(dict(filename=path))


# ---------------------------------------------------------------- loading
def test_load_image_is_bgr_uint8_like_cv2_imread():
    r = _load()
    ref = cv2.imread(DEMO, cv2.IMREAD_COLOR)
    assert r["img"].dtype == np.uint8 and r["img"].shape == (427, 640, 3)
    assert np.array_equal(r["img"], ref)
    assert r["ori_shape"] == r["img_shape"] == (427, 640, 3)
    assert r["img_fields"] == ["img"] and r["filename"] == DEMO


def test_load_gray_jpeg_as_three_channels_and_float32():
    r = _load(f"{DATA}/mmdet-tests/gray.jpg", to_float32=True)
    assert r["img"].shape == (288, 512, 3) and r["img"].dtype == np.float32
    gray = cv2.imread(f"{DATA}/mmdet-tests/gray.jpg", cv2.IMREAD_GRAYSCALE)
    assert np.array_equal(r["img"][..., 1], gray.astype(np.float32))


def test_load_joins_prefix_and_filename_from_img_info():
    r = LoadImageFromFile()(dict(img_info=dict(filename="color.jpg", id=7),
                                 img_prefix=f"{DATA}/mmdet-tests"))
    assert r["filename"] == f"{DATA}/mmdet-tests/color.jpg"
    assert r["ori_filename"] == "color.jpg" and r["img_id"] == 7


def _with_exif_orientation(jpeg: bytes, orientation: int) -> bytes:
    # minimal big-endian TIFF with one IFD entry: tag 0x0112 (Orientation), SHORT, count 1
    tiff = b"MM\x00\x2a" + struct.pack(">I", 8) + struct.pack(">H", 1)
    tiff += struct.pack(">HHIHH", 0x0112, 3, 1, orientation, 0) + struct.pack(">I", 0)
    payload = b"Exif\x00\x00" + tiff
    app1 = b"\xff\xe1" + struct.pack(">H", len(payload) + 2) + payload
    assert jpeg[:2] == b"\xff\xd8"
    return jpeg[:2] + app1 + jpeg[2:]


def test_load_applies_exif_orientation_unless_told_not_to(tmp_path):
    img = np.zeros((40, 60, 3), np.uint8)
    img[:10, :20] = 255  # bright block top-left marks the orientation
    ok, enc = cv2.imencode(".jpg", img)
    path = tmp_path / "rotated.jpg"
    path.write_bytes(_with_exif_orientation(enc.tobytes(), 6))  # 6 = rotate 90 clockwise
    rotated = _load(str(path))["img"]
    assert rotated.shape == (60, 40, 3)
    # rotated clockwise: the top-left block lands in the top-right corner
    assert rotated[:20, -10:].mean() > 200 and rotated[-20:, :10].mean() < 50
    kept = _load(str(path), color_type="color_ignore_orientation")["img"]
    assert kept.shape == (40, 60, 3)


def test_load_errors_name_the_file(tmp_path):
    bad = tmp_path / "broken.jpg"
    bad.write_bytes(b"this is not a jpeg")
    with pytest.raises(DataError, match="broken.jpg"):
        _load(str(bad))
    with pytest.raises(DataError, match="nothere.jpg"):
        _load(str(tmp_path / "nothere.jpg"))
    empty = tmp_path / "empty.jpg"
    empty.write_bytes(b"")
    with pytest.raises(DataError, match="empty.jpg"):
        _load(str(empty))


def test_load_annotations_polygon_to_mask_hand_worked():
    ann = dict(bboxes=np.array([[2, 3, 12, 9]], np.float32), labels=np.array([1]),
               bboxes_ignore=np.zeros((0, 4), np.float32), masks=[[[2, 3, 12, 3, 12, 9, 2, 9]]])
    r = LoadAnnotations(with_mask=True)(dict(ann_info=ann, img_info=dict(height=20, width=20)))
    mask = r["gt_masks"][0]
    # the polygon's pixels: columns 2..11, rows 3..8
    expected = np.zeros((20, 20), np.uint8)
    expected[3:9, 2:12] = 1
    assert np.array_equal(mask, expected)
    assert r["bbox_fields"] == ["gt_bboxes", "gt_bboxes_ignore"]
    assert r["gt_labels"].dtype == np.int64 and r["gt_bboxes"].dtype == np.float32
    polys = LoadAnnotations(with_mask=True, poly2mask=False)(
        dict(ann_info=ann, img_info=dict(height=20, width=20)))["gt_masks"]
    assert np.array_equal(polys[0][0], np.array([2, 3, 12, 3, 12, 9, 2, 9], np.float32))


def test_load_annotations_missing_segmentation_is_an_error():
    ann = dict(bboxes=np.zeros((1, 4), np.float32), labels=np.zeros(1, np.int64), masks=[None])
    with pytest.raises(DataError, match="x.jpg.*segmentation"):
        LoadAnnotations(with_mask=True)(
            dict(ann_info=ann, img_info=dict(height=5, width=5, filename="x.jpg")))


# ---------------------------------------------------------------- resize
def test_resize_demo_hand_worked():
    r = _load()
    r["gt_bboxes"] = np.array([[10, 20, 650, 400], [0, 0, 64, 42.7]], np.float32)
    r["bbox_fields"] = ["gt_bboxes"]
    r = Resize(img_scale=(1333, 800), keep_ratio=True)(r)
    # factor = min(1333/640, 800/427) = 800/427; w = int(640*800/427 + .5) = 1199, h = 800
    assert r["img_shape"] == (800, 1199, 3)
    expected = np.array([1199 / 640, 800 / 427, 1199 / 640, 800 / 427], np.float32)
    assert r["scale_factor"].dtype == np.float32
    assert np.array_equal(r["scale_factor"], expected)
    ref = cv2.resize(cv2.imread(DEMO), (1199, 800), interpolation=cv2.INTER_LINEAR)
    assert np.array_equal(r["img"], ref)
    boxes = r["gt_bboxes"]
    # x2 = 650 * 1199/640 = 1217.7 is clipped to the image width 1199
    np.testing.assert_allclose(boxes[0], [10 * 1199 / 640, 20 * 800 / 427, 1199, 400 * 800 / 427],
                               rtol=1e-6)
    np.testing.assert_allclose(boxes[1], [0, 0, 119.9, 80.0], rtol=1e-5)


@pytest.mark.parametrize("hw, scale, new_hw", [
    ((20, 30), (1333, 800), (800, 1200)),     # min(1333/30, 800/20) = 40
    ((1000, 100), (1333, 800), (1333, 133)),  # min(1333/1000, 800/100) = 1.333; 133.3 -> 133
    ((333, 500), (800, 1333), (800, 1201)),   # edge order of scale does not matter; 1201.2
    ((100, 100), (300, 300), (300, 300)),
])
def test_resize_rescale_rule_hand_worked(hw, scale, new_hw):
    r = Resize(img_scale=scale)(dict(img=np.zeros(hw + (3,), np.uint8)))
    assert r["img_shape"][:2] == new_hw
    assert r["img"].shape[:2] == new_hw


def test_resize_without_keep_ratio_goes_to_exact_size():
    r = Resize(img_scale=(300, 300), keep_ratio=False)(_load())
    assert r["img_shape"] == (300, 300, 3)
    np.testing.assert_array_equal(r["scale_factor"],
                                  np.float32([300 / 640, 300 / 427, 300 / 640, 300 / 427]))
    ref = cv2.resize(cv2.imread(DEMO), (300, 300), interpolation=cv2.INTER_LINEAR)
    assert np.array_equal(r["img"], ref)


def test_resize_multiscale_range_and_value_draw_within_the_given_scales():
    img = np.zeros((100, 100, 3), np.uint8)
    step = Resize(img_scale=[(1333, 640), (1333, 800)], multiscale_mode="range")
    rng = np.random.default_rng(0)
    shorts = set()
    for _ in range(60):
        r = step(dict(img=img, rng=rng))
        long_edge, short_edge = r["scale"]
        assert long_edge == 1333 and 640 <= short_edge <= 800
        assert r["img_shape"][:2] == (short_edge, short_edge)  # square: short edge limits
        shorts.add(short_edge)
    assert len(shorts) > 20  # really random
    step = Resize(img_scale=[(1333, 640), (1333, 800)], multiscale_mode="value")
    seen = {step(dict(img=img, rng=rng))["scale"] for _ in range(30)}
    assert seen == {(1333, 640), (1333, 800)}


def test_resize_scale_from_results_and_bad_configs():
    r = Resize(keep_ratio=True)(dict(img=np.zeros((10, 20, 3), np.uint8), scale=(40, 40)))
    assert r["img_shape"] == (20, 40, 3)
    r = Resize()(dict(img=np.zeros((10, 20, 3), np.uint8), scale=1.5))  # a factor
    assert r["img_shape"] == (15, 30, 3)
    with pytest.raises(ConfigError):
        Resize()(dict(img=np.zeros((10, 20, 3), np.uint8)))
    with pytest.raises(ConfigError):
        Resize(img_scale=(10, 10), interpolation="magic")


def test_resize_masks_follow_the_image():
    masks = np.zeros((1, 10, 20), np.uint8)
    masks[0, 2:4, 5:10] = 1
    r = Resize(img_scale=(40, 40))(dict(img=np.zeros((10, 20, 3), np.uint8), gt_masks=masks,
                                        mask_fields=["gt_masks"]))
    assert r["gt_masks"].shape == (1, 20, 40)
    # nearest neighbour doubles both sides of the 2x5 block
    assert np.array_equal(np.argwhere(r["gt_masks"][0]).min(0), [4, 10])
    assert np.array_equal(np.argwhere(r["gt_masks"][0]).max(0), [7, 19])
    assert int(r["gt_masks"].sum()) == 4 * 10


# ---------------------------------------------------------------- flip
def test_flip_boxes_hand_worked():
    img = np.arange(50 * 100 * 3, dtype=np.uint8).reshape(50, 100, 3)
    boxes = np.array([[10, 20, 30, 40], [0, 0, 100, 50]], np.float32)

    def run(direction):
        return RandomFlip(flip_ratio=1.0, direction=direction)(
            dict(img=img, img_shape=img.shape, gt_bboxes=boxes.copy(), bbox_fields=["gt_bboxes"]))

    r = run("horizontal")
    assert np.array_equal(r["gt_bboxes"], [[70, 20, 90, 40], [0, 0, 100, 50]])
    assert np.array_equal(r["img"], img[:, ::-1]) and r["flip_direction"] == "horizontal"
    r = run("vertical")
    assert np.array_equal(r["gt_bboxes"], [[10, 10, 30, 30], [0, 0, 100, 50]])
    assert np.array_equal(r["img"], img[::-1])
    r = run("diagonal")
    assert np.array_equal(r["gt_bboxes"], [[70, 10, 90, 30], [0, 0, 100, 50]])


def test_flip_ratio_and_reproducibility():
    img = np.zeros((4, 4, 3), np.uint8)
    assert not RandomFlip(flip_ratio=0.0)(dict(img=img, img_shape=img.shape))["flip"]
    never = RandomFlip(flip_ratio=None)(dict(img=img, img_shape=img.shape))
    assert never["flip"] is False and never["flip_direction"] is None

    def draws(seed):
        rng = np.random.default_rng(seed)
        return [RandomFlip(0.5)(dict(img=img, img_shape=img.shape, rng=rng))["flip"]
                for _ in range(400)]

    a, b = draws(1), draws(1)
    assert a == b
    assert 150 < sum(a) < 250  # binomial(400, .5): 6 sigma either side
    np.random.seed(5)
    c = [RandomFlip(0.5)(dict(img=img, img_shape=img.shape))["flip"] for _ in range(50)]
    np.random.seed(5)
    d = [RandomFlip(0.5)(dict(img=img, img_shape=img.shape))["flip"] for _ in range(50)]
    assert c == d  # without a per-sample rng the global numpy seed decides


def test_preset_flip_decision_is_obeyed():
    img = np.zeros((4, 6, 3), np.uint8)
    r = RandomFlip(flip_ratio=0.0)(dict(img=img, img_shape=img.shape, flip=True,
                                        flip_direction="horizontal",
                                        gt_bboxes=np.float32([[0, 0, 1, 1]]),
                                        bbox_fields=["gt_bboxes"]))
    assert np.array_equal(r["gt_bboxes"], [[5, 0, 6, 1]])


# ---------------------------------------------------------------- normalize / pad
def test_normalize_matches_float64_reference_and_the_3x_formula():
    rng = np.random.default_rng(0)
    img = rng.integers(0, 256, size=(37, 53, 3), dtype=np.uint8)
    mean, std = [123.675, 116.28, 103.53], [58.395, 57.12, 57.375]
    r = Normalize(mean, std, to_rgb=True)(dict(img=img))
    out = r["img"]
    assert out.dtype == np.float32 and out.shape == img.shape
    ref64 = (img[..., ::-1].astype(np.float64) - np.array(mean)) / np.array(std)
    np.testing.assert_allclose(out, ref64, rtol=1e-6, atol=1e-6)
    # MMDetection 3.x DetDataPreprocessor: float32 torch (x[[2,1,0]] - mean) / std
    t = torch.from_numpy(img).permute(2, 0, 1)[[2, 1, 0]].float()
    t = (t - torch.tensor(mean).view(-1, 1, 1)) / torch.tensor(std).view(-1, 1, 1)
    assert torch.equal(torch.from_numpy(out).permute(2, 0, 1), t)
    np.testing.assert_array_equal(r["img_norm_cfg"]["mean"], np.float32(mean))
    bgr = Normalize([103.53, 116.28, 123.675], [1, 1, 1], to_rgb=False)(dict(img=img))["img"]
    np.testing.assert_allclose(bgr, img - np.array([103.53, 116.28, 123.675]), atol=1e-4)


def test_pad_shapes_and_content():
    img = np.full((427, 640, 3), 7, np.uint8)
    masks = np.ones((2, 427, 640), np.uint8)
    r = Pad(size_divisor=32)(dict(img=img, gt_masks=masks, mask_fields=["gt_masks"]))
    assert r["pad_shape"] == (448, 640, 3) and r["img"].shape == (448, 640, 3)
    assert (r["img"][:427] == 7).all() and (r["img"][427:] == 0).all()
    assert r["gt_masks"].shape == (2, 448, 640) and r["gt_masks"][:, 427:].sum() == 0
    r = Pad(size=(500, 700), pad_val=3)(dict(img=img.astype(np.float32)))
    assert r["pad_shape"] == (500, 700, 3) and (r["img"][:, 640:] == 3).all()
    r = Pad(size_divisor=32)(dict(img=np.zeros((64, 33, 3), np.float32)))
    assert r["pad_shape"] == (64, 64, 3)
    with pytest.raises(ConfigError):
        Pad()


# ---------------------------------------------------------------- formatting / compose / TTA
def _train_like_pipeline():
    return [dict(type=LoadImageFromNDArray), dict(type=Resize, img_scale=(64, 48)),
            dict(type=RandomFlip, flip_ratio=0.0),
            dict(type=Normalize, mean=[0, 0, 0], std=[1, 1, 1], to_rgb=False),
            dict(type=Pad, size_divisor=32), dict(type=DefaultFormatBundle),
            dict(type=Collect, keys=["img"])]


def test_compose_collect_give_exactly_the_contract_meta_keys():
    img = np.random.default_rng(0).integers(0, 255, (30, 40, 3), dtype=np.uint8)
    out = Compose(_train_like_pipeline())(dict(img=img))
    assert set(out) == {"img", "img_metas"}
    assert tuple(out["img_metas"]) == DEFAULT_META_KEYS
    meta = out["img_metas"]
    assert meta["ori_shape"] == (30, 40, 3) and meta["img_shape"] == (48, 64, 3)
    assert meta["pad_shape"] == (64, 64, 3) and meta["flip"] is False and meta["img_id"] == -1
    assert out["img"].shape == (3, 64, 64) and out["img"].dtype == torch.float32
    ref = cv2.resize(img, (64, 48), interpolation=cv2.INTER_LINEAR)
    assert torch.equal(out["img"][:, :48, :64], torch.from_numpy(ref).permute(2, 0, 1).float())


def test_compose_accepts_type_names_and_rejects_unknown_ones():
    step = Compose([dict(type="Pad", size_divisor=8)]).transforms[0]
    assert isinstance(step, Pad) and "size_divisor=8" in repr(step)
    with pytest.raises(ConfigError, match="NoSuchStep"):
        Compose([dict(type="NoSuchStep")])
    with pytest.raises(ConfigError, match="Resize"):
        Compose([dict(type=Resize, bogus=1)])
    with pytest.raises(DataError, match="gt_labels"):
        Collect(keys=["img", "gt_labels"])(dict(img=1, img_shape=(1, 1, 3), ori_shape=(1, 1, 3),
                                                filename="f", ann_info={}))


def test_multiscale_flip_aug_single_and_flipped():
    img = np.random.default_rng(1).integers(0, 255, (30, 40, 3), dtype=np.uint8)
    inner = [dict(type=Resize, keep_ratio=True), dict(type=RandomFlip),
             dict(type=Normalize, mean=[0, 0, 0], std=[1, 1, 1], to_rgb=False),
             dict(type=Pad, size_divisor=32), dict(type=DefaultFormatBundle),
             dict(type=Collect, keys=["img"])]
    load = LoadImageFromNDArray()
    single = MultiScaleFlipAug(inner, img_scale=(80, 60), flip=False)(load(dict(img=img)))
    assert isinstance(single, dict) and set(single) == {"img", "img_metas"}
    assert single["img_metas"]["img_shape"] == (60, 80, 3) and not single["img_metas"]["flip"]
    both = MultiScaleFlipAug(inner, img_scale=(80, 60), flip=True)(load(dict(img=img)))
    assert [o["img_metas"]["flip"] for o in both] == [False, True]
    assert torch.equal(both[1]["img"][:, :60, :80], both[0]["img"][:, :60, :80].flip(-1))
