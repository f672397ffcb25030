"""The runner at smoke scale writes results, a report and the regret plot."""

import json

import pytest

from jaxpapers.experiments import RunContext, reproduce


@pytest.mark.slow  # about 70 s on 2 cores: the smoke scale runs EI and the sensitivity repeat
def test_reproduce_smoke(tmp_path):
    ctx = RunContext(out_dir=str(tmp_path), scale="smoke", show_progress=False)
    results = reproduce("bocvs", ctx)
    assert results["verdict"]
    saved = json.loads((tmp_path / "results.json").read_text())
    assert saved["metrics"] and saved["table"]
    metric = saved["metrics"]["hartmann3"]["moderate"]["0.02"]["ETC-Ada"]
    assert metric["status"] == [1, 1]  # budget exhausted: normal end
    ei = saved["metrics"]["hartmann3"]["moderate"]["0.02"]["EI-PSQ per cost"]
    assert len(ei["per_seed"]) == 2 and ei["rounds"][0] > 0
    assert len(saved["metrics"]["sensitivity"]["ETC-Ada"]) == 2
    assert any(r["section"].startswith("Sensitivity") for r in saved["table"])
    assert (tmp_path / "report.md").exists()
    assert all((tmp_path / p).exists() for p in saved["plots"])


def test_every_scale_builds_valid_configs_and_buffers_fit_the_etc_schedules():
    from jaxpapers.bocvs import COST_REGIMES, BOConfig, OptimizerConfig
    from jaxpapers.bocvs._experiments._reproduce import SCALES, _policy

    for name, sc in SCALES.items():
        cfg = BOConfig(num_samples=sc.num_samples, num_eval_samples=sc.num_eval_samples,
                       optimizer=OptimizerConfig(sc.num_raw, sc.num_restarts, sc.num_steps),
                       buckets=sc.buckets, num_features=sc.num_features)
        for regime in sc.regimes:
            costs = COST_REGIMES[regime]
            for method in sc.methods:
                pol = _policy(method, costs)
                if not method.startswith("ETC"):
                    continue
                n1, n2 = (int(t) for t in pol.targets)
                # simulate the schedule's spend: n1 plays at c1, n2 at c2, then full sets at 1.0
                spent, rounds = 0.0, 0
                for cost in [costs[0]] * n1 + [costs[3]] * n2 + [costs[6]] * 10**4:
                    if cost > sc.budget - spent + 1e-9:
                        break
                    spent, rounds = spent + cost, rounds + 1
                assert rounds <= cfg.max_rounds, (name, regime, method, rounds)
