# Copyright (c) ovatool.vmware contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""ova_verify on our OVAs, on tampered copies, on hostile archives and on third-party OVAs."""
from __future__ import annotations

import hashlib
import io
import os
import subprocess
import tarfile

import pytest

from support import vmfactory
from ansible_collections.ovatool.vmware.plugins.module_utils._ovatool.export.run import ExportOptions, export_vm
from ansible_collections.ovatool.vmware.plugins.module_utils._ovatool.verify import verify
from support.ansiblerun import adhoc


@pytest.fixture(scope="module")
def good_ova(tmp_path_factory, images):
    folder = tmp_path_factory.mktemp("verify")
    vmfactory.convert(images["odd"], str(folder / "d.vmdk"), "monolithicSparse")
    vmx = vmfactory.write_vmx(str(folder / "v.vmx"), "Verify Me", [("scsi0:0", "d.vmdk")])
    return export_vm(ExportOptions(src=vmx, dest=str(folder / "good.ova")))["dest"]


def members_of(path: str):
    with tarfile.open(path) as archive:
        return [(m.name, archive.extractfile(m).read()) for m in archive.getmembers()]


def write_tar(path: str, members, extra=None) -> str:
    with tarfile.open(path, "w", format=tarfile.GNU_FORMAT) as archive:
        for name, data in members:
            info = tarfile.TarInfo(name)
            info.size = len(data)
            archive.addfile(info, io.BytesIO(data))
        for info in extra or ():
            archive.addfile(info)
    return path


def problems(path: str, **options):
    result = verify(path, **options)
    assert result["ok"] is (not result["problems"])
    return result["problems"]


def test_our_ova_passes_deep(good_ova):
    result = verify(good_ova, deep=True, require_manifest=True)
    assert result["ok"], result["problems"]
    assert result["algorithm"] == "sha256" and result["digests_checked"] == 2
    assert result["disks"][0]["checked"] and result["disks"][0]["grains"] > 10


def test_flipped_byte_in_a_disk(good_ova, tmp_path):
    members = members_of(good_ova)
    disk = bytearray(members[2][1])
    disk[70000] ^= 0xFF  # inside the first grain's compressed data
    bad = write_tar(str(tmp_path / "flip.ova"), [members[0], members[1], (members[2][0], bytes(disk))])
    found = problems(bad, deep=True)
    assert f"member {members[2][0]}: SHA256 differs from the manifest" in found
    assert any("does not inflate" in p or "inflates to" in p for p in found), found


def test_edited_ovf(good_ova, tmp_path):
    members = members_of(good_ova)
    ovf = members[0][1].replace(b"Verify Me", b"Verify Us")
    bad = write_tar(str(tmp_path / "edit.ova"), [(members[0][0], ovf)] + members[1:])
    assert problems(bad) == [f"member {members[0][0]}: SHA256 differs from the manifest"]


def test_missing_member(good_ova, tmp_path):
    members = members_of(good_ova)
    bad = write_tar(str(tmp_path / "missing.ova"), members[:2])
    found = problems(bad)
    assert f"{members[2][0]}: referenced by the OVF but not in the archive" in found
    assert f"{members[2][0]}: listed in the manifest but not in the archive" in found


def test_reordered_archive(good_ova, tmp_path):
    members = members_of(good_ova)
    bad = write_tar(str(tmp_path / "order.ova"), [members[2], members[0], members[1]])
    found = problems(bad)
    assert any("the .ovf is not the first member" in p for p in found), found


def test_truncated_archive(good_ova, tmp_path):
    bad = str(tmp_path / "cut.ova")
    with open(good_ova, "rb") as src, open(bad, "wb") as dst:
        dst.write(src.read(os.path.getsize(good_ova) // 2))
    found = problems(bad)
    assert any("past the end of the archive" in p or "damaged or truncated" in p for p in found), found


def test_truncated_stream_disk_inside_a_valid_tar(good_ova, tmp_path):
    members = members_of(good_ova)
    cut = members[2][1][:len(members[2][1]) // 2 // 512 * 512]
    mf = f"SHA256({members[0][0]})= {hashlib.sha256(members[0][1]).hexdigest()}\n" \
         f"SHA256({members[2][0]})= {hashlib.sha256(cut).hexdigest()}\n"
    bad = write_tar(str(tmp_path / "short.ova"), [members[0], (members[1][0], mf.encode()), (members[2][0], cut)])
    found = problems(bad)
    assert any("ovf:size says" in p for p in found), found
    assert any("no footer" in p for p in found), found


def test_hostile_member_names_and_links(good_ova, tmp_path):
    members = members_of(good_ova)
    link = tarfile.TarInfo("evil-link")
    link.type = tarfile.SYMTYPE
    link.linkname = "/etc/passwd"
    bad = write_tar(str(tmp_path / "hostile.ova"), members + [("../escape.txt", b"x"), ("/abs.txt", b"y"),
                                                              ("dir/nested.txt", b"z")], extra=[link])
    found = problems(bad)
    for name in ("../escape.txt", "/abs.txt", "dir/nested.txt"):
        assert f"member {name!r}: not a plain file name (absolute path, folder or ..)" in found
    assert "member 'evil-link': not a regular file (a link, device or folder)" in found
    assert not os.path.exists(str(tmp_path / "escape.txt"))


@pytest.mark.parametrize("payload", [
    b'<?xml version="1.0"?><!DOCTYPE x [<!ENTITY e SYSTEM "file:///etc/passwd">]><Envelope>&e;</Envelope>',
    b'<?xml version="1.0"?><!DOCTYPE l [<!ENTITY a "aaaaaaaaaa"><!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;">'
    b'<!ENTITY c "&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;">]><Envelope>&c;</Envelope>',
])
def test_ovf_with_entities_is_refused(tmp_path, payload):
    bad = write_tar(str(tmp_path / "xxe.ova"), [("x.ovf", payload)])
    found = problems(bad)
    assert found == ["x.ovf: the OVF declares a DOCTYPE or ENTITY (refused: external entities and entity "
                     "expansion are not allowed in OVF)"]


def test_manifest_forms_and_requirements(good_ova, tmp_path):
    members = members_of(good_ova)
    tag_style = "".join(f"SHA256 ({n}) = {hashlib.sha256(d).hexdigest()}\n" for n, d in (members[0], members[2]))
    ok = write_tar(str(tmp_path / "tag.ova"), [members[0], (members[1][0], tag_style.encode()), members[2]])
    assert problems(ok) == []
    partial = f"SHA1({members[0][0]})= {hashlib.sha1(members[0][1]).hexdigest()}\n"
    bad = write_tar(str(tmp_path / "partial.ova"), [members[0], (members[1][0], partial.encode()), members[2]])
    assert problems(bad) == [f"{members[2][0]}: not listed in the manifest"]
    bare = write_tar(str(tmp_path / "bare.ova"), [members[0], members[2]])
    assert problems(bare) == []
    assert problems(bare, require_manifest=True) == ["no manifest (.mf) in the archive"]


def test_chunked_files_are_accepted(good_ova, tmp_path):
    members = members_of(good_ova)
    name, disk = members[2]
    half = len(disk) // 2
    ovf = members[0][1].replace(f'ovf:href="{name}"'.encode(), f'ovf:chunkSize="{half}" ovf:href="{name}"'.encode())
    chunks = [(f"{name}.000000000", disk[:half]), (f"{name}.000000001", disk[half:])]
    mf = "".join(f"SHA256({n})= {hashlib.sha256(d).hexdigest()}\n" for n, d in [(members[0][0], ovf)] + chunks)
    path = write_tar(str(tmp_path / "chunked.ova"), [(members[0][0], ovf), (members[1][0], mf.encode())] + chunks)
    result = verify(path)
    assert result["ok"], result["problems"]
    assert result["digests_checked"] == 3 and result["disks"][0]["checked"] is False


def test_signed_manifest(good_ova, tmp_path):
    members = members_of(good_ova)
    key, cert = str(tmp_path / "key.pem"), str(tmp_path / "cert.pem")
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", key, "-out", cert,
                    "-days", "2", "-subj", "/CN=ovatool test signer"], check=True, capture_output=True)
    mf_path = tmp_path / "m.mf"
    mf_path.write_bytes(members[1][1])
    signature = subprocess.run(["openssl", "dgst", "-sha256", "-sign", key, str(mf_path)], check=True,
                               capture_output=True).stdout
    cert_text = f"SHA256({members[1][0]})= {signature.hex()}\n".encode() + open(cert, "rb").read()
    signed = write_tar(str(tmp_path / "signed.ova"), members + [("Verify_Me.cert", cert_text)])
    result = verify(signed)
    assert result["ok"], result["problems"]
    assert result["signature"]["valid"] is True and "ovatool test signer" in result["signature"]["subject"]
    forged = cert_text.replace(signature.hex().encode(), bytes(reversed(signature)).hex().encode())
    bad = write_tar(str(tmp_path / "forged.ova"), members + [("Verify_Me.cert", forged)])
    assert problems(bad) == ["Verify_Me.cert: the signature over Verify_Me.mf does not verify against its certificate"]


def test_third_party_ova_is_judged(corpus):
    """govmomi's ttylinux OVA has a disk cut at 1 MiB (qemu-img: "Invalid footer")."""
    found = problems(os.path.join(corpus, "images", "govmomi_ttylinux-pc_i486-16.1.ova"))
    assert "ttylinux-pc_i486-16.1-disk1.vmdk: ovf:size says 10595840 bytes, the archive holds 1048576" in found
    assert any("no footer before the end of the file" in p for p in found), found


def test_ova_verify_module(tmp_path, good_ova):
    good = adhoc(tmp_path, "ovatool.vmware.ova_verify", {"path": good_ova, "deep": True, "require_manifest": True})
    assert good["_rc"] == 0 and good["ok"] is True, good["_stdout"]
    members = members_of(good_ova)
    bad_path = write_tar(str(tmp_path / "bad.ova"), [members[0], members[1]])
    bad = adhoc(tmp_path, "ovatool.vmware.ova_verify", {"path": bad_path})
    assert bad["_rc"] != 0 and "referenced by the OVF but not in the archive" in bad["msg"]
    assert any("not in the archive" in p for p in bad["problems"])


# -- descriptors in other namespaces, and descriptors that contradict themselves ----------------------
OVF1 = b"http://schemas.dmtf.org/ovf/envelope/1"


def restamped(tmp_path, good_ova, name: str, ovf: bytes, disk=None) -> str:
    """good_ova with another descriptor (and optionally disk), the manifest recomputed for the new OVF only:
    whatever is wrong is then wrong in the descriptor, not in a stale digest of it."""
    members = members_of(good_ova)
    disk_member = members[2] if disk is None else (members[2][0], disk)
    mf = f"SHA256({members[0][0]})= {hashlib.sha256(ovf).hexdigest()}\n" \
         f"SHA256({members[2][0]})= {hashlib.sha256(members[2][1]).hexdigest()}\n"
    return write_tar(str(tmp_path / name), [(members[0][0], ovf), (members[1][0], mf.encode()), disk_member])


def test_ovf2_descriptor_is_checked_fully(good_ova, tmp_path):
    members = members_of(good_ova)
    ovf2 = members[0][1].replace(OVF1, b"http://schemas.dmtf.org/ovf/envelope/2")
    good = verify(restamped(tmp_path, good_ova, "v2.ova", ovf2), deep=True)
    assert good["ok"], good["problems"]
    assert good["ovf_version"] == "2.0" and good["digests_checked"] == 2 and good["disks"][0]["checked"]
    disk = bytearray(members[2][1])
    disk[70000] ^= 0xFF
    corrupt = problems(restamped(tmp_path, good_ova, "v2-corrupt.ova", ovf2, bytes(disk)), deep=True)
    assert f"member {members[2][0]}: SHA256 differs from the manifest" in corrupt
    missing = write_tar(str(tmp_path / "v2-missing.ova"), [(members[0][0], ovf2)])
    assert f"{members[2][0]}: referenced by the OVF but not in the archive" in problems(missing)


@pytest.mark.parametrize("namespace, expected", [
    (b"http://www.vmware.com/schema/ovf/1/envelope", "is OVF 0.9"),
    (b"http://example.com/not-ovf", "unknown namespace 'http://example.com/not-ovf'"),
])
def test_descriptor_in_another_namespace_is_a_problem(good_ova, tmp_path, namespace, expected):
    members = members_of(good_ova)
    found = problems(restamped(tmp_path, good_ova, "ns.ova", members[0][1].replace(OVF1, namespace)))
    assert len(found) == 1 and expected in found[0], found


def test_root_that_is_not_an_envelope(good_ova, tmp_path):
    found = problems(restamped(tmp_path, good_ova, "root.ova", b'<?xml version="1.0"?><Appliance/>'))
    assert found == [f"{members_of(good_ova)[0][0]}: the root element is <Appliance>, not an OVF <Envelope>"]


def test_descriptor_contradictions(good_ova, tmp_path):
    members = members_of(good_ova)
    ovf = members[0][1].decode()
    # the second Item gets the first one's InstanceID and a configuration nobody declared
    ids = [part.split("<", 1)[0] for part in ovf.split("<rasd:InstanceID>")[1:]]
    ovf = ovf.replace(f"<rasd:InstanceID>{ids[1]}<", f"<rasd:InstanceID>{ids[0]}<", 1)
    ovf = ovf.replace("<ovf:Item>", '<ovf:Item ovf:configuration="large">', 1)
    # a Disk whose file is not there, and a File nothing refers to
    ovf = ovf.replace('ovf:fileRef="file1"', 'ovf:fileRef="file9"')
    found = problems(restamped(tmp_path, good_ova, "contra.ova", ovf.encode()))
    assert f"VirtualHardwareSection: rasd:InstanceID {ids[0]} is used by 2 Items" in found, found
    assert "Item: ovf:configuration 'large' is not declared in a DeploymentOptionSection" in found, found
    assert "Disk 'vmdisk1': ovf:fileRef 'file9' names no File in References" in found, found
    assert "File 'file1' is in References but no disk or device refers to it" in found, found
