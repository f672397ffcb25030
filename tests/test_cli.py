import json
import subprocess
import sys

import pytest

from jaxpapers.cli import main
from jaxpapers.experiments import METHODS, RunContext


def _run(*args, **kw):
    return subprocess.run([sys.executable, "-m", "jaxpapers", *args], capture_output=True,
                          text=True, timeout=600, **kw)


def test_list_names_every_method(capsys):
    assert main(["list"]) == 0
    out = capsys.readouterr().out
    for name in METHODS:
        assert name in out


@pytest.mark.parametrize("argv, fragment", [
    (["reproduce", "nonsense"], "unknown method"),
    (["reproduce", "smc", "--scale", "huge"], "invalid choice"),
    (["reproduce", "smc", "--seed", "-3"], "non-negative"),
    (["reproduce", "smc", "--devices", "0"], "positive"),
    (["bench", "no_such_family"], "no benchmark"),
])
def test_bad_input_is_one_line_and_nonzero(argv, fragment):
    proc = _run(*argv)
    assert proc.returncode != 0
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and fragment in lines[0], proc.stderr
    assert "Traceback" not in proc.stderr


def test_unwritable_out_is_reported(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    proc = _run("reproduce", "smc", "--out", str(blocker / "sub"))
    assert proc.returncode != 0 and "not writable" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_run_context_validates():
    with pytest.raises(ValueError, match="scale"):
        RunContext(out_dir="x", scale="medium")
    with pytest.raises(ValueError, match="seed"):
        RunContext(out_dir="x", seed=-1)


def test_reproduce_smc_writes_results(tmp_path):
    proc = _run("reproduce", "smc", "--scale", "smoke", "--out", str(tmp_path), "--no-progress",
                "--devices", "2")
    assert proc.returncode == 0, proc.stderr[-4000:]
    results = json.loads((tmp_path / "smc" / "results.json").read_text())
    for field in ["method", "experiment", "scale", "seed", "config", "metrics", "paper",
                  "device", "jax_version", "wall_s", "compile_s"]:
        assert field in results
    report = (tmp_path / "smc" / "report.md").read_text()
    assert "| quantity | ours | paper |" in report and "Verdict" in report
    for plot in results["plots"]:
        assert (tmp_path / "smc" / plot).stat().st_size > 0
    assert results["device"].endswith("x2"), results["device"]  # --devices 2 simulated on CPU
