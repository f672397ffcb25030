"""The .ts reader, the bundled-data registry, preprocessing, few-label subsets and the sampler."""

import importlib.util

import numpy as np
import pytest

from jaxpapers.xit import data


def _write(tmp_path, text, name="Toy_TRAIN.ts"):
    path = tmp_path / name
    path.write_text(text)
    return str(path)


GOOD = """# a comment
% another comment
@problemName Toy
@univariate false
@dimensions 2
@classLabel true a b
@data
1,2,3:4,5,6:a
1,?,3.5:0,0,1e-1:b
"""


def test_read_ts_parses_channels_missing_values_and_labels(tmp_path):
    parsed = data.read_ts(_write(tmp_path, GOOD))
    assert parsed.class_names == ("a", "b")
    assert parsed.labels == ("a", "b")
    np.testing.assert_array_equal(parsed.series[0], [[1, 2, 3], [4, 5, 6]])
    assert np.isnan(parsed.series[1][0, 1]) and parsed.series[1][1, 2] == 0.1
    assert parsed.header["problemname"] == "Toy"


@pytest.mark.parametrize("body, line, words", [
    ("@classLabel true a b\n@data\n1,2,x:a\n", 3, "'x' is not a number"),
    ("@classLabel true a b\n@data\n1,2:3,4:a\n1,2:b\n", 4, "expected 2 channel"),
    ("@classLabel true a b\n@data\n1,2:c\n", 3, "not among the declared"),
    ("@classLabel true a\nnot a header\n", 2, "header line"),
    ("@classLabel true a b\n@data\n1,2:3:a\n", 3, "different lengths"),
    ("@classLabel true a b\n", 1, "no '@data'"),
    ("@timeStamps true\n@classLabel true a\n@data\n(0,1):a\n", 3, "timestamped"),
])
def test_malformed_ts_names_file_and_line(tmp_path, body, line, words):
    path = _write(tmp_path, body)
    with pytest.raises(data.TSFormatError, match=f"Toy_TRAIN.ts:{line}:.*{words}"):
        data.read_ts(path)


def test_load_dataset_bundled_and_errors_list_available():
    ds = data.load_dataset("GunPoint", "train")
    assert ds.x.shape == (50, 1, 150) and ds.x.dtype == np.float32
    assert ds.class_names == ("1", "2") and set(np.unique(ds.y)) == {0, 1}
    np.testing.assert_allclose(ds.x.mean(-1), 0, atol=1e-5)
    with pytest.raises(ValueError, match="available: .*GunPoint"):
        data.load_dataset("NoSuchSet")
    with pytest.raises(ValueError, match="unequal lengths"):
        data.load_dataset("PLAID", "test")
    assert "sktime" not in __import__("sys").modules  # shipped with the package


def test_the_shipped_sets_match_their_manifest():
    """Every shipped file decompresses to the bytes whose SHA-256 the manifest records."""
    import hashlib
    import json
    import lzma
    import os

    with open(os.path.join(data.BUNDLE_DIR, "MANIFEST.json")) as f:
        manifest = json.load(f)
    assert {entry["set"] for entry in manifest["files"].values()} == set(data.BUNDLED)
    for name, entry in manifest["files"].items():
        with open(os.path.join(data.BUNDLE_DIR, name), "rb") as f:
            raw = f.read()
        if name.endswith(".xz"):
            raw = lzma.decompress(raw)
        assert len(raw) == entry["bytes"], name
        assert hashlib.sha256(raw).hexdigest() == entry["sha256"], name


# Deliberately optional: an independent cross-check against sktime's copies of two sets, which
# the test extra does not install (sktime is large); the sha256 manifest test above always runs.
@pytest.mark.skipif(importlib.util.find_spec("sktime") is None,
                    reason="optional cross-check: needs sktime (not in the test extra)")
def test_the_shipped_sets_load_as_sktimes_copies_do(tmp_path):
    """The shipped GunPoint and PLAID parse to exactly what sktime's own files give."""
    import os

    root = os.path.join(list(importlib.util.find_spec("sktime").submodule_search_locations)[0],
                        "datasets", "data")
    for name in ("GunPoint", "PLAID"):
        for split in ("TRAIN", "TEST"):
            ours = data.read_ts(os.path.join(data.BUNDLE_DIR, f"{name}_{split}.ts.xz"))
            theirs = data.read_ts(os.path.join(root, name, f"{name}_{split}.ts"))
            assert ours.labels == theirs.labels and ours.class_names == theirs.class_names
            for a, b in zip(ours.series, theirs.series, strict=True):
                np.testing.assert_array_equal(a, b)


def test_load_from_a_user_folder(tmp_path):
    folder = tmp_path / "Toy"
    folder.mkdir()
    _write(folder, GOOD)
    _write(folder, GOOD, "Toy_TEST.ts")
    assert "Toy" in data.available_datasets(str(tmp_path))
    ds = data.load_dataset("Toy", "test", length=5, data_dir=str(tmp_path), normalize=False)
    assert ds.x.shape == (2, 2, 5)
    np.testing.assert_allclose(ds.x[1, 0], np.interp(np.linspace(0, 1, 5), [0, 1], [1, 3.5]))


def test_resample_znormalize_split_channels():
    x = np.array([[0.0, 1.0, np.nan, 2.0]])
    np.testing.assert_allclose(data.resample(x, 5), [[0, 0.5, 1, 1.5, 2]])
    z = data.znormalize(np.array([[1.0, 2.0, 3.0]]))
    np.testing.assert_allclose(z, [[-1.2247, 0.0, 1.2247]], atol=1e-4)
    x3 = np.arange(24.0).reshape(2, 3, 4)
    s = data.split_channels(x3)
    assert s.shape == (6, 1, 4)
    np.testing.assert_array_equal(s[4, 0], x3[1, 1])
    with pytest.raises(ValueError, match="length"):
        data.resample(x, 1)


def test_k_per_class_is_stratified_and_deterministic():
    y = np.repeat(np.arange(3), [5, 7, 4])
    idx = data.k_per_class(y, 2, seed=3)
    np.testing.assert_array_equal(np.bincount(y[idx]), [2, 2, 2])
    np.testing.assert_array_equal(idx, data.k_per_class(y, 2, seed=3))
    assert not np.array_equal(idx, data.k_per_class(y, 2, seed=4))
    with pytest.raises(ValueError, match="class 2 has 4"):
        data.k_per_class(y, 5, seed=0)


def test_build_pool_groups_by_dataset():
    pool = data.build_pool(["UnitTest", "BasicMotions"], 16)
    np.testing.assert_array_equal(pool.counts, [42, 80 * 6])
    np.testing.assert_array_equal(pool.offsets, [0, 42])
    assert pool.x.shape == (522, 1, 16)
    np.testing.assert_array_equal(pool.ds_id[40:44], [0, 0, 1, 1])


@pytest.mark.parametrize("mode, temperature", [("proportional", 0.5),
                                               ("uniform_over_datasets", 0.5),
                                               ("temperature", 0.5)])
def test_sampler_modes_give_promised_frequencies(mode, temperature):
    import jax
    import jax.numpy as jnp

    counts = np.array([10, 100, 1000], np.int32)
    p = data.dataset_probabilities(counts, mode, temperature)
    expected = {"proportional": counts / counts.sum(), "uniform_over_datasets": np.ones(3) / 3,
                "temperature": np.sqrt(counts) / np.sqrt(counts).sum()}[mode]
    np.testing.assert_allclose(p, expected, rtol=1e-12)
    offsets = np.array([0, 10, 110], np.int32)
    x = jnp.arange(1110, dtype=jnp.float32)
    n = 20000
    xb, ids = jax.jit(lambda k: data.sample_batch(k, x, offsets, counts, jnp.log(p), n))(
        jax.random.key(0))
    freq = np.bincount(np.asarray(ids), minlength=3) / n
    se = np.sqrt(p * (1 - p) / n)
    assert np.all(np.abs(freq - p) < 5 * se), (freq, p)
    # each item comes from its dataset's rows, uniformly
    xb, ids = np.asarray(xb), np.asarray(ids)
    assert np.all((xb >= offsets[ids]) & (xb < offsets[ids] + counts[ids]))
    within = xb[ids == 2] - 110
    assert abs(within.mean() - 499.5) < 5 * 1000 / np.sqrt(12 * within.size)


def test_sampler_active_mask_and_bad_mode():
    p = data.dataset_probabilities([5, 5, 5], "proportional", active=[False, True, False])
    np.testing.assert_array_equal(p, [0, 1, 0])
    with pytest.raises(ValueError, match="sampling mode"):
        data.dataset_probabilities([1], "bogus")
