# Copyright (c) ovatool.vmware contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Sphinx configuration of the docsite (scripts/docs.sh), after the one antsibull-docs sphinx-init writes."""

project = "ovatool.vmware"
copyright = "ovatool.vmware contributors"  # pylint: disable=redefined-builtin
title = "ovatool.vmware"
html_short_title = "ovatool.vmware"

extensions = ["sphinx_antsibull_ext"]
pygments_style = "ansible"
highlight_language = "YAML+Jinja"

html_theme = "sphinx_ansible_theme"
html_show_sphinx = False
display_version = False
html_use_smartypants = True
html_use_modindex = False
html_use_index = False
html_copy_source = False
html_title = "ovatool.vmware"

# no intersphinx: the build runs offline; the labels of Ansible's own documentation that the generated pages
# refer to are defined in ansible_links.rst, which links out to docs.ansible.com
default_role = "any"
nitpicky = True
