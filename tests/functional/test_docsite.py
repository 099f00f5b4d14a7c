# Copyright (c) ovatool.vmware contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The docsite: scripts/docs.sh builds it with no warning (sphinx-build -W), every module and role has its page,
every guide of docs/docsite/extra-docs.yml is there, and no internal link or anchor leads nowhere."""
from __future__ import annotations

import glob
import os
import subprocess
from html.parser import HTMLParser
from typing import Dict, List, Set, Tuple
from urllib.parse import unquote, urlsplit

import pytest
import yaml

from support.ansiblerun import ROOT

HTML = os.path.join(ROOT, ".build", "docs", "html")
# one worker builds the site for all three tests: the build replaces .build/docs, so two at once would race
pytestmark = pytest.mark.xdist_group(name="docsite")


class _Page(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.ids: Set[str] = set()
        self.links: List[str] = []

    def handle_starttag(self, tag, attrs) -> None:
        found = dict(attrs)
        for key in ("id", "name"):
            if found.get(key) and (key == "id" or tag == "a"):
                self.ids.add(found[key])
        for key in ("href", "src"):
            if found.get(key) and tag in ("a", "img", "link", "script"):
                self.links.append(found[key])


@pytest.fixture(scope="module")
def site() -> Dict[str, _Page]:
    done = subprocess.run(["bash", os.path.join(ROOT, "scripts", "docs.sh")], cwd=ROOT, stdout=subprocess.PIPE,
                          stderr=subprocess.STDOUT, universal_newlines=True, timeout=600, check=False)
    assert done.returncode == 0, done.stdout[-4000:]
    pages = {}
    for path in glob.glob(os.path.join(HTML, "**", "*.html"), recursive=True):
        page = _Page()
        with open(path, encoding="utf-8") as handle:
            page.feed(handle.read())
        pages[os.path.relpath(path, HTML)] = page
    return pages


def _broken(pages: Dict[str, _Page]) -> List[Tuple[str, str]]:
    broken = []
    for name, page in pages.items():
        for link in page.links:
            parts = urlsplit(link)
            if parts.scheme or parts.netloc or link.startswith(("mailto:", "javascript:")):
                continue
            target = os.path.normpath(os.path.join(os.path.dirname(name), unquote(parts.path))) if parts.path \
                else name
            if not os.path.exists(os.path.join(HTML, target)):
                broken.append((name, link))
            elif parts.fragment and target.endswith(".html") and unquote(parts.fragment) not in pages[target].ids:
                broken.append((name, link))
    return broken


def test_no_internal_link_or_anchor_leads_nowhere(site):
    assert len(site) > 20
    assert _broken(site) == []


def test_the_link_check_finds_a_dead_link(site):
    """The check itself: a page with a dead link and a dead anchor is caught (so an empty result means something)."""
    page = _Page()
    page.feed('<a href="collections/ovatool/vmware/nothing_module.html">x</a><a href="index.html#no-such-anchor">y</a>'
              '<a href="index.html">fine</a>')
    assert _broken(dict(site, **{"probe.html": page})) == [
        ("probe.html", "collections/ovatool/vmware/nothing_module.html"), ("probe.html", "index.html#no-such-anchor")]


def test_every_module_role_and_guide_has_its_page(site):
    modules = [os.path.basename(p)[:-3] for p in glob.glob(os.path.join(ROOT, "plugins", "modules", "*.py"))
               if not os.path.basename(p).startswith("_")]
    roles = [name for name in os.listdir(os.path.join(ROOT, "roles"))
             if os.path.isdir(os.path.join(ROOT, "roles", name))]
    with open(os.path.join(ROOT, "docs", "docsite", "extra-docs.yml"), encoding="utf-8") as handle:
        guides = [name for section in yaml.safe_load(handle)["sections"] for name in section["toctree"]]
    base = os.path.join("collections", "ovatool", "vmware")
    wanted = [os.path.join(base, f"{m}_module.html") for m in modules] + \
        [os.path.join(base, f"{r}_role.html") for r in roles] + [os.path.join(base, "docsite", f"{g}.html") for g in guides]
    assert len(modules) >= 10 and len(roles) == 4 and len(guides) >= 7
    assert [page for page in wanted if page not in site] == []
    assert any(link.endswith("benchmark.svg") for link in site[os.path.join(base, "docsite", "performance.html")].links)
