"""The result store: a job's input images, its result PNG and its JSON record, keyed by job id only.

Two backends with one protocol:

    LocalStore  <data_dir>/<job_id>/{meta.json, inputs/<name>.png, result.png, record.json}
    S3Store     s3://<bucket>/<prefix><job_id>/{same names}

`meta.json` holds {"created": unix seconds, "expires": unix seconds} (created + settings.job_ttl_s);
reads of an expired job answer None, and `cleanup_expired` deletes expired jobs' files. Job ids
(32 lowercase hex) and input names (`diffeditor.inputs.INPUT_NAMES`, every task's) are checked
before any path or key is built, so nothing a client sends becomes part of a path. Local writes
are atomic (temp file + rename).
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any, Protocol

from diffeditor.inputs import INPUT_NAMES
from service.jobs.ids import valid_job_id
from service.settings import Settings

log = logging.getLogger("diffeditor.store")

META, RESULT, RECORD, INPUTS = "meta.json", "result.png", "record.json", "inputs"


class InvalidKey(ValueError):
    """A job id or input name that the store refuses to build a path or key from."""


class Store(Protocol):
    def put_inputs(self, job_id: str, files: dict[str, bytes]) -> None: ...
    def get_input(self, job_id: str, name: str) -> bytes | None: ...
    def input_names(self, job_id: str) -> list[str]: ...
    def put_result(self, job_id: str, image_png: bytes, record: dict) -> None: ...
    def get_result(self, job_id: str) -> bytes | None: ...
    def get_record(self, job_id: str) -> dict | None: ...
    def result_url(self, job_id: str) -> str | None: ...
    def delete(self, job_id: str) -> None: ...
    def cleanup_expired(self, now: float | None = None) -> int: ...


def make_store(settings: Settings) -> Store:
    if settings.store == "s3":
        return S3Store(settings)
    return LocalStore(settings)


def check_job_id(job_id: str) -> str:
    if not valid_job_id(job_id):
        raise InvalidKey(f"invalid job id {job_id!r}: expected 32 lowercase hex characters")
    return job_id


def check_input_name(name: str) -> str:
    if name not in INPUT_NAMES:
        raise InvalidKey(f"invalid input name {name!r}: expected one of {sorted(INPUT_NAMES)}")
    return name


def _new_meta(ttl_s: int, now: float | None = None) -> dict[str, float]:
    created = time.time() if now is None else now
    return {"created": created, "expires": created + ttl_s}


# ------------------------------------------------------------------------------------ local


class LocalStore:
    """A directory per job under settings.data_dir (a volume shared by the API and the workers)."""

    def __init__(self, settings: Settings) -> None:
        self.root = Path(settings.data_dir).resolve()
        self.ttl_s = settings.job_ttl_s
        self.root.mkdir(parents=True, exist_ok=True)

    def _dir(self, job_id: str) -> Path:
        return self.root / check_job_id(job_id)

    def _write(self, path: Path, data: bytes) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
        try:
            with os.fdopen(fd, "wb") as f:
                f.write(data)
            os.replace(tmp, path)  # readers see the old file or the whole new one, never a part
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise

    def _meta(self, job_dir: Path) -> dict[str, float] | None:
        try:
            return json.loads((job_dir / META).read_bytes())
        except (FileNotFoundError, ValueError):
            return None

    def _live(self, job_id: str) -> Path | None:
        job_dir = self._dir(job_id)
        meta = self._meta(job_dir)
        if meta is None or meta["expires"] <= time.time():
            return None
        return job_dir

    def _read(self, job_id: str, *parts: str) -> bytes | None:
        job_dir = self._live(job_id)
        if job_dir is None:
            return None
        try:
            return job_dir.joinpath(*parts).read_bytes()
        except FileNotFoundError:
            return None

    def put_inputs(self, job_id: str, files: dict[str, bytes]) -> None:
        job_dir = self._dir(job_id)
        for name in files:
            check_input_name(name)
        if self._meta(job_dir) is None:
            self._write(job_dir / META, json.dumps(_new_meta(self.ttl_s)).encode())
        for name, data in files.items():
            self._write(job_dir / INPUTS / f"{name}.png", data)

    def get_input(self, job_id: str, name: str) -> bytes | None:
        return self._read(job_id, INPUTS, f"{check_input_name(name)}.png")

    def input_names(self, job_id: str) -> list[str]:
        job_dir = self._live(job_id)
        if job_dir is None or not (job_dir / INPUTS).is_dir():
            return []
        return sorted(p.stem for p in (job_dir / INPUTS).glob("*.png") if p.stem in INPUT_NAMES)

    def put_result(self, job_id: str, image_png: bytes, record: dict) -> None:
        job_dir = self._dir(job_id)
        if self._meta(job_dir) is None:
            self._write(job_dir / META, json.dumps(_new_meta(self.ttl_s)).encode())
        self._write(job_dir / RESULT, image_png)
        self._write(job_dir / RECORD, json.dumps(record, indent=2).encode())

    def get_result(self, job_id: str) -> bytes | None:
        return self._read(job_id, RESULT)

    def get_record(self, job_id: str) -> dict | None:
        raw = self._read(job_id, RECORD)
        return None if raw is None else json.loads(raw)

    def result_url(self, job_id: str) -> str | None:
        check_job_id(job_id)
        return None  # streamed through the API

    def delete(self, job_id: str) -> None:
        shutil.rmtree(self._dir(job_id), ignore_errors=True)

    def cleanup_expired(self, now: float | None = None) -> int:
        now = time.time() if now is None else now
        removed = 0
        for job_dir in self.root.iterdir():
            if not job_dir.is_dir() or not valid_job_id(job_dir.name):
                continue  # not ours: leave it alone
            meta = self._meta(job_dir)
            # A directory without meta.json is a write that died half-way: age it by its mtime.
            expires = meta["expires"] if meta else job_dir.stat().st_mtime + self.ttl_s
            if expires <= now:
                shutil.rmtree(job_dir, ignore_errors=True)
                removed += 1
        return removed


# --------------------------------------------------------------------------------------- S3


class S3Store:
    """Objects under s3://settings.s3_bucket/settings.s3_prefix<job_id>/ (any S3-compatible server).

    Credentials and region come from boto3's usual sources (AWS_* environment, config files, roles).
    """

    def __init__(self, settings: Settings, client: Any | None = None) -> None:
        import boto3  # only the S3 backend needs it

        if not settings.s3_bucket:
            raise ValueError("DIFFEDITOR_S3_BUCKET is required with DIFFEDITOR_STORE=s3")
        self.bucket = settings.s3_bucket
        self.prefix = settings.s3_prefix
        self.ttl_s = settings.job_ttl_s
        self.presign = settings.s3_presign
        self.client = client or boto3.client("s3", endpoint_url=settings.s3_endpoint_url)

    def _key(self, job_id: str, *parts: str) -> str:
        return "/".join((f"{self.prefix}{check_job_id(job_id)}", *parts))

    def _put(self, key: str, data: bytes, content_type: str) -> None:
        self.client.put_object(Bucket=self.bucket, Key=key, Body=data, ContentType=content_type)

    def _get(self, key: str) -> bytes | None:
        from botocore.exceptions import ClientError

        try:
            return self.client.get_object(Bucket=self.bucket, Key=key)["Body"].read()
        except ClientError as e:
            if e.response.get("Error", {}).get("Code") in ("NoSuchKey", "404", "NotFound"):
                return None
            raise

    def _meta(self, job_id: str) -> dict[str, float] | None:
        raw = self._get(self._key(job_id, META))
        return None if raw is None else json.loads(raw)

    def _live(self, job_id: str) -> bool:
        meta = self._meta(job_id)
        return meta is not None and meta["expires"] > time.time()

    def _ensure_meta(self, job_id: str) -> None:
        if self._meta(job_id) is None:
            self._put(self._key(job_id, META), json.dumps(_new_meta(self.ttl_s)).encode(), "application/json")

    def put_inputs(self, job_id: str, files: dict[str, bytes]) -> None:
        for name in files:
            check_input_name(name)
        self._ensure_meta(job_id)
        for name, data in files.items():
            self._put(self._key(job_id, INPUTS, f"{name}.png"), data, "image/png")

    def get_input(self, job_id: str, name: str) -> bytes | None:
        key = self._key(job_id, INPUTS, f"{check_input_name(name)}.png")
        return self._get(key) if self._live(job_id) else None

    def input_names(self, job_id: str) -> list[str]:
        if not self._live(job_id):
            return []
        listing = self.client.list_objects_v2(Bucket=self.bucket, Prefix=self._key(job_id, INPUTS, ""))
        names = (obj["Key"].rsplit("/", 1)[-1].removesuffix(".png") for obj in listing.get("Contents", []))
        return sorted(n for n in names if n in INPUT_NAMES)

    def put_result(self, job_id: str, image_png: bytes, record: dict) -> None:
        self._ensure_meta(job_id)
        self._put(self._key(job_id, RESULT), image_png, "image/png")
        self._put(self._key(job_id, RECORD), json.dumps(record, indent=2).encode(), "application/json")

    def get_result(self, job_id: str) -> bytes | None:
        return self._get(self._key(job_id, RESULT)) if self._live(job_id) else None

    def get_record(self, job_id: str) -> dict | None:
        raw = self._get(self._key(job_id, RECORD)) if self._live(job_id) else None
        return None if raw is None else json.loads(raw)

    def result_url(self, job_id: str) -> str | None:
        """A presigned GET of the result (valid until the job expires, at most an hour), or None.

        Computed locally without a request: the API asks only once the job has succeeded.
        """
        key = self._key(job_id, RESULT)
        if not self.presign:
            return None
        return self.client.generate_presigned_url(
            "get_object", Params={"Bucket": self.bucket, "Key": key}, ExpiresIn=min(self.ttl_s, 3600)
        )

    def delete(self, job_id: str) -> None:
        self._delete_keys(self._list(f"{self.prefix}{check_job_id(job_id)}/"))

    def _list(self, prefix: str) -> list[dict]:
        objects: list[dict] = []
        for page in self.client.get_paginator("list_objects_v2").paginate(Bucket=self.bucket, Prefix=prefix):
            objects.extend(page.get("Contents", []))
        return objects

    def _delete_keys(self, objects: list[dict]) -> None:
        for i in range(0, len(objects), 1000):  # DeleteObjects takes at most 1000 keys
            batch = [{"Key": o["Key"]} for o in objects[i : i + 1000]]
            if batch:
                self.client.delete_objects(Bucket=self.bucket, Delete={"Objects": batch, "Quiet": True})

    def cleanup_expired(self, now: float | None = None) -> int:
        now = time.time() if now is None else now
        by_job: dict[str, list[dict]] = {}
        for obj in self._list(self.prefix):
            job_id = obj["Key"][len(self.prefix) :].split("/", 1)[0]
            if valid_job_id(job_id):
                by_job.setdefault(job_id, []).append(obj)
        removed = 0
        for job_id, objects in by_job.items():
            meta = self._meta(job_id)
            if meta is not None:
                expires = meta["expires"]
            else:  # a write that died before meta.json: age it by its oldest object
                expires = min(o["LastModified"].timestamp() for o in objects) + self.ttl_s
            if expires <= now:
                self._delete_keys(objects)
                removed += 1
        return removed
