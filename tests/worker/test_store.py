"""Both store backends against the same expectations: the local directory and S3 (moto's server
mode on a loopback port, a real HTTP S3 endpoint for boto3)."""

from __future__ import annotations

import json
import os
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import boto3
import httpx
import pytest
from moto.server import ThreadedMotoServer

from service.jobs.ids import new_job_id
from service.settings import Settings
from service.store import InvalidKey, LocalStore, S3Store, Store, make_store
from tests.processes import free_port
from tests.worker.conftest import png

TTL = 3600


@pytest.fixture(scope="module")
def s3_endpoint() -> Iterator[str]:
    saved = {k: os.environ.get(k) for k in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_DEFAULT_REGION")}
    os.environ.update(AWS_ACCESS_KEY_ID="testing", AWS_SECRET_ACCESS_KEY="testing", AWS_DEFAULT_REGION="us-east-1")
    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    yield f"http://127.0.0.1:{port}"
    server.stop()
    for k, v in saved.items():
        if v is None:
            os.environ.pop(k, None)
        else:
            os.environ[k] = v


def _s3_settings(endpoint: str, tmp_path: Path, **kw: object) -> Settings:
    bucket = f"test-{uuid.uuid4().hex[:12]}"
    boto3.client("s3", endpoint_url=endpoint).create_bucket(Bucket=bucket)
    values = dict(store="s3", s3_bucket=bucket, s3_endpoint_url=endpoint, s3_prefix="jobs/", job_ttl_s=TTL)
    values.update(kw)
    return Settings(data_dir=tmp_path / "unused", **values)


@pytest.fixture(params=["local", "s3"])
def make(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator:
    def build(**kw: object) -> Store:
        if request.param == "local":
            values: dict = {"store": "local", "data_dir": tmp_path / "data", "job_ttl_s": TTL, **kw}
            return make_store(Settings(**values))
        return make_store(_s3_settings(request.getfixturevalue("s3_endpoint"), tmp_path, **kw))

    yield build


def test_round_trip(make) -> None:
    store = make()
    job_id = new_job_id()
    image, mask = png(), png(mode="L", box=(1, 1, 9, 9))
    store.put_inputs(job_id, {"image": image, "mask": mask})
    assert store.input_names(job_id) == ["image", "mask"]
    assert store.get_input(job_id, "image") == image and store.get_input(job_id, "mask") == mask
    assert store.get_input(job_id, "reference") is None
    assert store.get_result(job_id) is None and store.get_record(job_id) is None

    record = {"seed": 7, "params": {"task": "move", "seed": 7}, "stats": {"seconds": {"total": 1.5}}}
    store.put_result(job_id, b"\x89PNG fake", record)
    assert store.get_result(job_id) == b"\x89PNG fake"
    assert store.get_record(job_id) == record

    store.delete(job_id)
    assert store.get_result(job_id) is None and store.input_names(job_id) == []


def test_unknown_job_reads_as_none(make) -> None:
    store = make()
    job_id = new_job_id()
    assert store.get_input(job_id, "image") is None
    assert store.input_names(job_id) == []
    assert store.get_result(job_id) is None and store.get_record(job_id) is None
    store.delete(job_id)  # deleting nothing is fine


@pytest.mark.parametrize(
    "job_id", ["../etc", "..", "", "ABCDEF" + "0" * 26, "0" * 31, "0" * 33, "0" * 31 + "/", "a/b" + "0" * 29]
)
def test_bad_job_ids_are_rejected_before_any_path(make, job_id: str) -> None:
    store = make()
    for call in (
        lambda: store.put_inputs(job_id, {"image": b"x"}),
        lambda: store.get_input(job_id, "image"),
        lambda: store.input_names(job_id),
        lambda: store.put_result(job_id, b"x", {}),
        lambda: store.get_result(job_id),
        lambda: store.get_record(job_id),
        lambda: store.result_url(job_id),
        lambda: store.delete(job_id),
    ):
        with pytest.raises(InvalidKey):
            call()


@pytest.mark.parametrize("name", ["../image", "result", "image.png", "meta", ""])
def test_bad_input_names_are_rejected(make, name: str) -> None:
    store = make()
    job_id = new_job_id()
    with pytest.raises(InvalidKey):
        store.put_inputs(job_id, {name: b"x"})
    with pytest.raises(InvalidKey):
        store.get_input(job_id, name)


def test_expiry_and_cleanup(make) -> None:
    store = make()
    old, new = new_job_id(), new_job_id()
    store.put_inputs(old, {"image": png()})
    store.put_result(old, b"png", {"seed": 1})
    now = time.time()
    store.put_inputs(new, {"image": png()})
    assert store.cleanup_expired(now=now) == 0
    assert store.get_result(old) == b"png"
    # An hour and a bit later both are past their TTL; cleanup deletes them and reports the count.
    assert store.cleanup_expired(now=now + TTL + 5) == 2
    assert store.get_result(old) is None and store.input_names(new) == []
    assert store.cleanup_expired(now=now + TTL + 5) == 0


def test_expired_job_reads_as_none_before_cleanup(make) -> None:
    store = make(job_ttl_s=0)  # expires the moment it is written
    job_id = new_job_id()
    store.put_inputs(job_id, {"image": png()})
    store.put_result(job_id, b"png", {"seed": 1})
    assert store.get_result(job_id) is None and store.get_record(job_id) is None
    assert store.get_input(job_id, "image") is None and store.input_names(job_id) == []
    assert store.cleanup_expired() == 1


def test_local_writes_are_atomic_and_leave_no_temp_files(tmp_path: Path) -> None:
    store = LocalStore(Settings(data_dir=tmp_path / "data", job_ttl_s=TTL))
    job_id = new_job_id()
    store.put_inputs(job_id, {"image": png()})
    store.put_result(job_id, b"one", {"n": 1})
    store.put_result(job_id, b"two", {"n": 2})
    files = sorted(str(p.relative_to(tmp_path / "data" / job_id)) for p in (tmp_path / "data" / job_id).rglob("*"))
    assert files == ["inputs", "inputs/image.png", "meta.json", "record.json", "result.png"]
    assert store.get_result(job_id) == b"two" and store.get_record(job_id) == {"n": 2}
    meta = json.loads((tmp_path / "data" / job_id / "meta.json").read_text())
    assert meta["expires"] - meta["created"] == TTL


def test_local_cleanup_ages_half_written_jobs_and_ignores_foreign_dirs(tmp_path: Path) -> None:
    root = tmp_path / "data"
    store = LocalStore(Settings(data_dir=root, job_ttl_s=TTL))
    half = root / new_job_id()
    (half / "inputs").mkdir(parents=True)  # a write that died before meta.json
    (root / "not-a-job").mkdir()
    (root / "README").write_text("keep me")
    assert store.cleanup_expired() == 0
    assert store.cleanup_expired(now=time.time() + TTL + 5) == 1
    assert not half.exists() and (root / "not-a-job").is_dir() and (root / "README").is_file()


def test_local_result_url_is_none(tmp_path: Path) -> None:
    store = LocalStore(Settings(data_dir=tmp_path / "data"))
    assert store.result_url(new_job_id()) is None


def test_s3_presigned_url_serves_the_result(s3_endpoint: str, tmp_path: Path) -> None:
    store = make_store(_s3_settings(s3_endpoint, tmp_path, s3_presign=True))
    assert isinstance(store, S3Store)
    job_id = new_job_id()
    store.put_result(job_id, b"\x89PNG result", {"seed": 3})
    url = store.result_url(job_id)
    assert url is not None and job_id in url and "Signature" in url
    response = httpx.get(url)
    assert response.status_code == 200 and response.content == b"\x89PNG result"


def test_s3_without_presign_streams(s3_endpoint: str, tmp_path: Path) -> None:
    store = make_store(_s3_settings(s3_endpoint, tmp_path))
    assert store.result_url(new_job_id()) is None


def test_s3_keys_stay_under_the_prefix(s3_endpoint: str, tmp_path: Path) -> None:
    settings = _s3_settings(s3_endpoint, tmp_path)
    store = make_store(settings)
    job_id = new_job_id()
    store.put_inputs(job_id, {"image": png(), "reference": png()})
    store.put_result(job_id, b"png", {})
    client = boto3.client("s3", endpoint_url=s3_endpoint)
    keys = sorted(o["Key"] for o in client.list_objects_v2(Bucket=settings.s3_bucket)["Contents"])
    assert keys == [
        f"jobs/{job_id}/inputs/image.png",
        f"jobs/{job_id}/inputs/reference.png",
        f"jobs/{job_id}/meta.json",
        f"jobs/{job_id}/record.json",
        f"jobs/{job_id}/result.png",
    ]


def test_s3_requires_a_bucket(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="S3_BUCKET"):
        make_store(Settings(store="s3", data_dir=tmp_path))
