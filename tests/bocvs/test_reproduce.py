"""The runner at smoke scale writes results, a report and the regret plot."""

import json

from jaxpapers.experiments import RunContext, reproduce


def test_reproduce_smoke(tmp_path):
    ctx = RunContext(out_dir=str(tmp_path), scale="smoke", show_progress=False)
    results = reproduce("bocvs", ctx)
    assert results["verdict"]
    saved = json.loads((tmp_path / "results.json").read_text())
    assert saved["metrics"] and saved["table"]
    metric = saved["metrics"]["hartmann3/moderate/0.02/ETC-Ada"]
    assert metric["status"] == [1, 1]  # budget exhausted: normal end
    assert (tmp_path / "report.md").exists()
    assert all((tmp_path / p).exists() for p in saved["plots"])
