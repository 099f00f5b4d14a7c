# Copyright (c) ovatool.vmware contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""What VMware does to a VM's files when it takes and removes a snapshot, for the vmrun and vim-cmd doubles.

Taking one: each disk the .vmx names gets a sparse child (qemu-img create -b: a descriptor with parentCID and
parentFileNameHint, as Workstation writes it), the .vmx is pointed at the children, and the .vmsd records the
snapshot with the files it froze. Removing the newest one: each child's data is merged into its parent
(qemu-img commit, which is what consolidation does), the .vmx points back, and the .vmsd forgets it.
Only the newest snapshot (the one the VM runs on) can be removed here; that is all the collection removes.

A guest stand-in (tests/support/guest.py) writes into the VM's current disks holding guest_lock(vmx); removal
holds it too, as VMware stuns the guest's I/O while it consolidates. With ``before_merge`` (a folder), removal
first copies each delta chain as the guest left it to <folder>/<node>.raw, for the tests to compare.
"""
import fcntl
import os
import re
import subprocess

_UNIT = re.compile(r"^((?:scsi|sata|nvme|ide)\d+:\d+)\.filename$", re.I)
_CHILD = re.compile(r"^(.*?)(-\d{6})?\.vmdk$", re.I)


class Refused(Exception):
    """The operation fails the way the real tool would."""


def read_pairs(path):
    """[(key, value)] of a VMX-syntax file, in order (values unquoted; none of ours hold escapes)."""
    pairs = []
    if not os.path.exists(path):
        return pairs
    with open(path, encoding="utf-8") as handle:
        for line in handle:
            key, sep, value = line.strip().partition("=")
            if sep and not key.strip().startswith("#"):
                pairs.append((key.strip(), value.strip().strip('"')))
    return pairs


def write_pairs(path, pairs):
    with open(path + ".tmp", "w", encoding="utf-8", newline="\n") as handle:
        for key, value in pairs:
            handle.write('{} = "{}"\n'.format(key, value))
    os.replace(path + ".tmp", path)


def disks(vmx):
    """{node: file name} of the disks the .vmx names, without independent ones (snapshots skip those)."""
    pairs = dict((k.lower(), v) for k, v in read_pairs(vmx))
    found = {}
    for key, value in pairs.items():
        match = _UNIT.match(key)
        if match and value.lower().endswith(".vmdk") and pairs.get(match.group(1) + ".present", "").upper() == "TRUE":
            if not pairs.get(match.group(1) + ".mode", "").lower().startswith("independent"):
                found[match.group(1)] = value
    return found


def _set_disk(vmx, node, file_name):
    pairs = [(k, file_name if k.lower() == node + ".filename" else v) for k, v in read_pairs(vmx)]
    write_pairs(vmx, pairs)


def vmsd_path(vmx):
    return os.path.splitext(vmx)[0] + ".vmsd"


def snapshots(vmx):
    """[{uid, name, parent, description, disks: [(node, file)]}] from the .vmsd, and the current uid."""
    pairs = dict((k.lower(), v) for k, v in read_pairs(vmsd_path(vmx)))
    found = []
    number = 0
    while "snapshot{}.uid".format(number) in pairs:
        prefix = "snapshot{}.".format(number)
        count = int(pairs.get(prefix + "numdisks", "0"))
        found.append({"uid": pairs[prefix + "uid"], "name": pairs.get(prefix + "displayname", ""),
                      "parent": pairs.get(prefix + "parent"), "description": pairs.get(prefix + "description", ""),
                      "disks": [(pairs[prefix + "disk{}.node".format(i)], pairs[prefix + "disk{}.filename".format(i)])
                                for i in range(count)]})
        number += 1
    return found, pairs.get("snapshot.current"), int(pairs.get("snapshot.lastuid", "0"))


def _write_vmsd(vmx, found, current, last_uid):
    pairs = [(".encoding", "UTF-8"), ("snapshot.lastUID", str(last_uid))]
    if current:
        pairs.append(("snapshot.current", current))
    for number, snap in enumerate(found):
        prefix = "snapshot{}.".format(number)
        pairs += [(prefix + "uid", snap["uid"]), (prefix + "filename", "{}-Snapshot{}.vmsn".format(
            os.path.splitext(os.path.basename(vmx))[0], snap["uid"])), (prefix + "displayName", snap["name"]),
            (prefix + "description", snap["description"]), (prefix + "type", "1")]
        if snap.get("parent"):
            pairs.append((prefix + "parent", snap["parent"]))
        pairs.append((prefix + "numDisks", str(len(snap["disks"]))))
        for index, (node, file_name) in enumerate(snap["disks"]):
            pairs += [(prefix + "disk{}.fileName".format(index), file_name),
                      (prefix + "disk{}.node".format(index), node)]
    pairs.append(("snapshot.numSnapshots", str(len(found))))
    write_pairs(vmsd_path(vmx), pairs)


def _run(argv, cwd):
    done = subprocess.run(argv, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, universal_newlines=True,
                          check=False)
    if done.returncode != 0:
        raise Refused("{} failed: {}".format(" ".join(argv[:2]), done.stderr.strip()))


def _child_name(folder, file_name):
    stem = _CHILD.match(os.path.basename(file_name)).group(1)
    number = 1
    while os.path.exists(os.path.join(folder, "{}-{:06d}.vmdk".format(stem, number))):
        number += 1
    return "{}-{:06d}.vmdk".format(stem, number)


def take(vmx, name, description=""):
    """A snapshot of the VM's disks as they are now; returns its uid."""
    folder = os.path.dirname(os.path.abspath(vmx))
    found, current, last_uid = snapshots(vmx)
    frozen = sorted(disks(vmx).items())
    for node, file_name in frozen:
        child = _child_name(folder, file_name)
        _run(["qemu-img", "create", "-q", "-f", "vmdk", "-o", "subformat=monolithicSparse", "-b", file_name,
              "-F", "vmdk", child], folder)
        _set_disk(vmx, node, child)
    uid = str(last_uid + 1)
    found.append({"uid": uid, "name": name, "parent": current, "description": description, "disks": frozen})
    _write_vmsd(vmx, found, uid, last_uid + 1)
    return uid


def guest_lock(vmx):
    """An open file whose exclusive flock pauses the guest stand-in's I/O (close it to release)."""
    handle = open(os.path.splitext(vmx)[0] + ".guest-io.lock", "a")
    fcntl.flock(handle, fcntl.LOCK_EX)
    return handle


def remove(vmx, uid, before_merge=None):
    """Remove snapshot ``uid``, merging what the guest wrote since into the files it froze."""
    with guest_lock(vmx):
        _remove(vmx, uid, before_merge)


def _remove(vmx, uid, before_merge):
    folder = os.path.dirname(os.path.abspath(vmx))
    found, current, last_uid = snapshots(vmx)
    snap = next((s for s in found if s["uid"] == uid), None)
    if snap is None:
        raise Refused("no snapshot with uid {}".format(uid))
    if uid != current or any(s.get("parent") == uid for s in found):
        raise Refused("the double removes only the snapshot the VM runs on, with no children")
    now = disks(vmx)
    for node, frozen in snap["disks"]:
        delta = now[node]
        if before_merge:
            _run(["qemu-img", "convert", "-f", "vmdk", "-O", "raw", delta,
                  os.path.join(before_merge, node.replace(":", "_") + ".raw")], folder)
        _run(["qemu-img", "commit", "-q", "-f", "vmdk", delta], folder)
        _set_disk(vmx, node, frozen)
        os.unlink(os.path.join(folder, delta))
    _write_vmsd(vmx, [s for s in found if s["uid"] != uid], snap.get("parent"), last_uid)


def uid_of(vmx, name):
    matches = [s["uid"] for s in snapshots(vmx)[0] if s["name"] == name]
    if len(matches) != 1:
        raise Refused("{} snapshots named {}".format(len(matches), name))
    return matches[0]


def tree(vmx):
    """vim-cmd vmsvc/snapshot.get's text for the VM's snapshots."""
    found = snapshots(vmx)[0]
    out = "Get Snapshot:\n"

    def walk(parent, depth):
        text = ""
        for snap in [s for s in found if s.get("parent") == parent]:
            dash = "--" * depth
            text += "{}|-{}\n".format(dash[:-2] if depth else "", "ROOT" if depth == 1 else "CHILD")
            text += ("{0}Snapshot Name        : {1}\n{0}Snapshot Id        : {2}\n{0}Snapshot Desciption  : {3}\n"
                     "{0}Snapshot Created On  : 12/7/2026 10:00:00\n{0}Snapshot State       : powered on\n").format(
                dash, snap["name"], snap["uid"], snap["description"])
            text += walk(snap["uid"], depth + 1)
        return text
    return out + walk(None, 1) if found else out
