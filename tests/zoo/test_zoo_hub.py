"""detzoo.zoo.hub against a local HTTP server: verified, cached, resumed, refused when corrupt."""
import hashlib
import os
import socket
from pathlib import Path

import pytest

from detzoo.errors import CheckpointError, DetzooError
from detzoo.zoo.hub import apply_mirror, checkpoint_dir, download, home_dir


def payload(n=300_000, seed=0):
    """Deterministic bytes that are not a repetition (so a wrong offset changes the hash)."""
    out, block = bytearray(), hashlib.sha256(str(seed).encode()).digest()
    while len(out) < n:
        block = hashlib.sha256(block).digest()
        out += block
    return bytes(out[:n])


def named(data, stem="model"):
    """``<stem>-<first 8 hex of sha256>.pth``: the MMDetection naming the hub verifies."""
    return f"{stem}-{hashlib.sha256(data).hexdigest()[:8]}.pth"


def test_home_and_cache_dir_follow_env(monkeypatch, tmp_path):
    monkeypatch.setenv("DETZOO_HOME", str(tmp_path / "h"))
    assert home_dir() == tmp_path / "h"
    assert checkpoint_dir() == tmp_path / "h" / "checkpoints"
    monkeypatch.delenv("DETZOO_HOME")
    assert home_dir() == Path(os.path.expanduser("~")) / ".cache" / "detzoo"


def test_mirror_rewrites_known_hosts_only(monkeypatch):
    url = "https://download.openmmlab.com/mmdetection/v2.0/rpn/a/b-5525fa2e.pth"
    assert apply_mirror(url, "http://127.0.0.1:9/zoo/") == "http://127.0.0.1:9/zoo/mmdetection/v2.0/rpn/a/b-5525fa2e.pth"
    paddle = "https://paddlemodels.bj.bcebos.com/object_detection/yolov3_darknet.tar"
    assert apply_mirror(paddle, "http://m") == "http://m/object_detection/yolov3_darknet.tar"
    assert apply_mirror("https://example.org/x.pth", "http://m") == "https://example.org/x.pth"
    monkeypatch.setenv("DETZOO_ZOO_MIRROR", "http://env-mirror")
    assert apply_mirror(paddle) == "http://env-mirror/object_detection/yolov3_darknet.tar"
    assert apply_mirror(paddle, "") == paddle  # an explicit empty mirror turns it off


def test_download_verifies_and_caches(file_server, zoo_home):
    data = payload()
    url = file_server.put(f"ckpt/{named(data)}", data)
    path = download(url, progress=False)
    assert path == zoo_home / "checkpoints" / named(data)
    assert path.read_bytes() == data
    assert not path.with_name(path.name + ".part").exists()
    assert len(file_server.requests) == 1
    assert download(url, progress=False) == path  # cached: no second request
    assert len(file_server.requests) == 1


def test_interrupted_download_resumes_with_range(file_server, tmp_path):
    data = payload(400_000, seed=1)
    name = named(data)
    url = file_server.put(name, data)
    file_server.httpd.cut_after[f"/{name}"] = 123_457
    dest = tmp_path / "dest"
    with pytest.raises(DetzooError) as err:
        download(url, dest, progress=False)
    message = str(err.value)
    assert url in message and "resume" in message and "\n" not in message
    assert not (dest / name).exists()  # never a half file under the final name
    assert (dest / f"{name}.part").read_bytes() == data[:123_457]

    path = download(url, dest, progress=False)
    assert file_server.requests[-1] == (f"/{name}", "bytes=123457-")
    assert path.read_bytes() == data
    assert not (dest / f"{name}.part").exists()


def test_server_ignoring_range_restarts_from_zero(file_server, tmp_path):
    data = payload(200_000, seed=2)
    name = named(data)
    url = file_server.put(name, data)
    dest = tmp_path / "dest"
    dest.mkdir()
    (dest / f"{name}.part").write_bytes(b"\0" * 5000)  # a stale partial file of other bytes
    file_server.httpd.ignore_range = True
    path = download(url, dest, progress=False)
    assert file_server.requests == [(f"/{name}", "bytes=5000-")]
    assert path.read_bytes() == data  # appending the 200 body to the .part would break this


def test_complete_part_file_is_finished_after_416(file_server, tmp_path):
    data = payload(50_000, seed=3)
    name = named(data)
    url = file_server.put(name, data)
    dest = tmp_path / "dest"
    dest.mkdir()
    (dest / f"{name}.part").write_bytes(data)  # interrupted between the last byte and the rename
    assert download(url, dest, progress=False).read_bytes() == data


def test_corrupted_file_is_refused_and_removed(file_server, tmp_path):
    data = payload(100_000, seed=4)
    name = named(data)
    corrupt = bytearray(data)
    corrupt[77_777] ^= 0xFF
    url = file_server.put(name, bytes(corrupt))
    dest = tmp_path / "dest"
    with pytest.raises(CheckpointError) as err:
        download(url, dest, progress=False)
    expected = name[-12:-4]
    got = hashlib.sha256(bytes(corrupt)).hexdigest()[:8]
    message = str(err.value)
    assert expected in message and got in message and "\n" not in message
    assert list(dest.iterdir()) == []  # neither the file nor its .part is left


def test_explicit_full_hash_is_checked(file_server, tmp_path):
    data = payload(10_000, seed=5)
    url = file_server.put("plain.tar", data)  # no hash in the name
    good = hashlib.sha256(data).hexdigest()
    assert download(url, tmp_path / "a", sha256=good, progress=False).read_bytes() == data
    with pytest.raises(CheckpointError):
        download(url, tmp_path / "b", sha256="0" * 64, progress=False)
    assert not any((tmp_path / "b").iterdir())


def test_offline_is_one_line_and_leaves_nothing(tmp_path):
    with socket.socket() as s:  # a port with nothing listening
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    url = f"http://127.0.0.1:{port}/x-0123abcd.pth"
    dest = tmp_path / "dest"
    with pytest.raises(DetzooError) as err:
        download(url, dest, progress=False, timeout=5)
    message = str(err.value)
    assert url in message and "--dir" in message and "\n" not in message
    assert list(dest.iterdir()) == []


def test_http_404_names_the_status(file_server, tmp_path):
    with pytest.raises(DetzooError, match="HTTP 404"):
        download(f"{file_server.base}/missing-0123abcd.pth", tmp_path / "dest", progress=False)
    assert list((tmp_path / "dest").iterdir()) == []


def test_mirror_serves_a_known_host(file_server, tmp_path):
    data = payload(20_000, seed=6)
    name = named(data)
    file_server.put(f"mmdetection/v2.0/x/{name}", data)
    url = f"https://download.openmmlab.com/mmdetection/v2.0/x/{name}"
    assert download(url, tmp_path, progress=False, mirror=file_server.base).read_bytes() == data
    assert file_server.requests == [(f"/mmdetection/v2.0/x/{name}", None)]


def test_concurrent_download_is_refused(file_server, tmp_path):
    fcntl = pytest.importorskip("fcntl")
    data = payload(10_000, seed=7)
    name = named(data)
    url = file_server.put(name, data)
    tmp_path.joinpath(f"{name}.part").touch()
    with open(tmp_path / f"{name}.part", "ab") as other:
        fcntl.flock(other.fileno(), fcntl.LOCK_EX)
        with pytest.raises(DetzooError, match="another process"):
            download(url, tmp_path, progress=False)
    assert file_server.requests == []
