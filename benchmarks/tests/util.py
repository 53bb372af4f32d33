"""Helpers shared by the harness's tests."""

from pathlib import Path
from typing import List

# A result's `selection_rule` when its model was selected by the rule (benchmarks/selection.py).
ON_RULE = {"eval_frequency": 10, "shortest_epoch_steps": 10, "first_epoch_steps": 12, "max_eval_interval": 100}


def empty_report_args(tmp_path: Path, *extra: str) -> List[str]:
    """`python -m benchmarks report` over an empty grid, every output under ``tmp_path``."""
    return [
        "report",
        "--metrics-dir",
        str(tmp_path / "none"),
        "--speed-json",
        str(tmp_path / "none.json"),
        "--output-json",
        str(tmp_path / "b.json"),
        "--output-md",
        str(tmp_path / "b.md"),
        "--plot-dir",
        str(tmp_path),
        *extra,
    ]
