# Copyright (c) ovatool.vmware contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The controller's half of S3 transfers (boto3, the credentials): uploads the host feeds through presigned URLs.

Runs where the credentials are: in the ova_upload and ova_export action plugins on the Ansible controller, and
in the ``ovatool`` command. The host never gets a key: only URLs signed (SigV4) for one part, or for completing
or aborting one upload, valid ``presign_seconds`` (24 hours by default, less when the credentials end sooner:
``lifetime``). boto3 is imported only here, and only when called. ``resign`` signs an upload's URLs again for
an export that outlives them (storage/urlbook).

export_to_s3 is the whole controller side of ``ova_export`` to ``s3://``: the host's plan (fingerprint, size
bound) against the object's metadata, stale uploads aborted, the upload started and signed, the host's export
run, the object checked; the upload is aborted whatever goes wrong before the host takes it over.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, fields
from typing import Any, Callable, Dict, List, Mapping, Optional, Tuple
from urllib.parse import unquote, urlsplit

from ..defaults import EXPORT_PART_SIZE_MB, PARTS_THREADS, PRESIGN_SECONDS, RETRY_SECONDS
from ..errors import OvatoolError
from .multipart import plan_parts
from .retry import RetryWindow, Transient, retrying, transient_status

MiB = 1024 * 1024

MAX_PRESIGN_SECONDS = 7 * 24 * 3600  # SigV4's limit
FINGERPRINT = "ovatool-fingerprint"  # object metadata: what an exported OVA was made from
# the options of ova_upload and ova_export that only the controller reads (the host never gets them)
CONNECTION_OPTIONS = ("endpoint_url", "access_key", "secret_key", "session_token", "region")
EXPORT_OPTIONS = CONNECTION_OPTIONS + ("part_size_mb", "upload_threads", "presign_seconds")
PLAN_ONLY = ("bound_bytes", "holes", "read_bytes", "objects")  # what the host's plan tells the controller alone


@dataclass(frozen=True)
class S3Settings:
    """The store, the credentials and the shape of the uploads: what the controller alone reads (the modules'
    doc fragment ovatool.vmware.s3, and their part and retry options). Empty credentials: boto3's usual chain."""

    endpoint_url: Optional[str] = None
    access_key: Optional[str] = None
    secret_key: Optional[str] = None
    session_token: Optional[str] = None
    region: Optional[str] = None
    validate_certs: bool = True
    presign_seconds: int = PRESIGN_SECONDS
    part_size_mb: int = EXPORT_PART_SIZE_MB
    upload_threads: int = PARTS_THREADS
    retry_seconds: float = RETRY_SECONDS

    @classmethod
    def from_params(cls, params: Optional[Mapping[str, Any]]) -> "S3Settings":
        """From a module's parameters (or a role's options): the fields they set, ``None`` meaning the default."""
        params = params or {}
        return cls(**{f.name: params[f.name] for f in fields(cls) if params.get(f.name) is not None})


@dataclass(frozen=True)
class ObjectExport:
    """How the controller runs one export into ``s3://``: ``plan()`` asks the host what it would write (the
    module with ``plan_only``), ``run(upload)`` runs the export with the upload it started; ``detached``: ``run``
    only starts it (an async job), which completes or aborts the upload itself."""

    plan: Callable[[], Dict[str, Any]]
    run: Callable[[Dict[str, Any]], Dict[str, Any]]
    force: bool = False
    refresh: bool = False
    read_limit_mbps: float = 0.0
    check_mode: bool = False
    detached: bool = False


def boto3_or_none():
    try:
        import boto3  # pylint: disable=import-outside-toplevel

        return boto3
    except ImportError:
        return None


def split(url: str) -> Tuple[str, str]:
    """``s3://bucket/key`` -> (bucket, key); an empty part means the URL names no object."""
    parts = urlsplit(url)
    return parts.netloc, unquote(parts.path.lstrip("/"))


def client(settings: S3Settings):
    """A boto3 S3 client for the settings' store and credentials, else boto3's usual chain."""
    from botocore.config import Config  # pylint: disable=import-outside-toplevel

    boto3 = boto3_or_none()
    if boto3 is None:
        raise RuntimeError("the boto3 Python package is needed on the controller (or in the execution environment)")
    session = boto3.session.Session(
        aws_access_key_id=settings.access_key, aws_secret_access_key=settings.secret_key,
        aws_session_token=settings.session_token, region_name=settings.region)
    return session.client("s3", endpoint_url=settings.endpoint_url, verify=settings.validate_certs,
                          config=Config(retries={"max_attempts": 5, "mode": "standard"},
                                        signature_version="s3v4"))  # SigV4 URLs: what every region accepts


def head(s3, bucket: str, key: str) -> Optional[Dict[str, Any]]:
    """The object's HEAD, or None when there is no such object."""
    from botocore.exceptions import ClientError  # pylint: disable=import-outside-toplevel

    try:
        return s3.head_object(Bucket=bucket, Key=key)
    except ClientError as exc:
        if str(exc.response.get("Error", {}).get("Code")) in ("404", "NoSuchKey", "NotFound"):
            return None
        raise


def content_type(key: str) -> str:
    return "application/x-virtualbox-ova" if key.lower().endswith(".ova") else "application/octet-stream"


def start(s3, bucket: str, key: str, metadata: Dict[str, str]) -> str:
    return s3.create_multipart_upload(Bucket=bucket, Key=key, Metadata=metadata,
                                      ContentType=content_type(key))["UploadId"]


def credentials_left(s3) -> Optional[float]:
    """Seconds until the client's credentials end, when they are temporary and boto3 knows (an instance role,
    STS, IRSA, SSO); None for long-term keys."""
    credentials = getattr(getattr(s3, "_request_signer", None), "_credentials", None)
    remaining = getattr(credentials, "_seconds_remaining", None)
    if remaining is None or getattr(credentials, "_expiry_time", None) is None:
        return None
    return float(remaining())


def lifetime(s3, wanted: Optional[float] = None) -> int:
    """How long URLs signed now live: ``wanted`` (``presign_seconds``; 24 hours), at most SigV4's 7 days, and
    no longer than the credentials that sign them."""
    seconds = min(float(wanted or PRESIGN_SECONDS), MAX_PRESIGN_SECONDS)
    left = credentials_left(s3)
    if left is not None:
        if left <= 60:
            raise OvatoolError(f"the S3 credentials end in {left:.0f} s: renew them first")
        seconds = min(seconds, left)
    return max(1, int(seconds))


def part_url(s3, ids: Dict[str, str], number: int, seconds: int = PRESIGN_SECONDS) -> str:
    return s3.generate_presigned_url("upload_part", ExpiresIn=seconds, Params=dict(ids, PartNumber=number))


def _upload_ids(bucket: str, key: str, upload_id: str) -> Dict[str, str]:
    return {"Bucket": bucket, "Key": key, "UploadId": upload_id}


def resign(s3, ids: Dict[str, str], numbers: List[int], seconds: int) -> Dict[str, Any]:
    """Fresh URLs for parts ``numbers``, for completing and aborting the upload ``ids`` (Bucket, Key, UploadId),
    and for reading and deleting its object once complete (an image set reads back what it hashes, and removes
    what it completed when a later member fails), valid ``seconds``: a renewal file's content (storage/urlbook)."""
    target = {"Bucket": ids["Bucket"], "Key": ids["Key"]}
    return {"upload_id": ids["UploadId"], "expires": time.time() + seconds,
            "parts": {str(number): part_url(s3, ids, number, seconds) for number in numbers},
            "complete_url": s3.generate_presigned_url("complete_multipart_upload", ExpiresIn=seconds, Params=ids),
            "abort_url": s3.generate_presigned_url("abort_multipart_upload", ExpiresIn=seconds, Params=ids),
            "get_url": s3.generate_presigned_url("get_object", ExpiresIn=seconds, Params=target),
            "delete_url": s3.generate_presigned_url("delete_object", ExpiresIn=seconds, Params=target)}


def presigned_upload(s3, ids: Dict[str, str], parts: int, seconds: int = PRESIGN_SECONDS) -> Dict[str, Any]:
    """Everything the host needs to write the upload ``ids`` and to end it either way, and to have its URLs
    renewed (bucket, key, upload id, when they expire and their lifetime)."""
    signed = resign(s3, ids, list(range(1, parts + 1)), seconds)
    return {"urls": [signed["parts"][str(number)] for number in range(1, parts + 1)],
            "complete_url": signed["complete_url"], "abort_url": signed["abort_url"],
            "get_url": signed["get_url"], "delete_url": signed["delete_url"],
            "bucket": ids["Bucket"], "key": ids["Key"], "upload_id": ids["UploadId"],
            "expires": signed["expires"], "lifetime": seconds}


def presigned_get(s3, url: str, seconds: Optional[float] = None) -> str:
    """A GET URL for the object ``s3://bucket/key`` (range requests work on it), valid ``seconds`` (24 hours) or
    until the credentials end; raises
    OvatoolError when there is no such object."""
    bucket, key = split(url)
    if not bucket or not key:
        raise OvatoolError("an S3 object is s3://bucket/key", url)
    if head(s3, bucket, key) is None:
        raise OvatoolError("no such object", url)
    return s3.generate_presigned_url("get_object", ExpiresIn=lifetime(s3, seconds),
                                     Params={"Bucket": bucket, "Key": key})


def abort(s3, bucket: str, key: str, upload_id: str) -> None:
    """Abort, quietly: the upload may be gone already (the host aborted or completed it)."""
    from botocore.exceptions import BotoCoreError, ClientError  # pylint: disable=import-outside-toplevel

    try:
        s3.abort_multipart_upload(Bucket=bucket, Key=key, UploadId=upload_id)
    except (BotoCoreError, ClientError):
        pass


def abort_stale(s3, bucket: str, key: str) -> List[str]:
    """Abort the incomplete uploads to exactly ``key`` (left by a run that was killed or lost its host); returns
    when each had been started."""
    found = []
    listed = s3.list_multipart_uploads(Bucket=bucket, Prefix=key)
    for upload in listed.get("Uploads", []):
        if upload.get("Key") == key:
            abort(s3, bucket, key, upload["UploadId"])
            found.append(str(upload.get("Initiated", "at an unknown time")))
    return found


def call(window: RetryWindow, what: str, request: Callable[[], Any]) -> Any:
    """``request()`` (a boto3 call) within the retry window: no connection, a timeout or a 5xx/408/429 answer
    is tried again until the store has not answered for the window; any other answer is raised as it is."""
    from botocore.exceptions import (  # pylint: disable=import-outside-toplevel
        ClientError, ConnectionError as NoConnection, HTTPClientError)

    def attempt() -> Any:
        try:
            return request()
        except (NoConnection, HTTPClientError) as exc:  # no connection, a connection closed, a timeout
            raise Transient(str(exc)) from None
        except ClientError as exc:
            if transient_status(int(exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode") or 0)):
                raise Transient(str(exc)) from None
            raise

    return retrying(window, what, attempt)


def _failed(result: Dict[str, Any]) -> bool:
    return bool(result.get("failed"))


def _fits_in(seconds: int, read_bytes: int, read_limit_mbps: float) -> None:
    """A synchronous export gets no fresh URLs: refuse, before a disk is read, one that cannot end in time."""
    if read_limit_mbps <= 0 or not read_bytes:
        return
    least = read_bytes / (read_limit_mbps * 1000 * 1000)
    if least > seconds:
        raise OvatoolError(
            f"the upload's URLs live {seconds} s (presign_seconds, or the end of the S3 credentials), but reading "
            f"{read_bytes} bytes at read_limit_mbps {read_limit_mbps:g} takes at least {least:.0f} s, and a "
            "synchronous export cannot renew its URLs: run it asynchronously (async and ova_export_wait, as the "
            "export role does), or raise presign_seconds or read_limit_mbps")


def _objects(planned: Dict[str, Any]) -> List[Tuple[str, int, int]]:
    """(URL, size bound, holes) of every object the export writes: the OVA, then its images and their sums."""
    return [(planned["dest"], int(planned["bound_bytes"]), int(planned["holes"]))] + [
        (str(o["url"]), int(o["bound_bytes"]), int(o["holes"])) for o in planned.get("objects") or []]


def _state(s3, window: RetryWindow, urls: List[str], stamp: str) -> Tuple[bool, bool]:
    """(the OVA exists, every object exists and was made from ``stamp``)."""
    found = []
    for url in urls:
        bucket, key = split(url)
        found.append(call(window, f"S3 HEAD of {url}", lambda b=bucket, k=key: head(s3, b, k)))
    current = all(f is not None and f.get("Metadata", {}).get(FINGERPRINT) == stamp for f in found)
    return found[0] is not None, current


def _written_sizes(answer: Dict[str, Any]) -> Dict[str, int]:
    """What the host says it wrote: URL -> size."""
    sizes = {answer["dest"]: answer.get("size")}
    sizes.update({image["path"]: image["size"] for image in answer.get("images") or []})
    if answer.get("sums"):
        sizes[answer["sums"]] = answer.get("sums_size")
    return sizes


def export_to_s3(settings: S3Settings, job: ObjectExport) -> Dict[str, Any]:
    """The controller's side of an export to ``s3://``; returns ova_export's result (a failure as ``failed`` and
    ``msg``). ``job.run`` returns the host's result (a failure as ``failed``/``msg``, or raised as OvatoolError).

    With ``images``, every image and the sums are objects of their own beside the OVA, each its own multipart
    upload, handed to the host under ``upload.images`` (in the order of the plan's ``objects``).
    """
    from botocore.exceptions import BotoCoreError, ClientError  # pylint: disable=import-outside-toplevel

    planned = job.plan()
    if _failed(planned):
        return planned
    dest = planned["dest"]
    result = {k: v for k, v in planned.items() if k not in PLAN_ONLY + ("changed", "msg")}
    objects = _objects(planned)
    for url, _bound, _holes in objects:
        bucket, key = split(url)
        if not bucket or not key:
            return dict(result, failed=True, msg=f"{url!r}: an S3 destination is s3://bucket/key or s3://bucket/prefix/")
    s3 = None
    started: List[Tuple[str, str, str]] = []  # (bucket, key, upload id) the host has not taken over
    window = RetryWindow(settings.retry_seconds)
    try:
        s3 = client(settings)
        exists, current = _state(s3, window, [url for url, _b, _h in objects], planned["fingerprint"])
        if exists and not job.force:
            if not job.refresh:
                return dict(result, changed=False, msg=f"{dest} exists; use force to overwrite it")
            if current:
                return dict(result, changed=False, current=True, msg=f"{dest} is current: the sources have not changed")
            result["stale"] = True
        if job.check_mode:
            return dict(result, changed=True, msg=planned.get("msg"))
        warnings = []
        seconds = lifetime(s3, settings.presign_seconds)
        if not job.detached:
            _fits_in(seconds, int(planned.get("read_bytes") or 0), job.read_limit_mbps)
        uploads = []
        for url, bound, holes in objects:
            bucket, key = split(url)
            warnings += [f"aborted an incomplete upload to {url} started {when}, left by an export that was killed "
                         "or lost its host" for when in call(window, "listing incomplete uploads",
                                                             lambda b=bucket, k=key: abort_stale(s3, b, k))]
            part_size, count = plan_parts(bound, settings.part_size_mb * MiB, holes)
            upload_id = call(window, f"starting the upload of {url}", lambda b=bucket, k=key: start(
                s3, b, k, {FINGERPRINT: planned["fingerprint"]}))
            started.append((bucket, key, upload_id))
            uploads.append(dict(presigned_upload(s3, _upload_ids(bucket, key, upload_id), count, seconds),
                                part_size=part_size, fingerprint=planned["fingerprint"], renewable=job.detached,
                                threads=settings.upload_threads, validate_certs=settings.validate_certs))
        upload = dict(uploads[0], images=uploads[1:]) if len(uploads) > 1 else uploads[0]
        answer = job.run(upload)
        if warnings:
            answer["warnings"] = list(answer.get("warnings") or []) + warnings
        if _failed(answer):
            return dict(result, **answer)
        if job.detached:
            started = []  # the job on the host completes the uploads, or aborts them
            return dict(result, **answer)
        sizes = _written_sizes(answer)
        for url, _bound, _holes in objects:
            bucket, key = split(url)
            written = call(window, f"S3 HEAD of {url}", lambda b=bucket, k=key: head(s3, b, k))
            if written is None:
                return dict(result, failed=True, msg=f"after the export, {url} is missing")
            if written["ContentLength"] != sizes.get(url) \
                    or written.get("Metadata", {}).get(FINGERPRINT) != planned["fingerprint"]:
                return dict(result, failed=True, msg=f"after the export, {url} has {written['ContentLength']} bytes "
                                                     f"and fingerprint {written.get('Metadata', {}).get(FINGERPRINT)}"
                                                     f", where the host wrote {sizes.get(url)} bytes from "
                                                     f"{planned['fingerprint']}")
        started = []
        return dict(result, **answer)
    except (BotoCoreError, ClientError, RuntimeError) as exc:
        return dict(result, failed=True, msg=f"S3 export to {dest} failed: {exc}")
    except OvatoolError as exc:
        return dict(result, failed=True, msg=str(exc))
    finally:
        for bucket, key, upload_id in started:  # the host failed, or never started: nothing stays behind
            if s3 is not None:
                abort(s3, bucket, key, upload_id)


class Renewer:
    """The controller's half of renewing the URLs of asynchronous exports (ova_export_wait): for each job whose
    progress file reports an ``upload`` (storage/urlbook), sign again once half of the URLs' lifetime has passed."""

    def __init__(self, settings: Optional[S3Settings] = None) -> None:
        self.settings = settings or S3Settings()
        self.s3 = None
        self.renewed: Dict[str, float] = {}  # job id and upload id: when the URLs last handed to it end

    def due(self, jid: str, upload: Optional[Dict[str, Any]], now: float) -> bool:
        if not isinstance(upload, dict) or not upload.get("lifetime") or not upload.get("expires"):
            return False
        expires = max(float(upload["expires"]), self.renewed.get(f"{jid}:{upload.get('upload_id')}", 0.0))
        return now >= expires - float(upload["lifetime"]) / 2

    def renew(self, jid: str, upload: Dict[str, Any]) -> Dict[str, Any]:
        """Fresh URLs for the parts ``upload`` has not sent, and for completing and aborting it (a renewal
        file's content); raises OvatoolError, or boto3's errors, when they cannot be signed."""
        if self.s3 is None:
            try:
                self.s3 = client(self.settings)
            except RuntimeError as exc:
                raise OvatoolError(str(exc)) from None
        parts = int(upload["parts"])
        numbers = sorted({int(n) for n in upload.get("held") or []} | set(range(int(upload["next"]), parts + 1)))
        ids = _upload_ids(str(upload["bucket"]), str(upload["key"]), str(upload["upload_id"]))
        signed = resign(self.s3, ids, [n for n in numbers if 1 <= n <= parts], lifetime(self.s3, upload["lifetime"]))
        self.renewed[f"{jid}:{upload['upload_id']}"] = signed["expires"]
        return signed
