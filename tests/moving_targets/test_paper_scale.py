"""The ``paper`` scale's configuration (written for an accelerator) dry-run at tiny sizes on CPU:
every kind of cell it holds (all methods and variants, extra hidden sizes, the limit-cycle and
parity tasks, the segment-length ablation) runs through the runner and reports."""

import dataclasses

import pytest

from jaxpapers.experiments import RunContext
from jaxpapers.moving_targets._experiments import _reproduce


def test_paper_scale_cells_resolve():
    cells = _reproduce._cells(_reproduce.SCALES["paper"])
    methods = {cell.method for cell in cells}
    assert {"MT-shooting K=1", "MT-shooting K=202", "hybrid", "random [-100, 100]",
            "MT-joint alpha=0", "MT-joint don't-care", "MT-varpro @0.1/0.9"} <= methods
    assert {cell.task for cell in cells} == {"delay", "limit_cycle", "parity"}
    assert len(cells) == len(set(cells))


@pytest.mark.slow
def test_paper_scale_dry_run_at_tiny_sizes(tmp_path):
    tiny = dataclasses.replace(_reproduce.SCALES["paper"], delays=(3,), hidden=(2,), seeds=2,
                               budget=20, beyond_delays=(3,), beyond_hidden=(3,),
                               segments=(1, 2, 4), check_every=5, chunk=5)
    ctx = RunContext(out_dir=str(tmp_path), method="moving_targets", scale="paper-tiny",
                     show_progress=False)
    result = _reproduce.run(ctx, tiny)
    cells = result.metrics["cells"]
    assert set(cells) == {"delay", "limit_cycle", "parity"}
    assert "MT-shooting K=4" in cells["delay"]["3"]["H2"]
    assert result.summary.startswith("Paper method MT-joint")
