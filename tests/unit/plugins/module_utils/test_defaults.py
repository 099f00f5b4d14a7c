# Copyright (c) ovatool.vmware contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Each default is written once (plugins/module_utils/_ovatool/defaults.py): every module's documentation states
what its argument spec does, and the engine's option types and the ``ovatool`` command take the same values, so
none of them can drift from another."""
from __future__ import annotations

import argparse
import dataclasses
import importlib
import os

import pytest

from ansible_collections.ovatool.vmware.plugins.module_utils._ovatool.export.plan import ExportOptions
from ansible_collections.ovatool.vmware.plugins.module_utils._ovatool.storage.common import UploadOptions
from ansible_collections.ovatool.vmware.plugins.module_utils._ovatool.storage.s3control import S3Settings
from ansible_collections.ovatool.vmware.plugins.module_utils.specs import controller_view
from ansible_collections.ovatool.vmware.plugins.plugin_utils.action import SPECS

from support.ansiblerun import ROOT, module_doc

MODULES = sorted(name[:-3] for name in os.listdir(os.path.join(ROOT, "plugins", "modules"))
                 if name.endswith(".py") and not name.startswith("_"))


class _Spec(Exception):
    def __init__(self, spec, checks):
        super().__init__("argument spec captured")
        self.spec, self.checks = spec, checks


def argument_spec(module: str):
    """The argument spec (and the other checks) a module creates its AnsibleModule with: its main() is run with
    an AnsibleModule that records them and stops."""
    loaded = importlib.import_module(f"ansible_collections.ovatool.vmware.plugins.modules.{module}")

    def capture(argument_spec, **checks):
        raise _Spec(argument_spec, checks)

    original = loaded.AnsibleModule
    loaded.AnsibleModule = capture
    try:
        loaded.main()
    except _Spec as got:
        return got.spec, got.checks
    finally:
        loaded.AnsibleModule = original
    raise AssertionError(f"{module}.main() created no AnsibleModule")


def compare(documented: dict, spec: dict, where: str) -> None:
    assert set(documented) == set(spec), f"{where}: documented {sorted(documented)} != spec {sorted(spec)}"
    for name, option in spec.items():
        doc = documented[name]
        here = f"{where}.{name}"
        assert doc.get("type", "str") == option.get("type", "str"), f"{here}: type"
        assert doc.get("default") == option.get("default"), \
            f"{here}: documented default {doc.get('default')!r}, argument spec {option.get('default')!r}"
        assert doc.get("elements") == option.get("elements"), f"{here}: elements"
        if "choices" in option:
            assert list(doc.get("choices") or []) == list(option["choices"]), f"{here}: choices"
        if "options" in option:
            compare(doc.get("suboptions") or {}, option["options"], here)


@pytest.mark.parametrize("module", MODULES)
def test_documented_defaults_are_the_argument_spec(module):
    spec, _checks = argument_spec(module)
    compare(module_doc(module)["options"], spec, module)


@pytest.mark.parametrize("module", sorted(SPECS))
def test_action_plugins_validate_against_the_module_s_own_spec(module):
    spec, checks = SPECS[module]
    own, own_checks = argument_spec(module)
    assert own == spec and {k: v for k, v in own_checks.items() if k != "supports_check_mode"} == checks
    seen = controller_view(spec)
    assert set(seen) == set(spec)
    for name, option in spec.items():  # the controller does not expand the host's paths; all else is the same
        expected = dict(option, type="str") if option.get("type") == "path" else option
        assert {k: v for k, v in seen[name].items() if k not in ("options", "elements")} == \
            {k: v for k, v in expected.items() if k not in ("options", "elements")}, name


def field_defaults(kind) -> dict:
    return {f.name: f.default for f in dataclasses.fields(kind) if f.default is not dataclasses.MISSING}


def shared(spec: dict, values: dict) -> dict:
    """(spec default, value) of each name both have, where the spec has a default."""
    return {name: (spec[name]["default"], values[name]) for name in values if "default" in spec.get(name, {})}


@pytest.mark.parametrize("kind,module", [(ExportOptions, "ova_export"), (S3Settings, "ova_export"),
                                         (UploadOptions, "ova_upload")])
def test_the_engine_s_option_types_take_the_module_s_defaults(kind, module):
    spec, _checks = argument_spec(module)
    pairs = shared(spec, field_defaults(kind))
    assert len(pairs) >= 3, f"{kind.__name__} shares too little with {module} for this test to mean anything"
    for name, (documented, engine) in pairs.items():
        if isinstance(documented, list):
            documented = tuple(documented)  # the engine's sequences are tuples
        assert documented == engine, f"{kind.__name__}.{name} = {engine!r}, {module}'s default is {documented!r}"


def command_defaults(subcommand: str) -> dict:
    from ovatool_cli.main import build_parser

    parser = build_parser()
    action = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))  # pylint: disable=protected-access
    return {a.dest: a.default for a in action.choices[subcommand]._actions  # pylint: disable=protected-access
            if a.default is not None and a.default is not argparse.SUPPRESS and not isinstance(a.default, bool)}


@pytest.mark.parametrize("subcommand,module,renamed", [
    ("export", "ova_export", {}), ("verify", "ova_verify", {}), ("upload", "ova_upload", {})])
def test_the_command_s_defaults_are_the_module_s(subcommand, module, renamed):
    pytest.importorskip("ovatool_cli.main", reason="the ovatool command is not installed in this environment")
    spec, _checks = argument_spec(module)
    given = {renamed.get(name, name): value for name, value in command_defaults(subcommand).items()}
    pairs = shared(spec, given)
    assert pairs, f"ovatool {subcommand} shares no default with {module}"
    for name, (documented, command) in pairs.items():
        assert documented == command, f"ovatool {subcommand} --{name.replace('_', '-')} defaults to {command!r}, " \
                                      f"{module}'s {name} to {documented!r}"
