# Copyright (c) ovatool.vmware contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Property-based fuzzing (hypothesis): whatever the bytes, the parsers answer or raise the domain error.

CI runs a short, time-boxed pass; a longer one: OVATOOL_FUZZ_EXAMPLES=20000 pytest -m reliability -k fuzz
"""
from __future__ import annotations

import os
import shutil
import tarfile

import pytest

hypothesis = pytest.importorskip("hypothesis")
from hypothesis import HealthCheck, given, settings, strategies as st  # noqa: E402

from support import vmfactory
from ansible_collections.ovatool.vmware.plugins.module_utils._ovatool.formats import descriptor, vmx  # noqa: E402
from ansible_collections.ovatool.vmware.plugins.module_utils._ovatool.formats.disk import open_disk  # noqa: E402
from ansible_collections.ovatool.vmware.plugins.module_utils._ovatool.errors import OvatoolError  # noqa: E402
from ansible_collections.ovatool.vmware.plugins.module_utils._ovatool.export.run import (  # noqa: E402
    ExportOptions, export_vm)
from ansible_collections.ovatool.vmware.plugins.module_utils._ovatool.verify import verify  # noqa: E402

pytestmark = pytest.mark.reliability
EXAMPLES = int(os.environ.get("OVATOOL_FUZZ_EXAMPLES", "150"))
FUZZ = settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True)

VMX_LINES = st.lists(st.one_of(
    st.sampled_from(['.encoding = "UTF-8"', '.encoding = "GBK"', '.encoding = "bogus"', "# c", "",
                     'scsi0.present = "TRUE"', 'scsi0:0.present = "TRUE"', 'scsi0:0.fileName = "d.vmdk"',
                     'ethernet0.present = "TRUE"', 'memsize = "x"', 'numvcpus = "-3"', 'ide1:0.present = "TRUE"',
                     'sata0:99.present = "TRUE"', 'displayName = "a|22|0a|zz"', 'firmware = "efi"']),
    st.text(max_size=60)), max_size=30)


@FUZZ
@given(raw=st.one_of(st.binary(max_size=2000), VMX_LINES.map(lambda lines: "\n".join(lines).encode("utf-8"))))
def test_vmx_parser(raw):
    try:
        vm = vmx.build_vm(vmx.parse_vmx_text(vmx.decode_vmx(raw, "f.vmx"), "f.vmx"), "/nowhere/f.vmx")
    except OvatoolError:
        return
    assert vm.cpus >= 1 and vm.name


DESCRIPTOR_LINES = st.lists(st.one_of(
    st.sampled_from(["# Disk DescriptorFile", "version=1", 'createType="monolithicFlat"', "CID=fffffffe",
                     "parentCID=ffffffff", "parentCID=zz", 'RW 100 FLAT "a.vmdk" 0', "RDONLY 7 ZERO",
                     'RW 1 SPARSE "b"', 'NOACCESS 2 VMFS "c" 9', 'ddb.adapterType = "ide"', "RW -1 FLAT"]),
    st.text(max_size=50)), max_size=20)


@FUZZ
@given(text=DESCRIPTOR_LINES.map("\n".join))
def test_descriptor_parser(text):
    try:
        parsed = descriptor.parse_descriptor(text, "x.vmdk")
    except OvatoolError:
        return
    assert parsed.extents and parsed.capacity_sectors >= 0


@pytest.fixture(scope="module")
def sparse_sample(tmp_path_factory):
    folder = tmp_path_factory.mktemp("fuzz")
    raw = folder / "small.raw"
    with open(raw, "wb") as handle:
        handle.truncate(3 * 1024 * 1024)
        for offset in (0, 70000, 2 * 1024 * 1024 + 5):
            handle.seek(offset)
            handle.write(os.urandom(9000))
    vmfactory.convert(str(raw), str(folder / "small.vmdk"), "monolithicSparse")
    with open(folder / "small.vmdk", "rb") as handle:
        return handle.read()


@FUZZ
@given(edits=st.lists(st.tuples(st.integers(0, 40000), st.binary(min_size=1, max_size=8)), min_size=1, max_size=6))
def test_sparse_reader(sparse_sample, tmp_path_factory, edits):
    """Mutated metadata (header, descriptor, directory, tables): open and read everything, or a clean error."""
    data = bytearray(sparse_sample)
    for offset, chunk in edits:
        data[offset:offset + len(chunk)] = chunk
    path = os.path.join(str(tmp_path_factory.getbasetemp()), "mutated.vmdk")
    with open(path, "wb") as handle:
        handle.write(data)
    try:
        with open_disk(path) as disk:
            for offset, length in disk.allocated_ranges():
                disk.read(offset, min(length, 4 * 1024 * 1024))
    except OvatoolError:
        pass


@pytest.fixture(scope="module")
def ova_sample(tmp_path_factory, sparse_sample):
    folder = tmp_path_factory.mktemp("fuzzova")
    with open(folder / "d.vmdk", "wb") as handle:
        handle.write(sparse_sample)
    vmfactory.write_vmx(str(folder / "v.vmx"), "Fuzz", [("scsi0:0", "d.vmdk")])
    result = export_vm(ExportOptions(src=str(folder / "v.vmx"), dest=str(folder / "f.ova")))
    with open(result["dest"], "rb") as handle:
        return handle.read()


@FUZZ
@given(edits=st.lists(st.tuples(st.integers(0, 60000), st.binary(min_size=1, max_size=16)), min_size=1,
                      max_size=5), cut=st.one_of(st.none(), st.integers(0, 70000)))
def test_verifier(ova_sample, tmp_path_factory, edits, cut):
    """A damaged OVA is judged (ok or problems), never crashes the verifier; nothing is extracted."""
    data = bytearray(ova_sample)
    for offset, chunk in edits:
        data[offset:offset + len(chunk)] = chunk
    if cut is not None:
        del data[cut:]
    folder = os.path.join(str(tmp_path_factory.getbasetemp()), "fuzzverify")
    shutil.rmtree(folder, ignore_errors=True)
    os.makedirs(folder)
    path = os.path.join(folder, "x.ova")
    with open(path, "wb") as handle:
        handle.write(data)
    try:
        result = verify(path, deep=True)
    except OvatoolError:
        return
    assert isinstance(result["problems"], list)
    assert os.listdir(folder) == ["x.ova"]
    if result["ok"]:
        with tarfile.open(path) as archive:
            assert archive.getnames()[0].endswith(".ovf")
