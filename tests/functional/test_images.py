# Copyright (c) ovatool.vmware contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Images beside the OVA from the same read (qcow2, VHDX, fixed VHD, raw), each proven by qemu-img: check, info,
and compare against the source disk's own bytes."""
from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import tarfile
import time

import pytest

from support import ovacheck, vmfactory
from support.ansiblerun import export_all
from support.sources import fails_cleanly, snapshot
from ansible_collections.ovatool.vmware.plugins.module_utils._ovatool.errors import OvatoolError
from ansible_collections.ovatool.vmware.plugins.module_utils._ovatool.export.run import ExportOptions, export_vm

MiB = 1024 * 1024
ALL = ["qcow2", "vhdx", "vhd", "raw"]
QEMU = {"qcow2": "qcow2", "vhdx": "vhdx", "vhd": "vpc", "raw": "raw"}


def assert_image(path: str, image: str, raw: str) -> None:
    """qemu-img check (where qemu has one), info (format, size) and compare with the source's bytes."""
    fmt = QEMU[image]
    if image in ("qcow2", "vhdx"):
        check = ovacheck.run(["qemu-img", "check", "-f", fmt, path])
        assert check.returncode == 0 and "No errors were found" in check.stdout, check.stdout
    info = json.loads(ovacheck.run(["qemu-img", "info", "--output=json", "-f", fmt, path]).stdout)
    size = os.path.getsize(raw)
    if image == "vhd":
        assert info["virtual-size"] == -(-size // MiB) * MiB, info  # a whole MiB, as Azure takes
        with open(path, "rb") as handle:
            handle.seek(-512, os.SEEK_END)
            footer = handle.read()
        assert footer[:8] == b"conectix" and footer[60:64] == b"\0\0\0\2"  # fixed
        assert os.path.getsize(path) == info["virtual-size"] + 512
    else:
        assert info["virtual-size"] == size, info
    if image == "qcow2":
        assert info["format-specific"]["data"]["compat"] == "1.1" and info["cluster-size"] == 65536, info
    compare = ovacheck.run(["qemu-img", "compare", "-f", "raw", "-F", fmt, raw, path])
    assert compare.returncode == 0 and "Images are identical" in compare.stdout, compare.stdout


def assert_sums(folder: str, result: dict) -> None:
    sums = subprocess.run(["sha256sum", "--strict", "-c", os.path.basename(result["sums"])], cwd=folder,
                          stdout=subprocess.PIPE, stderr=subprocess.STDOUT, universal_newlines=True, check=False)
    assert sums.returncode == 0, sums.stdout
    listed = sorted(line.split(": ")[0] for line in sums.stdout.splitlines())
    assert listed == sorted(os.path.basename(p) for p in result["files"] if p != result["sums"]), listed


def one_disk_vm(tmp_path, raw: str, kind: str) -> str:
    folder = tmp_path / "vm"
    folder.mkdir()
    vmfactory.convert(raw, str(folder / "disk.vmdk"), kind)
    return vmfactory.write_vmx(str(folder / "vm.vmx"), "Image Source", [("scsi0:0", "disk.vmdk")])


@pytest.mark.parametrize("kind,image", [("monolithicSparse", "odd"), ("monolithicFlat", "gappy"),
                                        ("streamOptimized", "odd")])
def test_every_image_from_one_read(tmp_path, images, kind, image):
    """OVA + four images in one pass; 40 MiB + 3 sectors (no whole cluster or block) and 200 MiB with data at
    0, 150 MiB and in the last sector."""
    raw = images[image]
    vmx = one_disk_vm(tmp_path, raw, kind)
    out = tmp_path / "out"
    out.mkdir()
    before = snapshot(os.path.dirname(vmx))
    result = export_vm(ExportOptions(src=vmx, dest=str(out) + "/", images=ALL))
    assert [(i["format"], i["disk"]) for i in result["images"]] == [(f, 1) for f in ALL]
    for entry in result["images"]:
        assert entry["path"] == str(out / f"Image_Source-disk1.{entry['format']}")
        assert entry["size"] == os.path.getsize(entry["path"])
        assert_image(entry["path"], entry["format"], raw)
    ovacheck.assert_same_disk(raw, ovacheck.extract(result["dest"], "Image_Source-disk1.vmdk", str(tmp_path)))
    assert_sums(str(out), result)
    assert snapshot(os.path.dirname(vmx)) == before
    # holes where the disk is zero: the raw image takes about what the disk holds
    if image == "gappy":
        assert os.stat(str(out / "Image_Source-disk1.raw")).st_blocks * 512 < 0.2 * os.path.getsize(raw)


def test_snapshot_chain_and_two_disks(tmp_path, images):
    folder = tmp_path / "vm"
    folder.mkdir()
    vmfactory.convert(images["gappy"], str(folder / "base.vmdk"), "monolithicSparse")
    top = vmfactory.snapshot_child(folder, "base-000001.vmdk", "base.vmdk")
    vmfactory.qemu_io(top, "write -P 0x11 0 1M", "write -z 150M 2M", "write -P 0x33 199M 70k")
    expected = str(tmp_path / "expected.raw")
    vmfactory.run(["qemu-img", "convert", "-O", "raw", top, expected])
    vmfactory.convert(images["odd"], str(folder / "second.vmdk"), "twoGbMaxExtentSparse")
    vmx = vmfactory.write_vmx(str(folder / "two.vmx"), "Two", [("scsi0:0", "base-000001.vmdk"),
                                                               ("scsi0:1", "second.vmdk")])
    out = tmp_path / "out"
    out.mkdir()
    result = export_vm(ExportOptions(src=vmx, dest=str(out) + "/", images=ALL, codec="zlib"))
    assert len(result["images"]) == 8
    for entry in result["images"]:
        assert_image(entry["path"], entry["format"], expected if entry["disk"] == 1 else images["odd"])
    assert_sums(str(out), result)


def test_images_only_and_uncompressed(tmp_path, images):
    """format none: no package, only images and their sums; compression none stores qcow2 clusters as they are."""
    vmx = one_disk_vm(tmp_path, images["odd"], "monolithicSparse")
    out = tmp_path / "out"
    out.mkdir()
    result = export_vm(ExportOptions(src=vmx, dest=str(out), format="none", images=["qcow2", "raw"],
                                     compression="none"))
    assert result["dest"] == str(out / "Image_Source.SHA256SUMS") and result["format"] == "none"
    assert sorted(n for n in os.listdir(out) if not n.startswith(".")) == [
        "Image_Source-disk1.qcow2", "Image_Source-disk1.raw", "Image_Source.SHA256SUMS"]
    info = ovacheck.run(["qemu-img", "check", "-f", "qcow2", str(out / "Image_Source-disk1.qcow2")]).stdout
    assert "0.00% compressed clusters" in info, info
    for entry in result["images"]:
        assert_image(entry["path"], entry["format"], images["odd"])
    assert_sums(str(out), result)


def test_compress_once_keeps_the_ova_valid(tmp_path, images):
    """With qcow2, grains are compressed once with a 4 KiB window; the OVA's streams say so and still read back.
    Without qcow2 the OVA's bytes do not change (zlib-ng: reproducible)."""
    vmx = one_disk_vm(tmp_path, images["odd"], "monolithicSparse")
    plain, both = tmp_path / "plain", tmp_path / "both"
    plain.mkdir()
    both.mkdir()
    first = export_vm(ExportOptions(src=vmx, dest=str(plain) + "/", codec="zlib-ng"))
    again = export_vm(ExportOptions(src=vmx, dest=str(plain) + "/", codec="zlib-ng", force=True, images=["raw"]))
    assert first["digests"] == again["digests"], "an export without qcow2 changed its OVA"
    shared = export_vm(ExportOptions(src=vmx, dest=str(both) + "/", codec="zlib-ng", images=["qcow2"]))
    assert shared["digests"]["Image_Source-disk1.vmdk"] != first["digests"]["Image_Source-disk1.vmdk"]
    vmdk = ovacheck.extract(shared["dest"], "Image_Source-disk1.vmdk", str(tmp_path))
    with open(vmdk, "rb") as handle:
        handle.seek(128 * 512 + 12)  # the first grain record's zlib stream
        assert handle.read(2) in (b"\x48\x0d", b"\x78\x01")  # 4 KiB window (or stored blocks)
    ovacheck.assert_same_disk(images["odd"], vmdk)
    assert_image(shared["images"][0]["path"], "qcow2", images["odd"])


def test_the_set_is_one_export(tmp_path, images):
    """Idempotence, refresh, force and check mode cover the images; a missing image means the set is re-made."""
    vmx = one_disk_vm(tmp_path, images["odd"], "monolithicSparse")
    out = str(tmp_path / "out")
    os.mkdir(out)
    options = dict(src=vmx, dest=out + "/", images=["vhd", "qcow2"], refresh=True)
    planned = export_vm(ExportOptions(check_mode=True, **options))
    assert planned["changed"] and "2 image(s)" in planned["msg"] and os.listdir(out) == []
    first = export_vm(ExportOptions(**options))
    assert first["changed"]
    second = export_vm(ExportOptions(**options))
    assert second["changed"] is False and second.get("current"), second
    os.unlink(os.path.join(out, "Image_Source-disk1.vhd"))
    third = export_vm(ExportOptions(**options))
    assert third["changed"] and third.get("stale"), third
    assert os.path.exists(os.path.join(out, "Image_Source-disk1.vhd"))
    no_refresh = export_vm(ExportOptions(src=vmx, dest=out + "/", images=["vhd", "qcow2"]))
    assert no_refresh["changed"] is False and "exists" in no_refresh["msg"]
    # what an export killed with SIGKILL leaves: its hidden temporary image; the next export removes it
    leftover = os.path.join(out, ".Image_Source-disk1.qcow2.k1ll3d00.partial")
    with open(leftover, "wb") as handle:
        handle.write(b"half an image")
    forced = export_vm(ExportOptions(src=vmx, dest=out + "/", images=["vhd", "qcow2"], force=True))
    assert forced["changed"] and not os.path.exists(leftover)
    assert any(".Image_Source-disk1.qcow2.k1ll3d00.partial" in w for w in forced["warnings"]), forced["warnings"]
    assert_sums(out, forced)


@pytest.mark.parametrize("options,needle", [
    (dict(images=["vmdk"]), "images: vmdk is not an image format"),
    (dict(format="none"), "format none writes no package, only images"),
    (dict(format="none", images=["raw"], dest="s3://bucket/prefix/"), "format none writes images into a folder"),
])
def test_bad_values_fail_before_any_disk_is_read(sparse_vm, options, needle):
    # the disk is not even a VMDK: a message about it would mean it was read
    with open(os.path.join(sparse_vm["folder"], "disk.vmdk"), "r+b") as handle:
        handle.write(b"not a disk")
    if "dest" in options:
        with pytest.raises(OvatoolError) as info:
            export_vm(ExportOptions(src=sparse_vm["vmx"], **options))
        assert needle in str(info.value)
        return
    fails_cleanly(sparse_vm, needle, **options)


def test_sigterm_midway_leaves_no_image(tmp_path):
    vmx = vmfactory.noise_vm(str(tmp_path / "slow"))
    out = tmp_path / "out"
    out.mkdir()
    script = ("import sys;"
              "from ansible_collections.ovatool.vmware.plugins.module_utils._ovatool.export.run import *;"
              "export_vm(ExportOptions(src=sys.argv[1], dest=sys.argv[2], codec='zlib', compression='max',"
              " threads=1, images=['qcow2', 'vhdx', 'vhd', 'raw'], progress=lambda e: print('progress', flush=True)))")
    proc = subprocess.Popen([sys.executable, "-c", script, vmx, str(out) + "/"], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE)
    assert proc.stdout.readline().startswith(b"progress"), "the export did not start"
    time.sleep(0.5)
    assert any(name.endswith(".partial") for name in os.listdir(out)), "no image was being written"
    proc.send_signal(signal.SIGTERM)
    err = proc.communicate(timeout=60)[1]
    assert proc.returncode != 0 and b"stopped by signal SIGTERM" in err, err[-500:]
    assert os.listdir(str(out)) == [], "a partial file was left behind"


def test_export_all_uploads_every_file_of_the_set(tmp_path, images):
    vmx = one_disk_vm(tmp_path, images["odd"], "monolithicSparse")
    extra = {"ovatool_vms": [vmx], "ovatool_output_dir": str(tmp_path / "out"), "ovatool_manage_power": False,
             "ovatool_images": ["qcow2", "vhdx"], "ovatool_upload_dest": f"file://{tmp_path}/shelf/",
             "ovatool_accelerator": False}
    done = export_all(tmp_path, sys.executable, extra)
    assert done.returncode == 0, done.stdout[-3000:]
    names = ["Image_Source-disk1.qcow2", "Image_Source-disk1.vhdx", "Image_Source.SHA256SUMS", "Image_Source.ova"]
    assert sorted(os.listdir(tmp_path / "shelf")) == names
    for name in names:
        with open(tmp_path / "shelf" / name, "rb") as a, open(tmp_path / "out" / name, "rb") as b:
            assert a.read() == b.read(), name
    assert_image(str(tmp_path / "shelf" / names[0]), "qcow2", images["odd"])
    with tarfile.open(str(tmp_path / "shelf" / names[3])) as archive:
        assert archive.getnames()[0] == "Image_Source.ovf"
    again = export_all(tmp_path, sys.executable, extra)  # the set is current: nothing exported, all uploaded
    assert again.returncode == 0, again.stdout[-3000:]
    assert "'exported': []" in again.stdout.replace('"', "'"), again.stdout[-3000:]
    assert sorted(os.listdir(tmp_path / "shelf")) == names


def test_the_command_writes_images(tmp_path, images):
    ovatool = shutil.which("ovatool", path=os.path.dirname(sys.executable))
    if ovatool is None:
        pytest.fail("the ovatool command is not installed (scripts/test.sh runs pip install .)", pytrace=False)
    vmx = one_disk_vm(tmp_path, images["odd"], "monolithicSparse")
    out = tmp_path / "out"
    out.mkdir()
    done = subprocess.run([ovatool, "export", vmx, "-o", f"{out}/", "--format", "none", "--image", "vhdx",
                           "--image", "qcow2", "--json"], capture_output=True, text=True, timeout=300, check=False)
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    assert [image["format"] for image in result["images"]] == ["vhdx", "qcow2"]
    for entry in result["images"]:
        assert_image(entry["path"], entry["format"], images["odd"])
    assert_sums(str(out), result)
    bad = subprocess.run([ovatool, "export", vmx, "-o", f"{out}/", "--format", "none"], capture_output=True,
                         text=True, timeout=300, check=False)
    assert bad.returncode == 1 and "give images" in bad.stderr and "Traceback" not in bad.stderr, bad.stderr
