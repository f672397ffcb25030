"""A training name becomes a folder in one place (``folder_name``): any string works, distinct
names never share a folder, and a plain name keeps the folder it always had."""

import os

import jax.numpy as jnp
import numpy as np
import pytest

from jaxpapers._src.checkpoint import folder_name
from jaxpapers.experiments import Checkpointer

ODD = ["encoder[0]", "rep(1)", "a/b", "../up", "with space", "x*y?", "é", ".hidden", "a:b"]


@pytest.mark.parametrize("name", ODD)
def test_odd_names_save_and_restore_inside_their_seed_folder(tmp_path, name):
    tree = {"w": jnp.arange(3.0), "step": jnp.int32(5)}
    saver = Checkpointer(str(tmp_path), "toy", 0, name, {"a": 1})
    saver.save(5, tree)
    saver.close()
    loader = Checkpointer(str(tmp_path), "toy", 0, name, {"a": 1}, resume=True)
    step, restored = loader.restore({"w": jnp.zeros(3), "step": jnp.int32(0)})
    loader.close()
    assert step == 5
    np.testing.assert_array_equal(restored["w"], np.arange(3.0))
    seed_folder = os.path.join(str(tmp_path), "toy", "seed0")
    assert os.path.dirname(loader.directory) == seed_folder  # no nesting, no escape
    assert os.listdir(seed_folder) == [os.path.basename(loader.directory)]


def test_resume_under_another_config_is_refused_for_an_odd_name(tmp_path):
    saver = Checkpointer(str(tmp_path), "toy", 0, "net[1]", {"a": 1})
    saver.save(1, {"w": jnp.ones(2)})
    saver.close()
    with pytest.raises(ValueError, match="net\\[1\\]"):
        Checkpointer(str(tmp_path), "toy", 0, "net[1]", {"a": 2}, resume=True)


def test_folder_names_are_distinct_and_plain_names_unchanged():
    names = ODD + ["encoder_0_", "a_b", "rep-1", "denoiser-rep0", "discriminator.rep1"]
    folders = [folder_name(n) for n in names]
    assert len(set(folders)) == len(names)
    assert all(f and f == os.path.basename(f) and not f.startswith(".") for f in folders)
    for plain in ["encoder_0_", "a_b", "rep-1", "denoiser-rep0", "discriminator.rep1"]:
        assert folder_name(plain) == plain
    with pytest.raises(ValueError, match="non-empty string"):
        folder_name("")
