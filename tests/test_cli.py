import dataclasses
import json
import subprocess
import sys

import pytest

import jaxpapers
from jaxpapers.cli import main
from jaxpapers.experiments import METHODS, SCHEMA, RunContext, implemented, reproduce, scales


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
    (["reproduce", "smc", "--coordinator", "localhost:1234"], "give all of"),
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


def test_run_context_validates(tmp_path):
    with pytest.raises(ValueError, match="scale"):
        RunContext(out_dir="x", scale="")
    with pytest.raises(ValueError, match="seed"):
        RunContext(out_dir="x", seed=-1)
    with pytest.raises(ValueError, match="smc has no scale 'medium'; choose from: smoke"):
        reproduce("smc", RunContext(out_dir=str(tmp_path), scale="medium"))


def test_version_answers_without_jax():
    proc = _run("--version")
    assert proc.returncode == 0 and proc.stdout.strip() == f"jaxpapers {jaxpapers.__version__}"
    code = "import sys; from jaxpapers.cli import main; main(['--version']); " \
           "assert 'jax' not in sys.modules"
    assert subprocess.run([sys.executable, "-c", code], capture_output=True).returncode == 0


def test_every_scale_comes_from_the_registry(capsys):
    assert main(["list"]) == 0
    out = capsys.readouterr().out
    for name in METHODS:
        if implemented(name):
            assert f"[{', '.join(scales(name))}]" in out
            for config in scales(name).values():
                assert dataclasses.is_dataclass(config)
                with pytest.raises(dataclasses.FrozenInstanceError):
                    config.__setattr__(dataclasses.fields(config)[0].name, None)


def test_importing_runners_touches_no_device():
    code = ("from jaxpapers.experiments import METHODS, implemented, scales\n"
            "[scales(n) for n in METHODS if implemented(n)]\n"
            "import jax._src.xla_bridge as xb\n"
            "assert not xb.backends_are_initialized()\n")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr[-3000:]


def test_diff_reports_changed_numbers(tmp_path):
    base = {"schema": SCHEMA, "method": "smc", "scale": "smoke", "config": {"n": 3},
            "metrics": {"a": {"b": [1.0, 2.0]},
                                                               "wall_s": 1.0},
            "table": [{"section": "s", "quantity": "q", "ours": {"mean": 1.0, "se": 0.1}}]}
    changed = json.loads(json.dumps(base))
    changed["metrics"]["a"]["b"][1] = 2.5
    changed["metrics"]["wall_s"] = 9.0  # timings are not differences
    for name, data in (("a.json", base), ("b.json", changed)):
        (tmp_path / name).write_text(json.dumps(data))
    same = _run("diff", str(tmp_path / "a.json"), str(tmp_path / "a.json"))
    assert same.returncode == 0 and "0 difference" in same.stderr
    proc = _run("diff", str(tmp_path / "a.json"), str(tmp_path / "b.json"))
    assert proc.returncode == 1
    assert proc.stdout.strip() == "metrics.a.b[1]: 2.0 != 2.5"


def test_diff_names_the_file_and_refuses_other_methods(tmp_path):
    good = {"schema": SCHEMA, "method": "smc", "scale": "smoke", "config": {}, "metrics": {}}
    other = dict(good, method="bocvs")
    files = {"good.json": json.dumps(good), "other.json": json.dumps(other),
             "list.json": "[1, 2]", "broken.json": "{", "empty.json": ""}
    for name, text in files.items():
        (tmp_path / name).write_text(text)
    for name, message in [("list.json", "expected a results object, got a JSON list"),
                          ("broken.json", "not JSON"), ("empty.json", "not JSON"),
                          ("missing.json", "No such file")]:
        proc = _run("diff", str(tmp_path / name), str(tmp_path / "good.json"))
        lines = proc.stderr.strip().splitlines()
        assert proc.returncode == 2 and len(lines) == 1, proc.stderr
        assert str(tmp_path / name) in lines[0] and message in lines[0], lines[0]
    proc = _run("diff", str(tmp_path / "good.json"), str(tmp_path / "other.json"))
    assert proc.returncode == 2 and "different methods: 'smc'" in proc.stderr
    proc = _run("diff", str(tmp_path / "good.json"), str(tmp_path / "good.json"), "--rtol", "nan")
    assert proc.returncode == 2 and "tolerance" in proc.stderr


def test_an_unreachable_coordinator_is_one_line_within_the_timeout():
    proc = _run("reproduce", "smc", "--scale", "smoke", "--coordinator", "localhost:1",
                "--num-processes", "2", "--process-id", "1", "--coordinator-timeout", "2")
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr.strip().splitlines() == [
        "jaxpapers: error: the coordinator localhost:1 was unreachable for 2 s (Connection "
        "refused); start process 0 first, or check the address"]
