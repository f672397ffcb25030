"""The procedural shapes renderer against a NumPy pixel oracle; the 32x32 pipeline end to end."""

import os

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxpapers.diffusion_resampling._experiments._shapes import make_shapes, multi_hot, set_id


def _kinds_from_pixels(image):
    """Independent oracle: classify each 16x16 cell's foreground blob by its geometry.

    square: fills its bounding box; triangle (apex up): row widths never decrease downwards and
    the bottom row is the widest; circle: both the top and the bottom rows are narrower than the
    widest row. Returns multi-hot [3].
    """
    fg = np.any(image > -1.0, axis=-1)
    found = np.zeros(3)
    for cy in (0, 16):
        for cx in (0, 16):
            m = fg[cy:cy + 16, cx:cx + 16]
            if not m.any():
                continue
            ys, xs = np.nonzero(m)
            box = m[ys.min():ys.max() + 1, xs.min():xs.max() + 1]
            widths = box.sum(axis=1)
            if box.all():
                found[1] = 1
            elif np.all(np.diff(widths) >= 0):
                found[2] = 1
            else:
                assert widths[0] < widths.max() and widths[-1] < widths.max()
                assert 0.65 < box.mean() < 0.9
                found[0] = 1
            colours = image[cy:cy + 16, cx:cx + 16][m]
            np.testing.assert_allclose(colours, np.broadcast_to(colours[0], colours.shape))
    return found


def test_renderer_shapes_range_and_labels_match_pixels(key):
    images, labels = make_shapes(key, 48)
    assert images.shape == (48, 32, 32, 3) and labels.shape == (48, 3)
    images, labels = np.asarray(images), np.asarray(labels)
    assert images.min() >= -1.0 and images.max() <= 1.0
    assert set(np.unique(labels)) <= {0.0, 1.0}
    counts = labels.sum(1)
    assert counts.min() >= 1 and counts.max() <= 3
    for img, lab in zip(images, labels, strict=True):
        np.testing.assert_array_equal(_kinds_from_pixels(img), lab)
    # every kind and every count of shapes occurs
    assert labels.sum(0).min() > 0
    fg_cells = [(np.any(img > -1, -1).reshape(2, 16, 2, 16).any((1, 3))).sum() for img in images]
    assert {1, 2, 3} <= set(fg_cells)


def test_renderer_deterministic_per_key(key):
    a = make_shapes(key, 48)
    b = make_shapes(key, 48)
    c = make_shapes(jax.random.fold_in(key, 1), 48)
    np.testing.assert_array_equal(np.asarray(a[0]), np.asarray(b[0]))
    np.testing.assert_array_equal(np.asarray(a[1]), np.asarray(b[1]))
    assert not np.array_equal(np.asarray(a[0]), np.asarray(c[0]))


def test_set_id_round_trip():
    hot = jnp.asarray([[1, 0, 0], [0, 1, 0], [0, 0, 1], [1, 1, 1], [1, 0, 1]], jnp.float32)
    ids = set_id(hot)
    np.testing.assert_array_equal(np.asarray(ids), [1, 2, 4, 7, 5])
    np.testing.assert_array_equal(np.asarray(multi_hot(ids)), np.asarray(hot))


def test_image_and_shapes_configs_validate():
    from jaxpapers.diffusion_resampling._experiments._images import ImageConfig
    from jaxpapers.diffusion_resampling._experiments._shapes import ShapesConfig

    ImageConfig()
    ShapesConfig()
    for bad in ({"chunk": 300}, {"ks": (0, 2)}, {"resample_levels": (0, 5)}, {"replicates": 0},
                {"model": "vit"}, {"methods": ("PF-Hybrid",)}, {"methods": ("plain", "best")},
                {"model_replicates": 0}, {"hybrid_disc_weights": (-0.5,)},
                {"ablation_ks": (0,)}, {"ablation_ks": (2,), "ablation_methods": ("PF-Detector",)}):
        with pytest.raises(ValueError, match="ImageConfig"):
            ImageConfig(**bad)
    with pytest.raises(ValueError, match="ShapesConfig"):
        ShapesConfig(detector_steps=0)


@pytest.mark.slow
def test_shapes_pipeline_runs_at_toy_size(tmp_path):
    """The shapes setting at toy size through the runner's image section (rows, plot)."""
    from jaxpapers.diffusion_resampling._experiments._images import ImageConfig
    from jaxpapers.diffusion_resampling._experiments._reproduce import (
        SCALES,
        DiffusionScale,
        _image_section,
    )
    from jaxpapers.diffusion_resampling._experiments._shapes import ShapesConfig
    from jaxpapers.experiments import RunContext

    cfg = ImageConfig(num_steps=8, channels=8, denoiser_steps=10, batch_size=16,
                      disc_channels=8, disc_steps=10, num_real_disc=32, num_fake_disc=16,
                      num_out=16, ks=(1, 2), replicates=2, resample_levels=(2, 4), chunk=8,
                      methods=SCALES["paper"].shapes.methods)
    data = ShapesConfig(num_train=64, detector_channels=8, detector_steps=10, detector_batch=16,
                        num_eval_real=32, chunk=8)
    scale = DiffusionScale(ring=SCALES["smoke"].ring, shapes=cfg, shapes_data=data)
    ctx = RunContext(out_dir=str(tmp_path), scale="paper", seed=0, show_progress=False,
                     method="diffusion_resampling")
    rows, summary, note, plot, metrics = _image_section(ctx, "shapes", jax.random.key(0), scale)
    per_rep = metrics["per_replicate"]
    for method, k in (("plain", "1"), ("Object-Select", "2"), ("PF-Detector", "2"),
                      ("PF-Hybrid", "2"), ("PF-Discriminator", "1")):
        assert len(per_rep[method][k]["occ"]) == 2
        assert all(0.0 <= v <= 1.0 for v in per_rep[method][k]["occ"])
        assert np.isfinite(per_rep[method][k]["fd"]).all()
    verdicts = [r.comparison.verdict for r in rows if r.comparison is not None]
    assert verdicts and set(verdicts) <= {"held", "tie", "reversed"}
    assert "Shapes (K=2, 2 replicates)" in summary and "ShapeDetector" in note
    assert os.path.getsize(plot) > 0
