# Copyright (c) ovatool.vmware contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Option vocabularies are defined once, in the engine; where a role's argument_specs.yml or a module's
DOCUMENTATION must restate them, they agree."""
from __future__ import annotations

import os

import pytest
import yaml

from ansible_collections.ovatool.vmware.plugins.module_utils._ovatool.export.codec import CODECS
from ansible_collections.ovatool.vmware.plugins.module_utils._ovatool.export.plan import FORMATS
from ansible_collections.ovatool.vmware.plugins.module_utils._ovatool.formats.manifest import ALGORITHMS
from ansible_collections.ovatool.vmware.plugins.module_utils._ovatool.formats.ovf import EXPORT_FLAGS

from support.ansiblerun import ROOT, module_doc  # noqa: E402

# role option -> (module, module option, whether the role's default must equal the module's)
ROLE_TO_MODULE = {
    "export": {"export_compression": ("ova_export", "compression", True),
               "export_manifest": ("ova_export", "manifest", True),
               "export_threads": ("ova_export", "threads", True),
               "export_force": ("ova_export", "force", True),
               "export_refresh": ("ova_export", "refresh", False),  # the role refreshes stale OVAs by default
               "export_snapshot_backend": ("vm_snapshot", "backend", True),
               "export_snapshot_quiesce": ("vm_snapshot", "quiesce", True),
               "export_snapshot_timeout": ("vm_snapshot", "timeout", True)},
    "power_off": {"power_off_backend": ("vm_power", "backend", True),
                  "power_off_timeout": ("vm_power", "timeout", True),
                  "power_off_force": ("vm_power", "force", True)},
    "verify": {"verify_deep": ("ova_verify", "deep", True),
               "verify_require_manifest": ("ova_verify", "require_manifest", False)},  # the role insists
}


def role_spec(role: str) -> dict:
    with open(os.path.join(ROOT, "roles", role, "meta", "argument_specs.yml"), encoding="utf-8") as handle:
        return yaml.safe_load(handle)["argument_specs"]["main"]["options"]


def role_defaults(role: str) -> dict:
    with open(os.path.join(ROOT, "roles", role, "defaults", "main.yml"), encoding="utf-8") as handle:
        return yaml.safe_load(handle) or {}


def test_module_docs_restate_the_engine_vocabularies():
    export = module_doc("ova_export")["options"]
    assert export["codec"]["choices"] == ["auto"] + list(CODECS)
    assert export["manifest"]["choices"] == list(ALGORITHMS)
    assert export["format"]["choices"] == list(FORMATS)
    assert export["export_flags"]["choices"] == list(EXPORT_FLAGS)


@pytest.mark.parametrize("role", sorted(ROLE_TO_MODULE))
def test_role_options_agree_with_their_modules(role):
    spec = role_spec(role)
    for option, (module, module_option, same_default) in ROLE_TO_MODULE[role].items():
        theirs = module_doc(module)["options"][module_option]
        ours = spec[option]
        assert ours["type"] == theirs.get("type", "str"), f"{role}.{option} type"
        assert ours.get("choices") == theirs.get("choices"), f"{role}.{option} choices"
        if same_default:
            assert ours.get("default") == theirs.get("default"), f"{role}.{option} default"


@pytest.mark.parametrize("role", ["export", "power_off", "upload", "verify"])
def test_role_defaults_are_the_documented_ones(role):
    spec, defaults = role_spec(role), role_defaults(role)
    for name, value in defaults.items():
        assert name.startswith(role + "_"), f"{name}: role defaults carry the role's name"
        assert name in spec, f"{name} is not in meta/argument_specs.yml"
        if isinstance(value, str) and "{{" in value:
            continue  # computed on the host (e.g. the play's Python)
        if "default" in spec[name]:
            assert spec[name]["default"] == value, f"{name}: defaults/main.yml and argument_specs.yml differ"
