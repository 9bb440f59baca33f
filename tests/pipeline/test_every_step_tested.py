"""A step cannot land untested: every module of ``gateway/pipeline/steps/`` has a test
file here that calls its ``run(ctx)``, and every step in the pipeline is such a module."""

from __future__ import annotations

from pathlib import Path

from gateway.pipeline.flow import PIPELINE
from gateway.pipeline.steps import STEPS

STEPS_DIR = Path(__file__).resolve().parents[2] / "gateway" / "pipeline" / "steps"
TESTS_DIR = Path(__file__).resolve().parent / "steps"


def _modules() -> list[str]:
    return sorted(p.stem for p in STEPS_DIR.glob("*.py") if p.stem != "__init__")


def test_every_step_module_has_a_test_file_that_runs_it() -> None:
    missing = [m for m in _modules() if not (TESTS_DIR / f"test_{m}.py").is_file()]
    assert missing == [], f"steps without tests/pipeline/steps/test_<step>.py: {missing}"
    silent = [m for m in _modules()
              if f"{m}.run(ctx)" not in (TESTS_DIR / f"test_{m}.py").read_text()]
    assert silent == [], f"step tests that never call <step>.run(ctx): {silent}"


def test_every_pipeline_step_is_a_module_of_the_steps_folder() -> None:
    modules = {m.replace("_", "-") for m in _modules()}
    assert set(PIPELINE) == set(STEPS) == modules
