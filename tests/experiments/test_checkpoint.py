"""Checkpoints cannot mix runs; a training interrupted and resumed ends bitwise equal."""

import json
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from jaxpapers.experiments import Checkpointer, train_loop


class State(NamedTuple):
    params: dict
    opt_state: tuple
    step: jax.Array


OPT = optax.adam(0.05)
DATA = jnp.linspace(-1.0, 1.0, 64)


def _update(key, state, data):
    """One noisy least-squares step: the key matters, so a wrong key schedule shows."""
    def loss(p):
        noise = 0.1 * jax.random.normal(key, data.shape)
        return jnp.mean((p["w"] * data + p["b"] - (2.0 * data + 1.0 + noise)) ** 2)

    value, grads = jax.value_and_grad(loss)(state.params)
    updates, opt_state = OPT.update(grads, state.opt_state, state.params)
    return State(optax.apply_updates(state.params, updates), opt_state, state.step + 1), value


def _init():
    params = {"w": jnp.zeros(()), "b": jnp.zeros(())}
    return State(params, OPT.init(params), jnp.int32(0))


CONFIG = {"lr": 0.05, "steps": 12}


class Interrupt(Exception):
    pass


def _same(a, b):
    for x, y in zip(jax.tree_util.tree_leaves(a), jax.tree_util.tree_leaves(b), strict=True):
        np.testing.assert_array_equal(np.asarray(x), np.asarray(y))


@pytest.mark.parametrize("loop", ["scan", "host"])
def test_interrupted_and_resumed_training_is_bitwise_equal(tmp_path, loop):
    key = jax.random.key(7)
    full, full_losses = train_loop(_update, _init(), key, 12, args=(DATA,), chunk=4, loop=loop)

    first = Checkpointer(str(tmp_path), "toy", 0, "fit", CONFIG)
    saves = []
    original_save = first.save

    def save_then_crash(step, tree):
        original_save(step, tree)
        saves.append(step)
        if len(saves) == 2:
            raise Interrupt  # a crash right after the checkpoint at step 8

    first.save = save_then_crash
    with pytest.raises(Interrupt):
        train_loop(_update, _init(), key, 12, args=(DATA,), chunk=4, checkpointer=first,
                   loop=loop)
    resumed_ckpt = Checkpointer(str(tmp_path), "toy", 0, "fit", CONFIG, resume=True)
    assert resumed_ckpt.latest_step() == 8
    resumed, resumed_losses = train_loop(_update, _init(), key, 12, args=(DATA,), chunk=4,
                                         checkpointer=resumed_ckpt, loop=loop)
    _same(full, resumed)
    _same(full_losses, resumed_losses)
    assert float(full_losses[-1]) < float(full_losses[0])


def test_host_loop_takes_the_same_steps_as_the_scan():
    """One jitted call per step uses the same key schedule as the scanned chunks: the two
    trajectories agree to float rounding (they are different compiled programs)."""
    key = jax.random.key(3)
    scan_state, scan_losses = train_loop(_update, _init(), key, 10, args=(DATA,), chunk=3,
                                         loop="scan")
    host_state, host_losses = train_loop(_update, _init(), key, 10, args=(DATA,), chunk=4,
                                         loop="host")
    np.testing.assert_allclose(np.asarray(host_losses), np.asarray(scan_losses), rtol=1e-5)
    for x, y in zip(jax.tree_util.tree_leaves(host_state), jax.tree_util.tree_leaves(scan_state),
                    strict=True):
        np.testing.assert_allclose(np.asarray(x), np.asarray(y), rtol=1e-5, atol=1e-7)
    assert int(host_state.step) == 10


def test_auto_loop_picks_the_host_loop_for_convolutions_on_the_cpu():
    from jaxpapers._src.training import _choose_loop

    kernel = jnp.ones((3, 1, 2))

    def conv_update(key, state):
        def loss(w):
            y = jax.lax.conv_general_dilated(jnp.ones((2, 8, 1)), w, (1,), "SAME",
                                             dimension_numbers=("NWC", "WIO", "NWC"))
            return jnp.sum(y ** 2)

        return state._replace(params={"w": state.params["w"] - jax.grad(loss)(
            state.params["w"])}, step=state.step + 1), jnp.float32(0)

    conv_state = State({"w": kernel}, (), jnp.int32(0))
    key = jax.random.key(0)
    expected = "host" if jax.default_backend() == "cpu" else "scan"
    assert _choose_loop("auto", conv_update, conv_state, key, ()) == expected
    # a convolution nested in a scan inside the step is found too
    def nested(key, state):
        return jax.lax.scan(lambda c, _: (conv_update(key, c)[0], None), state, None,
                            length=2)[0], jnp.float32(0)

    assert _choose_loop("auto", nested, conv_state, key, ()) == expected
    assert _choose_loop("auto", _update, _init(), key, (DATA,)) == "scan"
    assert _choose_loop("scan", conv_update, conv_state, key, ()) == "scan"
    with pytest.raises(ValueError, match="loop must be"):
        train_loop(_update, _init(), key, 2, args=(DATA,), loop="python")


def test_without_resume_nothing_is_restored(tmp_path):
    key = jax.random.key(0)
    train_loop(_update, _init(), key, 8, args=(DATA,), chunk=4,
               checkpointer=Checkpointer(str(tmp_path), "toy", 0, "fit", CONFIG))
    fresh = Checkpointer(str(tmp_path), "toy", 0, "fit", CONFIG)  # resume=False
    assert fresh.latest_step() is None and fresh.restore(_init()) is None


def test_another_seed_never_reuses_the_state(tmp_path):
    key = jax.random.key(0)
    train_loop(_update, _init(), key, 8, args=(DATA,), chunk=4,
               checkpointer=Checkpointer(str(tmp_path), "toy", 0, "fit", CONFIG))
    other_seed = Checkpointer(str(tmp_path), "toy", 1, "fit", CONFIG, resume=True)
    assert other_seed.latest_step() is None
    assert other_seed.directory != Checkpointer(str(tmp_path), "toy", 0, "fit", CONFIG,
                                                resume=True).directory


def test_resume_under_another_config_is_refused_naming_both(tmp_path):
    key = jax.random.key(0)
    train_loop(_update, _init(), key, 4, args=(DATA,), chunk=4,
               checkpointer=Checkpointer(str(tmp_path), "toy", 0, "fit", CONFIG))
    other = {"lr": 0.01, "steps": 12}
    with pytest.raises(ValueError) as err:
        Checkpointer(str(tmp_path), "toy", 0, "fit", other, resume=True)
    message = str(err.value)
    assert json.dumps(CONFIG, sort_keys=True) in message
    assert json.dumps(other, sort_keys=True) in message
    # a fresh start under the new config is allowed
    Checkpointer(str(tmp_path), "toy", 0, "fit", other)


def test_config_hash_is_stable_and_sensitive():
    from jaxpapers.experiments import config_hash

    assert config_hash({"a": 1, "b": (2, 3)}) == config_hash({"b": [2, 3], "a": 1})
    assert config_hash({"a": 1}) != config_hash({"a": 2})
