# Copyright (c) ovatool.vmware contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""``ovatool``: export, inspect, verify and upload from a shell or a pipeline.

Exit codes: 0 success, 1 failure (one line on stderr), 2 bad usage.
"""
from __future__ import annotations

import argparse
import difflib
import json
import os
import shutil
import sys
import time
from dataclasses import replace
from typing import Any, Dict, List, Optional

from .engine import defaults
from .engine.edit import EditOptions, describe, edit_ova
from .engine.errors import MissingLibrary, OvatoolError
from .engine.export.codec import CODECS, PRESETS
from .engine.export.gentle import IONICE_CLASSES
from .engine.export.plan import FORMATS, IMAGE_FORMATS
from .engine.formats.manifest import ALGORITHMS
from .engine.formats.ovf import EXPORT_FLAGS
from .engine.export.run import ExportOptions, export_vm, plan_only
from .engine.info import read_vm_info
from .engine.storage import objects, s3control
from .engine.storage.upload import UploadOptions, upload
from .engine.verify import verify

MB = 1000 * 1000


class PlainProgress:
    """Periodic lines for logs (output not a terminal): at most one every few seconds."""

    def __init__(self, stream, every: float = 5.0) -> None:
        self.stream = stream
        self.every = every
        self.began = time.monotonic()
        self.last = 0.0
        self.last_disk: Optional[str] = None

    def __call__(self, event: Dict[str, Any]) -> None:
        now = time.monotonic()
        disk_finished = event["disk_done"] >= event["disk_total"]
        if event["disk"] == self.last_disk and now - self.last < self.every and not disk_finished:
            return
        self.last, self.last_disk = now, event["disk"]
        elapsed = max(now - self.began, 1e-6)
        rate = event["done_bytes"] / MB / elapsed
        left = (event["total_bytes"] - event["done_bytes"]) / MB / rate if rate > 0 else 0.0
        percent = 100.0 * event["disk_done"] / event["disk_total"] if event["disk_total"] else 100.0
        self.stream.write(f"{event['disk']}: {percent:5.1f}% {event['disk_done'] / MB:,.0f}/"
                          f"{event['disk_total'] / MB:,.0f} MB, {rate:,.0f} MB/s, ETA {left:,.0f}s\n")
        self.stream.flush()

    def close(self) -> None:
        pass


class BarProgress:
    """One tqdm progress_bar per disk, with bytes done, MB/s and ETA (output is a terminal)."""

    def __init__(self, stream) -> None:
        import tqdm  # a dependency of the command only, never of the engine

        self.tqdm = tqdm.tqdm
        self.stream = stream
        self.bars: Dict[str, Any] = {}

    def __call__(self, event: Dict[str, Any]) -> None:
        progress_bar = self.bars.get(event["disk"])
        if progress_bar is None:
            columns = shutil.get_terminal_size((100, 24)).columns
            progress_bar = self.tqdm(total=event["disk_total"], desc=event["disk"], unit="B", unit_scale=True,
                                     unit_divisor=1000, file=self.stream, leave=True,
                                     ncols=max(60, min(columns, 160)))
            self.bars[event["disk"]] = progress_bar
        progress_bar.update(event["disk_done"] - progress_bar.n)

    def close(self) -> None:
        for progress_bar in self.bars.values():
            progress_bar.close()


def make_progress(quiet: bool, stream):
    if quiet:
        return None
    if stream.isatty():
        try:
            return BarProgress(stream)
        except ImportError:
            pass
    return PlainProgress(stream)


def load_spec(path: Optional[str]) -> Optional[Dict[str, Any]]:
    """An appliance spec from a YAML (or JSON) file: the ``appliance`` dict of the module, as ova-compose writes
    its sections."""
    if not path:
        return None
    try:
        with open(path, encoding="utf-8") as handle:
            text = handle.read()
    except OSError as exc:
        raise OvatoolError(f"cannot read the appliance spec: {exc.strerror}", path) from None
    import yaml  # a dependency of the command only, never of the engine

    try:
        spec = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise OvatoolError(f"the appliance spec is not valid YAML: {exc}", path) from None
    if spec is not None and not isinstance(spec, dict):
        raise OvatoolError("the appliance spec must be a mapping of sections", path)
    return spec


def print_appliance(about: Dict[str, Any]) -> None:
    print(f"{about['path']}: {about.get('name') or '(no name)'}")
    for product in about["product_sections"]:
        title = " ".join(str(product[k]) for k in ("product", "version") if product.get(k))
        vendor = f" by {product['vendor']}" if product.get("vendor") else ""
        print(f"  product: {title or '(unnamed)'}{vendor}")
        for prop in product["properties"]:
            value = "(password)" if prop["password"] else "(no default)" if prop["value"] is None else prop["value"]
            extra = "".join(f", {c}={v}" for c, v in prop["values"].items())
            print(f"    {prop['key']} ({prop['type']}{', configurable' if prop['user_configurable'] else ''}): "
                  f"{value}{extra}")
    for config in about["configurations"]:
        print(f"  configuration: {config['id']} ({config['label']}){' default' if config['default'] else ''}")
    for network in about["networks"]:
        print(f"  network: {network['name']}")
    if about["transports"]:
        print(f"  transports: {', '.join(about['transports'])}")
    if about["eulas"]:
        print(f"  EULAs: {len(about['eulas'])}")
    if about["annotation"]:
        print(f"  annotation: {about['annotation']}")


def cmd_info(args: argparse.Namespace) -> int:
    if args.vmx.lower().endswith((".ova", ".ovf")):
        about = describe(args.vmx)
        if args.json:
            print(json.dumps(about, indent=2))
        else:
            print_appliance(about)
        return 0
    info = read_vm_info(args.vmx, allocation=args.allocation)
    if args.json:
        print(json.dumps(info, indent=2))
        return 0
    print(f"{info['name']}  ({info['guest_os']}, {info['cpus']} vCPU, {info['memory_mb']} MiB, "
          f"{info['firmware']}, vmx-{info['hardware_version']:02d})")
    for disk in info["disks"]:
        where = f"{disk['controller']}:{disk['unit']}"
        if disk["missing"]:
            print(f"  {where}  {disk['file_name']}  MISSING")
        elif "error" in disk:
            print(f"  {where}  {disk['file_name']}  ERROR {disk['error']}")
        else:
            allocated = f", {disk['allocated_bytes'] / MB:,.0f} MB allocated" if "allocated_bytes" in disk else ""
            print(f"  {where}  {disk['file_name']}  {disk['create_type']}, "
                  f"{disk['capacity_bytes'] / MB:,.0f} MB capacity{allocated}")
    for nic in info["nics"]:
        print(f"  ethernet{nic['index']}  {nic['type']} on {nic['network']}")
    for warning in info["warnings"]:
        print(f"warning: {warning}", file=sys.stderr)
    return 0


def export_params(args: argparse.Namespace) -> Dict[str, Any]:
    """The command's options as the ova_export module's parameters, under the same names."""
    params = dict(vars(args), src=args.vmx, dest=args.output, export_flags=args.export_flags or (),
                  images=args.images or (), appliance=load_spec(args.appliance),
                  private_key_passphrase=os.environ.get("OVATOOL_KEY_PASSPHRASE"), validate_certs=not args.insecure)
    return params


def cmd_export(args: argparse.Namespace) -> int:
    progress = make_progress(args.quiet or args.json, sys.stderr)
    params = export_params(args)
    options = ExportOptions.from_params(params, check_mode=args.check, progress=progress)
    try:
        if objects.handles(args.output):
            # this process is both sides: it signs the upload (boto3, the usual credential chain) and writes it
            result = s3control.export_to_s3(s3control.S3Settings.from_params(params), s3control.ObjectExport(
                plan=lambda: plan_only(replace(options, progress=None)),
                run=lambda upload: export_vm(replace(options, upload=upload)), force=args.force, refresh=args.refresh,
                read_limit_mbps=args.read_limit_mbps, check_mode=args.check))
            if result.get("failed"):
                raise OvatoolError(result["msg"])
        else:
            result = export_vm(options)
    finally:
        if progress is not None:
            progress.close()
    if args.json:
        print(json.dumps(result, indent=2))
    elif not args.quiet:
        for warning in result.get("warnings", []):
            print(f"warning: {warning}", file=sys.stderr)
        if not result["changed"] or args.check:
            print(result["msg"])
        else:
            what = f"{result['size'] / MB:,.1f} MB, " if result["format"] != "none" else ""
            print(f"{result['dest']}: {what}{len(result['disks'])} disk(s), "
                  f"{result['elapsed_seconds']:.1f}s ({result['throughput_mbps']:,.0f} MB/s, "
                  f"{result['codec']} level {result['compression_level']}, {result['threads']} threads)")
            for image in result.get("images", []):
                print(f"{image['path']}: {image['size'] / MB:,.1f} MB, {image['format']}")
    return 0


def cmd_verify(args: argparse.Namespace) -> int:
    url = None
    if args.ova.lower().startswith("s3://"):  # read where it lies, through a URL signed here (no local copy)
        try:
            settings = s3control.S3Settings(endpoint_url=args.endpoint_url, region=args.region,
                                            validate_certs=not args.insecure)
            url = s3control.presigned_get(s3control.client(settings), args.ova)
        except RuntimeError as exc:
            raise OvatoolError(str(exc)) from None
    result = verify(args.ova, deep=args.deep, require_manifest=args.require_manifest, threads=args.threads, url=url,
                    validate_certs=not args.insecure)
    if args.json:
        print(json.dumps(result, indent=2))
    elif not args.quiet:
        for problem in result["problems"]:
            print(f"problem: {problem}")
        checked = f"{result.get('digests_checked', 0)} digest(s), {len(result.get('disks', []))} disk(s)"
        print(f"{result['path']}: {'OK' if result['ok'] else 'NOT OK'} ({checked}"
              f"{', signature valid' if result.get('signature', {}).get('valid') else ''})")
    if not result["ok"]:
        print(f"ovatool: error: {result['path']}: {len(result['problems'])} problem(s)", file=sys.stderr)
        return 1
    return 0


def cmd_edit(args: argparse.Namespace) -> int:
    result = edit_ova(EditOptions(
        src=args.ova, dest=args.output, appliance=load_spec(args.appliance) or {}, private_key=args.private_key,
        private_key_passphrase=os.environ.get("OVATOOL_KEY_PASSPHRASE"), certificate=args.certificate,
        check_mode=args.check))
    diff = result.pop("diff")
    if args.json:
        print(json.dumps(result, indent=2))
    elif not args.quiet:
        for warning in result.get("warnings", []):
            print(f"warning: {warning}", file=sys.stderr)
        if args.diff and diff["before"] != diff["after"]:
            sys.stdout.writelines(difflib.unified_diff(
                diff["before"].splitlines(True), diff["after"].splitlines(True), diff["before_header"],
                diff["after_header"]))
        print(result.get("msg") or f"{result['dest']}: {result['size'] / MB:,.1f} MB written")
    return 0


def cmd_upload(args: argparse.Namespace) -> int:
    headers = dict(h.split(":", 1) for h in args.header or [])
    result = upload(UploadOptions(
        src=args.file, dest=args.url, force=args.force, validate_certs=not args.insecure,
        endpoint_url=args.endpoint_url, region=args.region, part_size_mb=args.part_size_mb, threads=args.threads,
        private_key=args.private_key, known_hosts=args.known_hosts, host_key_checking=not args.insecure,
        headers={k.strip(): v.strip() for k, v in headers.items()}))
    if args.json:
        print(json.dumps(result, indent=2))
    elif not args.quiet:
        if result["changed"]:
            print(f"{result['url']}: {result['size'] / MB:,.1f} MB in {result['seconds']:.1f}s "
                  f"({result['mbps']:,.0f} MB/s), sha256 {result['sha256']}")
        else:
            print(f"{result['url']}: {result['msg']}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="ovatool", description="Export VMware VMs to OVA appliances, fast.")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True

    info = sub.add_parser("info", help="show a VM's hardware and disks, or what an OVA says about its appliance")
    info.add_argument("vmx", help="path of the .vmx, or of an .ova / .ovf")
    info.add_argument("--allocation", action="store_true", help="also report the bytes an export reads")
    info.add_argument("--json", action="store_true", help="print the vmx_info module's result as JSON")
    info.set_defaults(func=cmd_info)

    export = sub.add_parser("export", help="export a VM to an OVA")
    export.add_argument("vmx", help="path of the .vmx")
    export.add_argument("-o", "--output", required=True,
                        help="the .ova to write, or a folder (then <folder>/<VM name>.ova); or s3://bucket/key.ova, "
                             "s3://bucket/prefix/ (straight into S3, nothing staged; credentials from boto3's chain)")
    export.add_argument("--force", action="store_true", help="overwrite an existing output")
    export.add_argument("--refresh", action="store_true",
                        help="export again when the output exists but the VM's files or the options changed")
    export.add_argument("--endpoint-url", help="S3-compatible endpoint (s3:// output)")
    export.add_argument("--region", help="S3 region (s3:// output)")
    export.add_argument("--part-size-mb", type=int, default=defaults.EXPORT_PART_SIZE_MB,
                        help=f"S3 part size in MiB (s3:// output; default {defaults.EXPORT_PART_SIZE_MB})")
    export.add_argument("--upload-threads", type=int, default=defaults.PARTS_THREADS,
                        help=f"S3 parts on the wire at once (default {defaults.PARTS_THREADS})")
    export.add_argument("--presign-seconds", type=int, default=defaults.PRESIGN_SECONDS,
                        help="life of the upload's presigned URLs (s3:// output; default 86400, less when the "
                             "credentials end sooner); an export that cannot end before them at --read-limit-mbps "
                             "fails before reading")
    export.add_argument("--insecure", action="store_true", help="do not verify the S3 endpoint's TLS certificate")
    export.add_argument("--name", help="name of the virtual system in the OVA (default: the VM's name)")
    export.add_argument("--threads", type=int, default=defaults.THREADS,
                        help="compression threads, 0 = all cores (default)")
    export.add_argument("--compression", default=defaults.COMPRESSION,
                        help=f"{', '.join(PRESETS)} or a level 1..9 (default: {defaults.COMPRESSION})")
    export.add_argument("--codec", default=defaults.CODEC, choices=["auto"] + list(CODECS))
    export.add_argument("--manifest", default=defaults.MANIFEST, choices=list(ALGORITHMS))
    export.add_argument("--format", default=defaults.FORMAT, choices=list(FORMATS),
                        help="one archive, a folder of files, or none (images only)")
    export.add_argument("--image", dest="images", action="append", choices=list(IMAGE_FORMATS),
                        help="also write each disk in this image format beside the package, from the same read "
                             "(repeatable), with <name>.SHA256SUMS")
    export.add_argument("--snapshot", metavar="NAME",
                        help="the disks as the VM's snapshot NAME froze them (works while the VM runs)")
    export.add_argument("--max-hardware-version", type=int, help="cap the vmx-NN hardware version in the OVF")
    export.add_argument("--export-flag", dest="export_flags", action="append", choices=list(EXPORT_FLAGS),
                        help="keep MAC addresses, the BIOS UUID, or the other VMX keys (repeatable)")
    export.add_argument("--private-key", help="PEM RSA key signing the manifest (passphrase: $OVATOOL_KEY_PASSPHRASE)")
    export.add_argument("--certificate", help="PEM certificate of the signer")
    export.add_argument("--include-images", action="store_true", help="carry the CD-ROMs' ISO files in the OVA")
    export.add_argument("--nice", type=int, default=defaults.NICE,
                        help=f"CPU niceness added for the export (default {defaults.NICE})")
    export.add_argument("--ionice", default=defaults.IONICE, choices=list(IONICE_CLASSES),
                        help="I/O class of the export on Linux (default best-effort at its lowest level)")
    export.add_argument("--read-limit-mbps", type=float, default=defaults.READ_LIMIT_MBPS,
                        help="read at most this many MB/s (0: no limit)")
    export.add_argument("--appliance", metavar="FILE",
                        help="appliance spec (YAML): product, properties, EULA, configurations... (ova-compose keys)")
    export.add_argument("--check", action="store_true", help="only say what would be done")
    export.add_argument("--json", action="store_true", help="print the ova_export module's result as JSON")
    export.add_argument("-q", "--quiet", action="store_true", help="print nothing on success")
    export.set_defaults(func=cmd_export)

    check = sub.add_parser("verify", help="check an OVA (or an OVF and its files)")
    check.add_argument("ova", help="an .ova, an .ovf with its files beside it, or s3://bucket/key.ova")
    check.add_argument("--endpoint-url", help="S3-compatible endpoint (s3://; credentials from boto3's chain)")
    check.add_argument("--region", help="S3 region")
    check.add_argument("--insecure", action="store_true", help="do not verify the S3 endpoint's TLS certificate")
    check.add_argument("--deep", action="store_true", help="also inflate every grain of every disk")
    check.add_argument("--require-manifest", action="store_true", help="fail when there is no .mf")
    check.add_argument("--threads", type=int, default=defaults.THREADS)
    check.add_argument("--json", action="store_true", help="print the ova_verify module's result as JSON")
    check.add_argument("-q", "--quiet", action="store_true")
    check.set_defaults(func=cmd_verify)

    stamp = sub.add_parser("edit", help="apply an appliance spec to an existing OVA (no recompression)")
    stamp.add_argument("ova")
    stamp.add_argument("--appliance", metavar="FILE", required=True, help="appliance spec (YAML), as for export")
    stamp.add_argument("-o", "--output", help="write the result here (default: replace the OVA atomically)")
    stamp.add_argument("--private-key", help="PEM RSA key signing the new manifest (passphrase: $OVATOOL_KEY_PASSPHRASE)")
    stamp.add_argument("--certificate", help="PEM certificate of the signer")
    stamp.add_argument("--check", action="store_true", help="only say whether it would change")
    stamp.add_argument("--diff", action="store_true", help="print the descriptor's changes")
    stamp.add_argument("--json", action="store_true", help="print the ova_edit module's result as JSON")
    stamp.add_argument("-q", "--quiet", action="store_true")
    stamp.set_defaults(func=cmd_edit)

    send = sub.add_parser("upload", help="upload a file to s3://, sftp://, https://, http:// or file://",
                          epilog="Credentials: S3 from boto3's usual chain (AWS_ACCESS_KEY_ID, profiles...), "
                                 "SFTP from --private-key, HTTP from user:password in the URL.")
    send.add_argument("file")
    send.add_argument("url")
    send.add_argument("--force", action="store_true", help="upload even when the destination is identical")
    send.add_argument("--endpoint-url", help="S3-compatible endpoint")
    send.add_argument("--region")
    send.add_argument("--part-size-mb", type=int, default=defaults.UPLOAD_PART_SIZE_MB)
    send.add_argument("--threads", type=int, default=defaults.UPLOAD_THREADS)
    send.add_argument("--private-key", help="SFTP private key file")
    send.add_argument("--known-hosts", help="extra known_hosts file for SFTP")
    send.add_argument("--header", action="append", help="extra HTTP header 'Name: value' (repeatable)")
    send.add_argument("--insecure", action="store_true", help="do not verify TLS certificates or SSH host keys")
    send.add_argument("--json", action="store_true")
    send.add_argument("-q", "--quiet", action="store_true")
    send.set_defaults(func=cmd_upload)
    return parser


def main(argv: Optional[List[str]] = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except OvatoolError as exc:
        text = str(exc)
        if isinstance(exc, MissingLibrary):
            text += " (pip install it into the same environment as ovatool)"
        print(f"ovatool: error: {text}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("ovatool: interrupted; nothing was left at the destination", file=sys.stderr)
        return 1
    except BrokenPipeError:
        return 1


if __name__ == "__main__":
    sys.exit(main())
