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
    # a resumed run restores every finished batch and reports the same numbers
    again = reproduce("bocvs", RunContext(out_dir=str(tmp_path), scale="smoke",
                                          show_progress=False, resume=True))
    assert again["metrics"]["hartmann3"] == results["metrics"]["hartmann3"]
    assert again["metrics"]["sensitivity"] == results["metrics"]["sensitivity"]


def test_seed_groups_run_each_seed_as_one_vmap_does():
    import jax
    import jax.numpy as jnp
    import numpy as np

    from jaxpapers.bocvs._experiments._reproduce import _over_seeds

    def one_run(key, spec, policy):  # a loop whose length depends on the seed
        stop = 3 + jax.random.randint(key, (), 0, 5)
        out = jax.lax.while_loop(lambda c: c[0] < stop,
                                 lambda c: (c[0] + 1, c[1] * spec + policy), (0, 1.0))
        return out[1], stop

    keys = jax.random.split(jax.random.key(3), 5)
    together = jax.jit(_over_seeds(one_run, 0))(keys, jnp.float32(1.5), 0.25)
    for batch in (1, 2):
        grouped = jax.jit(_over_seeds(one_run, batch))(keys, jnp.float32(1.5), 0.25)
        for a, b in zip(together, grouped, strict=True):
            np.testing.assert_array_equal(np.asarray(a), np.asarray(b))


def test_finished_batches_are_restored_on_resume_and_never_rerun(tmp_path):
    import jax
    import jax.numpy as jnp
    import numpy as np

    from jaxpapers.bocvs import History
    from jaxpapers.bocvs._experiments._reproduce import _run_or_restore

    def raw(x):
        t = x.shape[0]
        return History(set_index=jnp.arange(t, dtype=jnp.int32), stage=jnp.zeros(t, jnp.int32),
                       query=x[:, None] * 2.0, x=x[:, None], y=x, cost=x, spent=jnp.cumsum(x),
                       value=-x, acq_value=x, x_init=x[:2, None], y_init=x[:2],
                       num_rounds=jnp.int32(t), total_spent=x.sum(), status=jnp.int32(1),
                       last_choice=jnp.int32(-1))

    x = jnp.linspace(0.0, 1.0, 5)
    calls = []

    def jitted(*args):
        calls.append(1)
        return jax.jit(raw)(*args)

    def context(resume):
        return RunContext(out_dir=str(tmp_path), show_progress=False, resume=resume,
                          method="bocvs")

    first, _ = _run_or_restore(context(False), "task a", {"n": 5}, raw, jitted, (x,))
    second, _ = _run_or_restore(context(True), "task a", {"n": 5}, raw, jitted, (x,))
    assert len(calls) == 1 and isinstance(second, History)
    for a, b in zip(first, second):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
    with pytest.raises(ValueError, match="another --out"):
        _run_or_restore(context(True), "task a", {"n": 6}, raw, jitted, (x,))
    _run_or_restore(context(False), "task a", {"n": 5}, raw, jitted, (x,))  # not resuming: reruns
    assert len(calls) == 2


def test_every_scale_builds_valid_configs_and_buffers_fit_the_etc_schedules():
    from jaxpapers.bocvs import BOConfig, OptimizerConfig
    from jaxpapers.bocvs._experiments._reproduce import SCALES, _policy
    from jaxpapers.bocvs.problems import COST_REGIMES

    for name, sc in SCALES.items():
        assert sc.seed_batch >= 0
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
