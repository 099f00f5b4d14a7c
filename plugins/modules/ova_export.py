#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright (c) ovatool.vmware contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
module: ova_export
short_description: Export a VMware VM (.vmx and its .vmdk disks) to an OVA, on the host that holds it
version_added: 0.1.0
description:
  - Runs on the hypervisor host (VMware Workstation, Fusion or ESXi) and turns a powered-off VM into an
    OVA appliance that VMware and other readers import; or a running one, from a snapshot (O(snapshot)).
  - Reads only the allocated parts of the disks (sparse grain tables, holes of flat files) and compresses
    them into streamOptimized disks on every core, with memory that does not grow with the disk size.
  - Writes the OVA in a single pass (descriptor first, then manifest, then disks) to a hidden temporary file
    beside O(dest) and renames it into place only when complete; on any error nothing is left behind.
  - The sources are opened read-only and never changed.
  - Uses ISA-L (C(isal)) or zlib-ng (C(zlib-ng)) for deflate when the host's Python has them, else zlib.
  - An C(s3://) O(dest) is written straight into S3 (or any S3-compatible store) as a multipart upload, with
    nothing staged on the host's disk; the host needs only the standard library and never sees a credential
    (see O(dest)).
author: ovatool developers (@ovatool)
requirements:
  - Python 3.8 or newer on the host (the standard library only)
  - optional, for speed, C(isal) (ISA-L) or C(zlib-ng) in the host's Python
  - to sign (O(private_key)), the C(cryptography) package or the C(openssl) command on the host
  - for an C(s3://) O(dest), boto3 on the controller (or in the execution environment)
options:
  src:
    description: Path of the VM's C(.vmx) file.
    type: path
    required: true
  dest:
    description:
      - Path of the C(.ova) to write.
      - An existing directory, or a path ending in C(/), means C(<dest>/<name>.ova) where C(<name>) is the VM
        name made safe for a file name.
      - "C(s3://bucket/key.ova), or C(s3://bucket/prefix/) for C(<prefix>/<name>.ova): the OVA goes straight into
        the object store. The controller keeps the credentials (O(endpoint_url), O(access_key), O(secret_key) or
        boto3's usual chain), starts a multipart upload carrying the sources' fingerprint as object metadata
        (C(ovatool-fingerprint), for O(refresh)), and gives the host only presigned URLs: one per part, one to
        complete and one to abort the upload. The host streams the OVA into the parts as it writes it; the object's
        bytes are those a local export writes. On any failure, or when the export is stopped (SIGTERM), the upload
        is aborted and no object and no incomplete upload remain; an upload left by a run that was killed
        (C(kill -9), a lost host) is aborted by the next run before it exports."
      - With C(s3://), the host holds at most about (O(upload_threads) + 1) x the part size + 16 MiB of the OVA in
        memory; the part size is O(part_size_mb), raised for very large VMs so that 10,000 parts hold the OVA.
      - C(s3://) takes O(format=ova) only.
    type: path
    required: true
  force:
    description:
      - Overwrite O(dest) when it exists.
      - When false and O(dest) exists, nothing is done and the task reports no change (see O(refresh)).
    type: bool
    default: false
  refresh:
    description:
      - Export again when O(dest) exists but is stale, that is when the VM's files (size, modification time)
        or the export options changed since it was written. A fingerprint is kept beside every package
        (a hidden C(.<name>.ova.source) file) for this.
    type: bool
    default: false
  name:
    description: Name of the virtual system in the OVA (and of its files); defaults to the VM's display name.
    type: str
  threads:
    description: Compression threads; V(0) means one per available core.
    type: int
    default: 0
  compression:
    description:
      - V(fast), V(balanced), V(max), V(none), or a zlib-style level from V(1) to V(9).
      - Presets are mapped per codec to levels of a similar ratio; the result reports the level used.
      - V(none) writes the VMDK's grains as stored deflate blocks (level 0, the fastest and largest) and the clusters
        of a qcow2 image uncompressed.
    type: str
    default: fast
  codec:
    description:
      - Deflate implementation. V(auto) takes the fastest one importable on the host.
      - Forcing one that is not installed fails with a message naming the package.
      - V(zlib-ng) and V(zlib) give byte-identical output for the same inputs and options. ISA-L (V(isal)) may encode
        a grain differently from one run to the next (the disk's data, and so every check, stays the same; only the
        compressed bytes and their digests differ). Choose V(zlib-ng) where the OVA's bytes must be reproducible.
    type: str
    choices: [auto, isal, zlib-ng, zlib]
    default: auto
  accelerator_paths:
    description:
      - Folders put first on the exporter's import path before the codec is chosen, as
        M(ovatool.vmware.ova_accelerator) returns them in its C(paths) (ISA-L and zlib-ng brought by the controller,
        for hosts without pip). Folders that do not exist are skipped.
      - The export role passes them when C(export_accelerator) is not V(false).
    type: list
    elements: path
    default: []
    version_added: 1.1.0
  manifest:
    description: Digest algorithm of the manifest (C(.mf)). Old ESXi (6.5/6.7) wants V(sha1).
    type: str
    choices: [sha1, sha256, sha512]
    default: sha256
  format:
    description:
      - V(ova) writes one archive; V(ovf) writes a folder holding the same files (C(.ovf), C(.mf), disks).
      - With V(ovf), O(dest) names the folder to create, or with a trailing C(/) the folder in which
        C(<name>/) is created. The folder appears only when complete.
      - V(none) writes no package, only the O(images), into the folder O(dest) (which must exist).
    type: str
    choices: [ova, ovf, none]
    default: ova
  images:
    description:
      - Disk image formats written beside the package, in the same pass over the disks (each allocated grain is
        read once, and compressed once when qcow2 is asked for with the OVA).
      - Each of the VM's disks becomes C(<name>-disk<N>.<format>) in the package's folder, in each format listed.
        V(qcow2) is version 3 with 64 KiB clusters, compressed (zlib) unless O(compression=none); V(vhdx) is a
        dynamic VHDX with qemu's block size; V(vhd) is a fixed VHD rounded up to a whole MiB (what Azure takes);
        V(raw) is a sparse file.
      - A C(<name>.SHA256SUMS) file (C(sha256sum -c) checks it) lists every file the export wrote, the package
        included. The files appear together when all are complete; O(force), O(refresh) and check mode treat them as
        one set with the package.
      - With an C(s3://) O(dest), each image and the sums are objects of their own beside the OVA, streamed as
        the OVA is (nothing staged on the host; zeros are sent, as an object has no holes), and the sums are
        uploaded last, once the OVA and the images that could not be hashed as they were written have been read
        back and hashed.
    type: list
    elements: str
    choices: [qcow2, vhdx, vhd, raw]
    default: []
    version_added: 1.1.0
  snapshot:
    description:
      - Export the disks exactly as they were when the VM's snapshot of this name (its C(displayName)) was taken -
        the disk files the VM's C(.vmsd) records for it, and their parents, instead of the VM's current disks.
        The VM no longer writes those files, so this works on a running VM
        (M(ovatool.vmware.vm_snapshot) takes such a snapshot). The OVF's hardware comes from the C(.vmx), as
        without it.
      - An unknown or ambiguous name fails, listing the VM's snapshots; so does a VM with an independent disk
        (snapshots do not capture those) or a disk the snapshot does not hold.
      - While the export reads, M(ovatool.vmware.vm_snapshot) does not remove the snapshot.
    type: str
    version_added: 1.1.0
  max_hardware_version:
    description: Cap the virtual hardware version written in the OVF (like OVF Tool's C(--maxVirtualHardwareVersion)).
    type: int
  export_flags:
    description:
      - Like OVF Tool's C(--exportFlags). V(mac) keeps the NICs' MAC addresses, V(uuid) keeps the BIOS UUID,
        V(extraconfig) carries the remaining VMX keys as C(vmw:ExtraConfig).
    type: list
    elements: str
    choices: [mac, uuid, extraconfig]
    default: []
  include_images:
    description:
      - Carry the ISO images of CD-ROM drives in the package;
        the drives then connect them at power-on. Otherwise CD-ROMs are exported empty.
      - An ISO that is not on the host is skipped with a warning.
    type: bool
    default: false
  progress_file:
    description:
      - Write the export's progress to this JSON file (disk, percent, bytes, MB/s, ETA) at most once a second,
        atomically, and a final record when it ends; for watching a long C(async) export from the controller.
    type: path
  appliance:
    description:
      - "What the OVF says about the appliance beyond its hardware, with the keys and shapes of VMware's ova-compose
        (its YAML sections can be pasted)."
      - "C(product_sections) (a list; C(product) is a shortcut for one) - each with C(product), C(vendor),
        C(version), C(full_version), C(info), C(product_url), C(vendor_url), C(app_url), C(class), C(instance),
        C(categories) (C({id: label})), C(transports) (C(iso), C(com.vmware.guestInfo)) and C(properties): C({key:
        {type, value, user_configurable, password, label, description, category, qualifiers}}), types as in DSP0243
        (C(string), C(boolean), C(uint8)..C(uint64), C(sint8)..C(sint64), C(real32), C(real64)), qualifiers
        C(MinLen(n)), C(MaxLen(n)), C(ValueMap{...}); a C(value) may be C({configuration: value}) (or ova-compose's
        C({default, configurations}))."
      - "C(annotation) (text or C({text, info}); default the VMX's notes; C(\"\") leaves it out), C(eula) (text or a
        list, one EulaSection each), C(configurations) (C({id: {label, description, cpus, memory}}), memory in MiB)
        with C(default_configuration), C(networks) (C({ethernetN or network name: {name, description}})),
        C(extra_configs) (C({key: value}) or C({key: {value, required}})), C(ip_assignment_settings) (C({protocols,
        schemes}); VMware's section, which the DMTF schema does not know)."
      - "The whole spec is checked before any disk is read; a problem fails the task naming its key path and nothing
        is written. See also M(ovatool.vmware.ova_edit), which applies the same spec to an existing OVA."
    type: dict
  nice:
    description:
      - How much lower than the module's normal CPU priority the export runs (Unix nice steps, 0 to 19), so that
        the host's VMs keep their CPU. Every thread of the export runs at that priority.
    type: int
    default: 10
  ionice:
    description:
      - I/O scheduling class of the export's threads on Linux hosts. V(best-effort) is that class at its lowest
        priority; V(idle) reads only when no other process wants the disk (the gentlest, and an export on a
        busy disk may then wait long); V(none) leaves the I/O priority as it is.
      - Where the host cannot set it (not Linux, ESXi), the export runs at normal I/O priority with a warning.
    type: str
    choices: [best-effort, idle, none]
    default: best-effort
  read_limit_mbps:
    description: The most MB (10^6 bytes) a second the export reads from the source disks; V(0) means no limit.
    type: float
    default: 0
  appliances:
    description:
      - Specs per VM, keyed by the VM's name (its C(displayName)), merged over O(appliance) key by key.
    type: dict
  validate_certs:
    description: Verify the TLS certificate of an C(https) S3 endpoint. Turning this off is explicit and insecure.
    type: bool
    default: true
  part_size_mb:
    description: Part size of an C(s3://) O(dest) in MiB (at least 5); raised when 10,000 parts could not hold the OVA.
    type: int
    default: 32
  upload_threads:
    description: Parts of an C(s3://) O(dest) on the wire at once.
    type: int
    default: 4
  retry_seconds:
    description:
      - For an C(s3://) O(dest), a part (and the final complete) that fails on a network error or a 5xx/408/429
        answer is sent again, with exponential backoff and jitter, until the store has not answered for this many
        seconds; an outage shorter than that does not fail the export. Past it, the export fails and the upload
        is aborted.
    type: float
    default: 900
    version_added: 1.1.0
  slots:
    description:
      - At most this many exports at once on the host, counted by every export given the same O(slots_dir);
        the others wait (their progress file says so) before they read a disk. V(0) means no limit.
      - The C(ovatool.vmware.export) role starts all the VMs of a host at once with O(slots) set to its
        C(export_parallel), so that Ansible runs every host of a fleet in step.
    type: int
    default: 0
    version_added: 1.1.0
  slots_dir:
    description: The folder of the slot files (created if missing); needed with O(slots).
    type: path
    version_added: 1.1.0
  plan_only:
    description:
      - Set by the action plugin for an C(s3://) O(dest); do not set it.
      - Only report what the export would write (the sources' fingerprint, a bound on each object's size, the
        bytes it would read), from the metadata; no disk is read.
    type: bool
    default: false
    version_added: 1.1.0
  upload:
    description:
      - Set by the action plugin for an C(s3://) O(dest); do not set it.
    type: dict
    suboptions:
      urls:
        description: Presigned UploadPart URLs, parts 1 to N.
        type: list
        elements: str
      complete_url:
        description: Presigned CompleteMultipartUpload URL.
        type: str
      abort_url:
        description: Presigned AbortMultipartUpload URL.
        type: str
      get_url:
        description: Presigned GetObject URL of the object (an image set reads back what it hashes).
        type: str
        version_added: 1.1.0
      delete_url:
        description: Presigned DeleteObject URL of the object (an image set removes what it completed on a failure).
        type: str
        version_added: 1.1.0
      images:
        description:
          - The uploads of the images and of their sums, in the order the planning call's C(objects) gave, each
            with the keys of this option but O(upload.images).
        type: list
        elements: dict
        version_added: 1.1.0
        suboptions:
          urls:
            description: Presigned UploadPart URLs, parts 1 to N.
            type: list
            elements: str
          complete_url:
            description: Presigned CompleteMultipartUpload URL.
            type: str
          abort_url:
            description: Presigned AbortMultipartUpload URL.
            type: str
          get_url:
            description: Presigned GetObject URL of the object.
            type: str
          delete_url:
            description: Presigned DeleteObject URL of the object.
            type: str
          part_size:
            description: Part size in bytes.
            type: int
          fingerprint:
            description: The fingerprint the upload was started with.
            type: str
          threads:
            description: Parts on the wire at once.
            type: int
          timeout:
            description: Seconds to wait for the store's answer.
            type: float
            default: 60
          validate_certs:
            description: Verify the store's TLS certificate.
            type: bool
            default: true
          bucket:
            description: The upload's bucket (for renewing its URLs).
            type: str
          key:
            description: The upload's key.
            type: str
          upload_id:
            description: The upload's id.
            type: str
          expires:
            description: When the URLs end, in seconds since the epoch.
            type: float
          lifetime:
            description: Seconds the URLs were signed for.
            type: int
          renewable:
            description: The URLs are renewed through a file beside the progress file (an asynchronous export).
            type: bool
            default: false
      part_size:
        description: Part size in bytes.
        type: int
      fingerprint:
        description: The fingerprint the upload was started with.
        type: str
      threads:
        description: Parts on the wire at once.
        type: int
      timeout:
        description: Network timeout in seconds.
        type: float
        default: 60
      validate_certs:
        description: Verify TLS certificates.
        type: bool
        default: true
      bucket:
        description: The upload's bucket (for renewing its URLs).
        type: str
      key:
        description: The upload's object key (for renewing its URLs).
        type: str
      upload_id:
        description: The multipart upload's id (for renewing its URLs).
        type: str
      expires:
        description: When the URLs end, in seconds since the epoch.
        type: float
      lifetime:
        description: How long the URLs were signed for, in seconds.
        type: int
      renewable:
        description: ova_export_wait renews the URLs (an asynchronous export); they come in a file beside O(progress_file).
        type: bool
        default: false
extends_documentation_fragment:
  - ovatool.vmware.signing
  - ovatool.vmware.s3
  - ovatool.vmware.s3.presign
attributes:
  check_mode:
    support: full
    description: Reports whether an export would happen, after checking the VM and its disks.
  diff_mode:
    support: none
    description: No diff is produced.
notes:
  - Power the VM off first (see the C(ovatool.vmware.power_off) role); exporting a running VM copies
    disks that are changing under it.
  - Snapshot chains are flattened to the current state, with hosted sparse children or ESXi vmfsSparse (COWD) and
    seSparse deltas; raw device mappings hold no data to export and are refused with a message saying so.
  - A virtual TPM cannot be carried in an OVA; such a VM is exported without it and the task warns.
  - Output is reproducible with the V(zlib-ng) and V(zlib) codecs, exporting an unchanged VM twice with the same
    options gives the same bytes (see O(codec) for ISA-L).
"""

EXAMPLES = r"""
- name: Export a VM into a folder, one OVA per VM
  ovatool.vmware.ova_export:
    src: /vms/appliance/appliance.vmx
    dest: /exports/

- name: A signed OVA for a vSphere content library, keeping MAC addresses
  ovatool.vmware.ova_export:
    src: /vms/appliance/appliance.vmx
    dest: /exports/appliance.ova
    export_flags: [mac]
    max_hardware_version: 19
    private_key: /etc/pki/appliance-signing.key
    private_key_passphrase: "{{ vault_signing_passphrase }}"
    certificate: /etc/pki/appliance-signing.crt

- name: Export straight into S3 (nothing staged on the host; the credentials stay on the controller)
  ovatool.vmware.ova_export:
    src: /vmfs/volumes/datastore1/web01/web01.vmx
    dest: s3://appliances/releases/
    endpoint_url: https://s3.example.com
    access_key: "{{ vault_s3_access_key }}"
    secret_key: "{{ vault_s3_secret_key }}"
    refresh: true

- name: Export with the best ratio and a SHA1 manifest for ESXi 6.7
  ovatool.vmware.ova_export:
    src: /vmfs/volumes/datastore1/web01/web01.vmx
    dest: /vmfs/volumes/datastore1/exports/web01.ova
    compression: max
    manifest: sha1
    force: true
"""

RETURN = r"""
dest:
  description: Path (or C(s3://) URL) of the OVA.
  returned: always
  type: str
  sample: /exports/appliance.ova
fingerprint:
  description: What an C(s3://) OVA was made from (the sources' sizes and times, the options); its metadata holds it.
  returned: for an s3:// dest
  type: str
parts:
  description: Parts of the multipart upload of an C(s3://) O(dest).
  returned: changed, for an s3:// dest
  type: int
upload_peak_bytes:
  description: The most bytes of the OVA held in memory at once while it went to an C(s3://) O(dest).
  returned: changed, for an s3:// dest
  type: int
name:
  description: Name of the virtual system in the OVA.
  returned: always
  type: str
size:
  description: Size of the OVA in bytes.
  returned: changed and not check mode
  type: int
signed:
  description: Whether a C(.cert) member signs the manifest.
  returned: changed and not check mode
  type: bool
format:
  description: Output format.
  returned: always
  type: str
  sample: ova
manifest:
  description: Manifest digest algorithm.
  returned: always
  type: str
  sample: sha256
digests:
  description: Digest of each member, as written in the manifest.
  returned: changed and not check mode
  type: dict
  sample: {"appliance.ovf": "5716a9...", "appliance-disk1.vmdk": "522139..."}
members:
  description: Archive members in order (C(name), C(size), C(digest); the manifest's digest is null).
  returned: changed and not check mode
  type: list
  elements: dict
disks:
  description: One entry per exported disk.
  returned: changed and not check mode
  type: list
  elements: dict
  contains:
    source:
      description: The source C(.vmdk).
      type: str
    href:
      description: The disk's file name in the OVA.
      type: str
    controller:
      description: Controller the disk is attached to.
      type: str
    unit:
      description: Unit on the controller.
      type: int
    create_type:
      description: The source's VMDK C(createType).
      type: str
    capacity_bytes:
      description: Virtual size in bytes.
      type: int
    allocated_bytes:
      description: Bytes read from the source (allocated grains only).
      type: int
    populated_bytes:
      description: Bytes of non-zero data (the OVF's C(populatedSize)).
      type: int
    written_bytes:
      description: Size of the streamOptimized disk in the OVA.
      type: int
    seconds:
      description: Time spent on this disk.
      type: float
codec:
  description: Deflate implementation used.
  returned: always
  type: str
  sample: isal
compression_level:
  description: Level passed to the codec.
  returned: always
  type: int
threads:
  description: Compression threads used.
  returned: always
  type: int
elapsed_seconds:
  description: Wall time of the export.
  returned: changed and not check mode
  type: float
throughput_mbps:
  description: Allocated source data exported per second, in MB/s.
  returned: changed and not check mode
  type: float
current:
  description: True when O(refresh) found the existing package current.
  returned: when that happened
  type: bool
files:
  description:
    - Every file of the export's set on the host, whether written now or found current - the images, their
      C(<name>.SHA256SUMS) and the package last - for uploading them (the export_all playbook does).
  returned: for a local O(dest)
  type: list
  elements: str
  version_added: 1.1.0
images:
  description: The images written (O(images)), one per disk and format.
  returned: when images were written
  type: list
  elements: dict
  version_added: 1.1.0
  contains:
    path:
      description: Where the image is.
      type: str
    format:
      description: V(qcow2), V(vhdx), V(vhd) or V(raw).
      type: str
    disk:
      description: The disk's number, from 1, as in the file name.
      type: int
    size:
      description: Bytes of the file (a sparse file takes less on the disk).
      type: int
    sha256:
      description: SHA256 of the file, as in the SHA256SUMS.
      type: str
sums_size:
  description: Bytes of the C(<name>.SHA256SUMS) object.
  returned: when images were written to an C(s3://) O(dest)
  type: int
  version_added: 1.1.0
sums:
  description: The C(<name>.SHA256SUMS) file (or object) listing every file the export wrote.
  returned: when images were written
  type: str
  version_added: 1.1.0
sha256:
  description: SHA256 of the OVA, as in the SHA256SUMS.
  returned: when images were written with O(format=ova)
  type: str
  version_added: 1.1.0
snapshot:
  description: With O(snapshot), the snapshot the disks were read from.
  returned: with O(snapshot), when the disks were opened
  type: dict
  version_added: 1.1.0
  contains:
    name:
      description: Its name.
      type: str
    id:
      description: Its uid in the C(.vmsd).
      type: str
    parent:
      description: The uid of the snapshot it was taken on; null for the first.
      type: str
    description:
      description: Its description.
      type: str
    disks:
      description: The disk file read for each disk node (with its parents, when it is a child).
      type: dict
stale:
  description: True when an existing package was found stale and exported again (or would be, in check mode).
  returned: when that happened
  type: bool
msg:
  description: Why nothing was done, or what would be done in check mode.
  returned: when not changed, and in check mode
  type: str
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.ovatool.vmware.plugins.module_utils.common import run_engine
from ansible_collections.ovatool.vmware.plugins.module_utils.export_spec import EXPORT, EXPORT_KWARGS
from ansible_collections.ovatool.vmware.plugins.module_utils._ovatool.export.run import ExportOptions, export_vm, plan_only
from ansible_collections.ovatool.vmware.plugins.module_utils._ovatool.host import accel
from ansible_collections.ovatool.vmware.plugins.module_utils._ovatool.host.progress import ProgressFile


def main():
    module = AnsibleModule(argument_spec=EXPORT, supports_check_mode=True, **EXPORT_KWARGS)
    params = module.params
    if params["slots"] and not params["slots_dir"]:
        module.fail_json(msg="slots needs slots_dir (the folder of the slot files every export of the host shares)")
    accel.activate(params["accelerator_paths"])
    options = ExportOptions.from_params(params, check_mode=module.check_mode)

    def action():
        if params["plan_only"]:  # the controller's planning call: metadata only, no progress to show
            return plan_only(options)
        if not params["progress_file"] or module.check_mode:
            return export_vm(options)
        progress = ProgressFile(params["progress_file"])
        options.progress = progress
        try:
            result = export_vm(options)
        except BaseException:
            progress.finish(False)
            raise
        progress.finish(True)
        return result

    run_engine(module, action)


if __name__ == "__main__":
    main()
