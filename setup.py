"""Build hook only (the project is declared in pyproject.toml).

DESIGN 2 keeps the mail and page templates in the top-level ``templates/`` folder,
which is no package, so setuptools' package data cannot reach it.  A wheel must
carry them all the same (``gateway serve`` renders every acknowledgement from them):
the build copies ``templates/`` into the wheel as ``outbound/templates/``, where
:func:`outbound.render.default_templates_dir` looks first.  An editable install
reads the checkout's folder directly and copies nothing.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py

TEMPLATES = Path(__file__).resolve().parent / "templates"


class BuildWithTemplates(build_py):
    """``build_py`` that also puts ``templates/`` into the build as ``outbound/templates``."""

    def run(self) -> None:
        super().run()
        if self.editable_mode:
            return
        target = Path(self.build_lib) / "outbound" / "templates"
        shutil.rmtree(target, ignore_errors=True)
        shutil.copytree(TEMPLATES, target, ignore=shutil.ignore_patterns("__pycache__", "*.py[co]"))


setup(cmdclass={"build_py": BuildWithTemplates})
