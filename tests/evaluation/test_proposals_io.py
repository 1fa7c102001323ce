"""Proposal files: MMDetection's pickle layout, JSON, safe loading, clear errors."""
import json
import os
import pickle

import numpy as np
import pycocotools.mask as mask_util
import pytest
import torch

from detzoo.errors import DataError
from detzoo.evaluation import load_proposals, result_to_mmdet_lists, save_mmdet_results, save_proposals
from detzoo.structures import DetResult


def _results():
    gen = torch.Generator().manual_seed(0)
    out = []
    for n in (5, 0, 3):
        xy = torch.rand(n, 2, generator=gen) * 50
        boxes = torch.cat([xy, xy + 1 + torch.rand(n, 2, generator=gen) * 30], dim=1)
        scores = torch.sort(torch.rand(n, generator=gen), descending=True).values
        out.append(DetResult(boxes, scores, torch.zeros(n, dtype=torch.long)))
    return out


@pytest.mark.parametrize("suffix", [".pkl", ".json"])
def test_round_trip(tmp_path, suffix):
    results = _results()
    path = tmp_path / f"props{suffix}"
    save_proposals(path, results)
    loaded = load_proposals(path)
    assert len(loaded) == 3
    for array, result in zip(loaded, results):
        assert array.dtype == np.float32 and array.shape == (len(result), 5)
        expected = torch.cat([result.boxes, result.scores[:, None]], dim=1).numpy()
        np.testing.assert_allclose(array, expected, rtol=0, atol=1e-6 if suffix == ".json" else 0)
    assert [p.name for p in tmp_path.iterdir()] == [path.name]  # no temp file left behind


def test_pickle_is_mmdetection_layout(tmp_path):
    """What mmdet's LoadProposals reads: a plain list of float32 [N, 5] ndarrays."""
    save_proposals(tmp_path / "p.pkl", _results())
    with open(tmp_path / "p.pkl", "rb") as f:
        raw = pickle.load(f)
    assert type(raw) is list and len(raw) == 3
    assert all(type(a) is np.ndarray and a.dtype == np.float32 and a.ndim == 2 and a.shape[1] == 5 for a in raw)
    assert raw[1].shape == (0, 5)


@pytest.mark.parametrize("protocol", [2, 3, 4, 5])
def test_reads_every_pickle_protocol_and_numpy1_names(tmp_path, protocol):
    arrays = [np.arange(10, dtype=np.float32).reshape(2, 5), np.zeros((0, 5), np.float32)]
    data = pickle.dumps(arrays, protocol=protocol)
    if protocol <= 3:  # text GLOBAL opcodes: written under numpy 1.x they name numpy.core
        data = data.replace(b"numpy._core.", b"numpy.core.")
    (tmp_path / "p.pkl").write_bytes(data)
    loaded = load_proposals(tmp_path / "p.pkl")
    assert [a.tolist() for a in loaded] == [a.tolist() for a in arrays]


class _Evil:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return os.system, (f"touch {self.marker}",)


def test_malicious_pickle_is_refused_without_running(tmp_path):
    marker = tmp_path / "pwned"
    path = tmp_path / "evil.pkl"
    path.write_bytes(pickle.dumps([np.zeros((1, 5), np.float32), _Evil(marker)], protocol=2))
    with pytest.raises(DataError) as info:
        load_proposals(path)
    message = str(info.value)
    assert str(path) in message and "system" in message and "refused" in message
    assert not marker.exists()
    # the same file really would have run the command with a plain pickle.load
    pickle.loads(path.read_bytes())
    assert marker.exists()


@pytest.mark.parametrize("payload", [
    pickle.dumps([eval]),  # noqa: S307 - a builtin global
    pickle.dumps({"a.jpg": np.zeros((1, 5), np.float32)}),  # dict: not a list (mmdet 3.x style)
])
def test_other_globals_and_layouts_are_refused(tmp_path, payload):
    path = tmp_path / "x.pkl"
    path.write_bytes(payload)
    with pytest.raises(DataError, match="x.pkl"):
        load_proposals(path)


@pytest.mark.parametrize("content,fragment", [
    ([[[0, 0, 5, 5, 1]], [[1, 2, 3]]], "image 1"),                      # 3 columns
    ([[[0, 0, 5, 5, 1], [1, 1, 2]]], "image 0"),                        # ragged rows
    ([[[0, 0, 5, 5, float("nan")]]], "not finite"),
    ([[[5, 0, 1, 5, 1]]], "x2 < x1"),
    ({"images": []}, "list"),
    ([["a", "b", "c", "d"]], "image 0"),
])
def test_bad_contents_name_file_and_image(tmp_path, content, fragment):
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(content))
    with pytest.raises(DataError) as info:
        load_proposals(path)
    assert "bad.json" in str(info.value) and fragment in str(info.value)


def test_bad_array_shape_in_pickle_and_missing_file(tmp_path):
    path = tmp_path / "bad.pkl"
    path.write_bytes(pickle.dumps([np.zeros((2, 5), np.float32), np.zeros((2, 6), np.float32)]))
    with pytest.raises(DataError, match=r"bad.pkl: image 1: .*\(2, 6\)"):
        load_proposals(path)
    path.write_bytes(pickle.dumps([np.array([["x"] * 5])]))
    with pytest.raises(DataError, match="dtype"):
        load_proposals(path)
    with pytest.raises(DataError, match="not found"):
        load_proposals(tmp_path / "missing.pkl")
    (tmp_path / "trunc.pkl").write_bytes(pickle.dumps([np.zeros((3, 5), np.float32)])[:-20])
    with pytest.raises(DataError, match="trunc.pkl"):
        load_proposals(tmp_path / "trunc.pkl")


def test_mmdet_results_pickle_groups_by_class(tmp_path):
    boxes = torch.tensor([[0.0, 0, 4, 4], [1, 1, 5, 5], [2, 2, 8, 9]])
    result = DetResult(boxes, torch.tensor([0.9, 0.8, 0.7]), torch.tensor([2, 0, 2]))
    per_class = result_to_mmdet_lists(result, 3)
    assert [a.shape for a in per_class] == [(1, 5), (0, 5), (2, 5)]
    assert per_class[2].tolist() == [[0, 0, 4, 4, pytest.approx(0.9)], [2, 2, 8, 9, pytest.approx(0.7)]]
    masks = torch.zeros(3, 10, 12, dtype=torch.bool)
    masks[1, 2:4, 3:7] = True
    bbox_lists, segm_lists = result_to_mmdet_lists(DetResult(boxes, result.scores, result.labels, masks), 3)
    assert [len(s) for s in segm_lists] == [1, 0, 2] and segm_lists[0][0]["size"] == [10, 12]
    assert mask_util.area(segm_lists[0][0]) == 8
    save_mmdet_results(tmp_path / "r.pkl", [result, result], 3)
    with open(tmp_path / "r.pkl", "rb") as f:
        raw = pickle.load(f)
    assert len(raw) == 2 and [a.shape for a in raw[1]] == [(1, 5), (0, 5), (2, 5)]
    with pytest.raises(DataError, match="label 2"):
        result_to_mmdet_lists(result, 2)
