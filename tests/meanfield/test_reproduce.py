"""The runner at smoke scale writes results, report and plots through the registry."""

import json
import os

from jaxpapers.experiments import RunContext, reproduce


def test_reproduce_smoke(tmp_path):
    ctx = RunContext(out_dir=str(tmp_path), scale="smoke", seed=0, show_progress=False)
    results = reproduce("meanfield", ctx)
    assert results["table"] and results["verdict"]
    stored = json.loads((tmp_path / "results.json").read_text())
    assert stored["metrics"]["one_point"]["runs"] > 0
    chaos = stored["metrics"]["chaos"]
    assert len(chaos["4"]["sw2_T"]) == 3 and len(chaos["slope_T"]) == 3
    kernel_rows = [r for r in stored["table"] if r["section"].startswith("Kernel table")]
    assert len(kernel_rows) == 96 and all(r["note"] == "" for r in kernel_rows)
    assert (tmp_path / "report.md").exists()
    for plot in results["plots"]:
        assert os.path.getsize(tmp_path / plot) > 0
