"""The CLI as a new user runs it: from an empty working folder, the default relative ``--out``,
every method at the smoke scale, then a resume into the same relative folder; and a failing or
skipped method that must not stop ``reproduce all``."""

import json
import os
import re
import shutil
import subprocess
import sys

import pytest

from jaxpapers import cli
from jaxpapers._src.errors import MissingDependencyError
from jaxpapers.experiments import METHODS, RunContext, implemented


def _jaxpapers(cwd, *args, cache):
    env = dict(os.environ, JAX_PLATFORMS="cpu", JAXPAPERS_COMPILE_CACHE=str(cache))
    env.pop("XLA_FLAGS", None)
    return subprocess.run([sys.executable, "-m", "jaxpapers", *args], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=1800)


@pytest.fixture(scope="module")
def fresh_folder(tmp_path_factory):
    """An empty working folder after ``jaxpapers reproduce all --scale smoke`` (one test uses
    it, so one run per test session, on whichever worker takes that test)."""
    cwd = tmp_path_factory.mktemp("user")
    cache = tmp_path_factory.mktemp("xla-cache")
    proc = _jaxpapers(cwd, "reproduce", "all", "--scale", "smoke", "--no-progress", cache=cache)
    return cwd, cache, proc


def _check_reproduce_all_from_an_empty_folder_with_the_default_out(fresh_folder):
    cwd, _, proc = fresh_folder
    assert proc.returncode == 0, (proc.stdout + proc.stderr)[-4000:]
    methods = [name for name in METHODS if implemented(name)]
    for name in methods:
        assert (cwd / "runs" / name / "report.md").is_file(), name
        results = json.loads((cwd / "runs" / name / "results.json").read_text())
        assert results["method"] == name and results["scale"] == "smoke"
    summary = (cwd / "runs" / "summary.md").read_text()
    for name in methods:
        assert re.search(rf"^\| {name} \| \d+ / \d+ / \d+ \| .* \| ok \| ", summary, re.M), name
    assert summary.strip() in proc.stdout


SMOKE_CHECKS = [
    ("meanfield", "tests.meanfield.test_reproduce"),
    ("diffusion_resampling", "tests.diffusion_resampling.test_runner"),
    ("xit", "tests.xit.test_training"),
    ("moving_targets", "tests.moving_targets.test_reproduce"),
]


def _check_each_methods_smoke_results(fresh_folder, method, module):
    """The per-method checks of a smoke run, on this run's folders (their in-process smoke runs
    are slow-marked: one smoke run of each method per CI run)."""
    import importlib

    cwd, _, proc = fresh_folder
    assert proc.returncode == 0, (proc.stdout + proc.stderr)[-4000:]
    importlib.import_module(module).check_smoke_results(cwd / "runs" / method)


def _check_the_run_prints_no_traceback_and_no_library_warning(fresh_folder):
    _, _, proc = fresh_folder
    text = proc.stdout + proc.stderr
    assert "Traceback" not in text
    assert not re.search(r"^(WARNING|ERROR|E\d{4}|W\d{4}) ", text, re.M), text[-3000:]  # absl
    assert not re.search(r"\b\w+Warning\b", text), text[-3000:]


def _check_resume_into_the_relative_folder_gives_the_same_numbers(fresh_folder, tmp_path):
    shared, cache, _ = fresh_folder
    cwd = tmp_path / "user"     # a copy: the shared run's files stay as they were
    shutil.copytree(shared / "runs" / "bocvs", cwd / "runs" / "bocvs")
    first = cwd / "first-bocvs.json"
    shutil.copy(cwd / "runs" / "bocvs" / "results.json", first)
    proc = _jaxpapers(cwd, "reproduce", "bocvs", "--scale", "smoke", "--resume",
                      "--no-progress", cache=cache)
    assert proc.returncode == 0, proc.stderr[-4000:]
    diff = _jaxpapers(cwd, "diff", str(first), "runs/bocvs", cache=cache)
    assert diff.returncode == 0 and "0 difference" in diff.stderr, diff.stdout + diff.stderr


def test_the_quickstart_smoke_run_as_a_new_user(fresh_folder, tmp_path):
    """Every check of the shared smoke run in one test: split over tests, a second xdist worker
    would sit idle waiting for the run the first one is doing."""
    _check_reproduce_all_from_an_empty_folder_with_the_default_out(fresh_folder)
    for method, module in SMOKE_CHECKS:
        _check_each_methods_smoke_results(fresh_folder, method, module)
    _check_the_run_prints_no_traceback_and_no_library_warning(fresh_folder)
    _check_resume_into_the_relative_folder_gives_the_same_numbers(fresh_folder, tmp_path)


def _fake_results(name):
    return {"verdict": {"summary": f"{name} done", "held": 1, "tie": 2, "reversed": 0},
            "wall_s": 1.5, "compile_s": 0.5}


def test_a_failing_method_does_not_stop_all(tmp_path, monkeypatch, capsys):
    import jaxpapers.experiments as experiments

    ran = []

    def reproduce(name, ctx):
        ran.append(name)
        assert os.path.isabs(ctx.out_dir)
        if name == "bocvs":
            raise RuntimeError("the optimiser diverged\nsecond line")
        if name == "xit":
            raise MissingDependencyError("xit needs the sets ['X']: put them in DIR")
        return _fake_results(name)

    monkeypatch.setattr(experiments, "reproduce", reproduce)
    monkeypatch.chdir(tmp_path)
    code = cli.main(["reproduce", "all", "--scale", "smoke", "--no-progress",
                     "--no-compile-cache", "--out", "my runs"])
    out, err = capsys.readouterr()
    methods = [name for name in METHODS if implemented(name)]
    assert code == 1 and ran == methods
    assert "2 of 7 methods did not finish: bocvs (failed: RuntimeError: the optimiser diverged" \
        in err and "xit (skipped: xit needs the sets ['X']: put them in DIR)" in err
    assert "second line" not in err
    log = tmp_path / "my runs" / "bocvs" / "error.log"
    assert "Traceback" in log.read_text() and str(log) in err
    summary = (tmp_path / "my runs" / "summary.md").read_text()
    assert "| smc | 1 / 2 / 0 | 1.5 | 0.5 | ok |" in summary
    assert "| bocvs | – |" in summary and "| failed: RuntimeError" in summary
    assert summary.strip() in out


@pytest.mark.parametrize("given", ["runs", "~/x y", "./a/../b", "/abs/path"])
def test_out_is_resolved_once_to_an_absolute_path(given, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    expected = os.path.abspath(os.path.expanduser(given))
    assert cli._out_dir(given) == expected
    ctx = RunContext(out_dir=given)
    assert ctx.out_dir == expected and os.path.isabs(ctx.checkpointer("t", {}).directory)


@pytest.mark.parametrize("seed", ["4294967296", "9223372036854775808", "-1", "x"])
def test_seeds_outside_a_32_bit_key_are_refused(seed, capsys):
    with pytest.raises(SystemExit) as exit_:
        cli.main(["reproduce", "smc", "--seed", seed])
    assert exit_.value.code == 2 and "seed" in capsys.readouterr().err
    with pytest.raises(ValueError, match="seed"):
        RunContext(out_dir="runs", seed=2**32)
