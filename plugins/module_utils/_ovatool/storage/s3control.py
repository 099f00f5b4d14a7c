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

from typing import Any, Callable, Dict, List, Optional, Tuple
from urllib.parse import unquote, urlsplit

from ..errors import OvatoolError
from .multipart import plan_parts
from .retry import RETRY_SECONDS, RetryWindow, Transient, retrying, transient_status

MiB = 1024 * 1024

PRESIGN_SECONDS = 24 * 3600
MAX_PRESIGN_SECONDS = 7 * 24 * 3600  # SigV4's limit
FINGERPRINT = "ovatool-fingerprint"  # object metadata: what an exported OVA was made from
# the options of ova_upload and ova_export that only the controller reads (the host never gets them)
CONNECTION_OPTIONS = ("endpoint_url", "access_key", "secret_key", "session_token", "region")
EXPORT_OPTIONS = CONNECTION_OPTIONS + ("part_size_mb", "upload_threads", "presign_seconds")
PLAN_ONLY = ("bound_bytes", "holes", "read_bytes")  # what the host's plan tells the controller alone


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


def client(args: Dict[str, Any]):
    """A boto3 S3 client from the options (``endpoint_url``, ``access_key``, ``secret_key``, ``session_token``,
    ``region``, ``validate_certs``), else boto3's usual chain."""
    from botocore.config import Config  # pylint: disable=import-outside-toplevel

    boto3 = boto3_or_none()
    if boto3 is None:
        raise RuntimeError("the boto3 Python package is needed on the controller (or in the execution environment)")
    session = boto3.session.Session(
        aws_access_key_id=args.get("access_key"), aws_secret_access_key=args.get("secret_key"),
        aws_session_token=args.get("session_token"), region_name=args.get("region"))
    return session.client("s3", endpoint_url=args.get("endpoint_url"), verify=bool(args.get("validate_certs", True)),
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
    """Fresh URLs for parts ``numbers`` and for completing and aborting the upload ``ids`` (Bucket, Key,
    UploadId), valid ``seconds``: a renewal file's content (storage/urlbook)."""
    import time  # pylint: disable=import-outside-toplevel

    return {"upload_id": ids["UploadId"], "expires": time.time() + seconds,
            "parts": {str(number): part_url(s3, ids, number, seconds) for number in numbers},
            "complete_url": s3.generate_presigned_url("complete_multipart_upload", ExpiresIn=seconds, Params=ids),
            "abort_url": s3.generate_presigned_url("abort_multipart_upload", ExpiresIn=seconds, Params=ids)}


def presigned_upload(s3, ids: Dict[str, str], parts: int, seconds: int = PRESIGN_SECONDS) -> Dict[str, Any]:
    """Everything the host needs to write the upload ``ids`` and to end it either way, and to have its URLs
    renewed (bucket, key, upload id, when they expire and their lifetime)."""
    signed = resign(s3, ids, list(range(1, parts + 1)), seconds)
    return {"urls": [signed["parts"][str(number)] for number in range(1, parts + 1)],
            "complete_url": signed["complete_url"], "abort_url": signed["abort_url"],
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


def export_to_s3(options: Dict[str, Any], run: Callable[[Dict[str, Any]], Dict[str, Any]], check_mode: bool = False,
                 detached: bool = False) -> Dict[str, Any]:
    """The controller's side of an export to ``s3://``.

    ``options`` are ova_export's (``force``, ``refresh``, ``validate_certs``, EXPORT_OPTIONS); ``run(upload)``
    runs the export on the host with ova_export's ``upload`` option set to ``upload`` and returns its result
    (a failure as ``failed``/``msg``, or raised as OvatoolError). ``detached``: ``run`` only starts the export
    (an async job), which completes or aborts the upload itself. Returns ova_export's result.
    """
    from botocore.exceptions import BotoCoreError, ClientError  # pylint: disable=import-outside-toplevel

    planned = run({"plan": True})
    if _failed(planned):
        return planned
    dest = planned["dest"]
    result = {k: v for k, v in planned.items() if k not in PLAN_ONLY + ("changed", "msg")}
    bucket, key = split(dest)
    if not bucket or not key:
        return dict(result, failed=True, msg=f"{dest!r}: an S3 destination is s3://bucket/key or s3://bucket/prefix/")
    s3 = None
    upload_id = None
    window = RetryWindow(float(options.get("retry_seconds") or RETRY_SECONDS))
    try:
        s3 = client(options)
        found = call(window, f"S3 HEAD of {dest}", lambda: head(s3, bucket, key))
        if found is not None and not options.get("force"):
            if not options.get("refresh"):
                return dict(result, changed=False, msg=f"{dest} exists; use force to overwrite it")
            if found.get("Metadata", {}).get(FINGERPRINT) == planned["fingerprint"]:
                return dict(result, changed=False, current=True, msg=f"{dest} is current: the sources have not changed")
            result["stale"] = True
        if check_mode:
            return dict(result, changed=True, msg=planned.get("msg"))
        warnings = [f"aborted an incomplete upload to {dest} started {when}, left by an export that was killed "
                    "or lost its host" for when in call(window, "listing incomplete uploads",
                                                        lambda: abort_stale(s3, bucket, key))]
        part_size, count = plan_parts(int(planned["bound_bytes"]), int(options.get("part_size_mb") or 32) * MiB,
                                      int(planned["holes"]))
        seconds = lifetime(s3, options.get("presign_seconds"))
        if not detached:
            _fits_in(seconds, int(planned.get("read_bytes") or 0), float(options.get("read_limit_mbps") or 0))
        upload_id = call(window, "starting the upload", lambda: start(s3, bucket, key,
                                                                      {FINGERPRINT: planned["fingerprint"]}))
        upload = dict(presigned_upload(s3, _upload_ids(bucket, key, upload_id), count, seconds),
                      part_size=part_size, fingerprint=planned["fingerprint"], renewable=detached,
                      threads=int(options.get("upload_threads") or 4),
                      validate_certs=bool(options.get("validate_certs", True)))
        answer = run(upload)
        if warnings:
            answer["warnings"] = list(answer.get("warnings") or []) + warnings
        if _failed(answer):
            return dict(result, **answer)
        if detached:
            upload_id = None  # the job on the host completes the upload, or aborts it
            return dict(result, **answer)
        written = call(window, f"S3 HEAD of {dest}", lambda: head(s3, bucket, key))
        upload_id = None
        if written is None or written["ContentLength"] != answer.get("size") \
                or written.get("Metadata", {}).get(FINGERPRINT) != planned["fingerprint"]:
            return dict(result, failed=True, msg=f"after the export, {dest} is missing or its size or fingerprint "
                                                 "differs from what the host wrote")
        return dict(result, **answer)
    except (BotoCoreError, ClientError, RuntimeError) as exc:
        return dict(result, failed=True, msg=f"S3 export to {dest} failed: {exc}")
    except OvatoolError as exc:
        return dict(result, failed=True, msg=str(exc))
    finally:
        if upload_id is not None and s3 is not None:  # the host failed, or never started: nothing stays behind
            abort(s3, bucket, key, upload_id)


class Renewer:
    """The controller's half of renewing the URLs of asynchronous exports (ova_export_wait): for each job whose
    progress file reports an ``upload`` (storage/urlbook), sign again once half of the URLs' lifetime has passed."""

    def __init__(self, options: Optional[Dict[str, Any]] = None) -> None:
        self.options = dict(options or {})
        self.s3 = None
        self.renewed: Dict[str, float] = {}  # job id: when the URLs last handed to it end

    def due(self, jid: str, upload: Optional[Dict[str, Any]], now: float) -> bool:
        if not isinstance(upload, dict) or not upload.get("lifetime") or not upload.get("expires"):
            return False
        expires = max(float(upload["expires"]), self.renewed.get(jid, 0.0))
        return now >= expires - float(upload["lifetime"]) / 2

    def renew(self, jid: str, upload: Dict[str, Any]) -> Dict[str, Any]:
        """Fresh URLs for the parts ``upload`` has not sent, and for completing and aborting it (a renewal
        file's content); raises OvatoolError, or boto3's errors, when they cannot be signed."""
        if self.s3 is None:
            try:
                self.s3 = client(self.options)
            except RuntimeError as exc:
                raise OvatoolError(str(exc)) from None
        parts = int(upload["parts"])
        numbers = sorted({int(n) for n in upload.get("held") or []} | set(range(int(upload["next"]), parts + 1)))
        ids = _upload_ids(str(upload["bucket"]), str(upload["key"]), str(upload["upload_id"]))
        signed = resign(self.s3, ids, [n for n in numbers if 1 <= n <= parts], lifetime(self.s3, upload["lifetime"]))
        self.renewed[jid] = signed["expires"]
        return signed
