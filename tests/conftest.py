"""Global test settings: rank promotion raises; a fixed `key` fixture."""

import os

os.environ.setdefault("JAX_PLATFORMS", "cpu")

import jax  # noqa: E402
import pytest  # noqa: E402

jax.config.update("jax_numpy_rank_promotion", "raise")

try:  # hypothesis: first-call compiles exceed the default 200 ms deadline
    from hypothesis import settings

    settings.register_profile("jax", deadline=None, max_examples=25, derandomize=True)
    settings.load_profile("jax")
except ImportError:  # pragma: no cover
    pass


@pytest.fixture
def key():
    """A fixed PRNG key; split it inside the test."""
    return jax.random.key(0)
