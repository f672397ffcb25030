"""UCR/UEA data with no network: datasets, few-label subsets, the pretraining pool and its sampler.

Host-side NumPy (a ``.ts`` reader, the twelve sets that ship with the package, per-series
preprocessing) prepares arrays once, before any jitted code; :func:`sample_batch` draws a
multi-dataset batch in JAX.
"""

from __future__ import annotations

import dataclasses
import lzma
import os
from collections.abc import Sequence

import numpy as np

from jaxpapers.xit._sampler import SAMPLING_MODES, dataset_probabilities, sample_batch

__all__ = ["SAMPLING_MODES", "dataset_probabilities", "sample_batch", "TSFile", "TSFormatError",
           "Dataset", "Pool", "read_ts", "load_dataset", "available_datasets", "BUNDLED",
           "BUNDLE_DIR", "resample", "znormalize", "split_channels", "k_per_class", "build_pool"]


class TSFormatError(ValueError):
    """A malformed ``.ts`` file; the message starts with ``path:line:``.

    A subclass of ``ValueError``, raised by :func:`read_ts` and :func:`load_dataset`.
    """


@dataclasses.dataclass(frozen=True)
class TSFile:
    """A parsed ``.ts`` file (:func:`read_ts`).

    Attributes:
      path: the file's path.
      series: tuple of float64 ``(C, L_i)`` arrays, NaN where the file has ``?``.
      labels: tuple of each series' class label as written (str).
      class_names: the labels the header declares, in its order.
      header: the ``@key value`` pairs (keys lower case).
    """

    path: str
    series: tuple
    labels: tuple
    class_names: tuple
    header: dict


def _fail(path: str, line: int, message: str):
    raise TSFormatError(f"{path}:{line}: {message}")


def _parse_header(path, number, text, header):
    key, _, value = text[1:].partition(" ")
    key = key.lower()
    if not key:
        _fail(path, number, "empty header key after '@'")
    header[key] = value.strip()


def _parse_values(path, number, text, channel):
    values = []
    for item in text.split(","):
        item = item.strip()
        if item == "?":
            values.append(np.nan)
            continue
        try:
            values.append(float(item))
        except ValueError:
            _fail(path, number, f"channel {channel}: {item!r} is not a number")
    return values


def read_ts(path: str) -> TSFile:
    """Parse a classification ``.ts`` file (no timestamps), plain or xz-compressed.

    Args:
      path: the file (``.ts`` or ``.ts.xz``).

    Returns:
      A :class:`TSFile`.

    Raises:
      TSFormatError: a malformed header or data line (the message names the file and line).
      OSError: the file cannot be read.
    """
    header: dict[str, str] = {}
    series, labels = [], []
    in_data, channels = False, None
    opener = lzma.open if path.endswith(".xz") else open
    with opener(path, "rt", encoding="utf-8", errors="replace") as f:
        for number, raw in enumerate(f, start=1):
            text = raw.strip()
            if not text or text.startswith(("#", "%")):
                continue
            if not in_data:
                if not text.startswith("@"):
                    _fail(path, number, f"expected a '@key value' header line or '@data'; got "
                                        f"{text[:40]!r}")
                if text.lower() == "@data":
                    in_data = True
                    if header.get("timestamps", "false").lower() == "true":
                        _fail(path, number, "timestamped series are not supported")
                    if header.get("classlabel", "false").split()[:1] != ["true"]:
                        _fail(path, number, "only classification files (@classLabel true ...) "
                                            "are supported")
                    if "dimensions" in header:
                        try:
                            channels = int(header["dimensions"])
                        except ValueError:
                            _fail(path, number, f"@dimensions {header['dimensions']!r} is not "
                                                "an integer")
                    continue
                _parse_header(path, number, text, header)
                continue
            parts = text.split(":")
            if len(parts) < 2:
                _fail(path, number, "a data line needs at least one channel and a label "
                                    "separated by ':'")
            label, fields = parts[-1].strip(), parts[:-1]
            if not label:
                _fail(path, number, "missing class label")
            if channels is None:
                channels = len(fields)
            if len(fields) != channels:
                _fail(path, number, f"expected {channels} channel(s); got {len(fields)}")
            rows = [_parse_values(path, number, field, c) for c, field in enumerate(fields)]
            if len({len(r) for r in rows}) != 1:
                _fail(path, number, "channels of one series have different lengths "
                                    f"{[len(r) for r in rows]}")
            if len(rows[0]) == 0:
                _fail(path, number, "empty series")
            series.append(np.asarray(rows, np.float64))
            labels.append(label)
    if not in_data:
        _fail(path, number if "number" in locals() else 0, "no '@data' line")
    if not series:
        _fail(path, number, "no series after '@data'")
    declared = tuple(header.get("classlabel", "true").split()[1:])
    if declared:
        unknown = sorted(set(labels) - set(declared))
        if unknown:
            _fail(path, number, f"labels {unknown[:5]} are not among the declared classes "
                                f"{list(declared)}")
    else:
        declared = tuple(sorted(set(labels)))
    return TSFile(path, tuple(series), tuple(labels), declared, header)


# -- registry ------------------------------------------------------------------------------------

#: the folder of the sets that ship with the package (see ``MANIFEST.json`` there): the files
#: sktime 1.2.0, aeon 1.6.0 and tslearn 0.10.0 bundle, byte for byte, ``.ts`` ones xz-compressed.
BUNDLE_DIR = os.path.join(os.path.dirname(__file__), "_data", "ucr_v1")

#: the sets that ship with the package: the XIT quick pool and its two targets.
BUNDLED = ("ACSF1", "ArrowHead", "BasicMotions", "Covid3Month_disc", "GunPoint",
           "ItalyPowerDemand", "JapaneseVowels", "OSULeaf", "PLAID", "PickupGestureWiimoteZ",
           "Trace", "UnitTest")


def _locate(name: str, data_dir: str | None) -> tuple[str, str] | None:
    """``(kind, path stem)`` of a set: kind ``"ts"`` (stem + ``_TRAIN.ts``), ``"ts.xz"``
    (stem + ``_TRAIN.ts.xz``) or ``"npz"`` (stem + ``.npz``, tslearn's layout)."""
    if data_dir is not None:
        stem = os.path.join(os.path.expanduser(data_dir), name, name)
        if os.path.isfile(stem + "_TRAIN.ts"):
            return "ts", stem
    if name in BUNDLED:
        stem = os.path.join(BUNDLE_DIR, name)
        if os.path.isfile(stem + "_TRAIN.ts.xz"):
            return "ts.xz", stem
        if os.path.isfile(stem + ".npz"):
            return "npz", stem
    return None


def available_datasets(data_dir: str | None = None) -> list[str]:
    """The names :func:`load_dataset` can load here.

    Args:
      data_dir: a folder in the UCR/UEA archive layout (``<Name>/<Name>_TRAIN.ts``), or None.

    Returns:
      The sorted names of the sets that ship with the package (:data:`BUNDLED`) and of those
      under ``data_dir``.

    Example:
      >>> from jaxpapers.xit.data import available_datasets
      >>> "GunPoint" in available_datasets()
      True
    """
    names = {name for name in BUNDLED if _locate(name, None) is not None}
    if data_dir is not None and os.path.isdir(os.path.expanduser(data_dir)):
        root = os.path.expanduser(data_dir)
        names |= {entry for entry in os.listdir(root)
                  if os.path.isfile(os.path.join(root, entry, f"{entry}_TRAIN.ts"))}
    return sorted(names)


# -- preprocessing -------------------------------------------------------------------------------

def resample(x: np.ndarray, length: int) -> np.ndarray:
    """Resample every channel to ``length`` points by linear interpolation over normalised time.

    Args:
      x: ``(C, L_i)`` series; non-finite values (missing values, padding) are dropped first,
        channel by channel.
      length: the new length, an int >= 2.

    Returns:
      float64 ``(C, length)``.

    Raises:
      ValueError: ``x`` not 2-D, ``length`` not an int >= 2, or a channel with no finite value.

    Example:
      >>> import numpy as np
      >>> from jaxpapers.xit.data import resample
      >>> resample(np.asarray([[0.0, np.nan, 2.0]]), 5).tolist()
      [[0.0, 0.5, 1.0, 1.5, 2.0]]
    """
    x = np.asarray(x, np.float64)
    if x.ndim != 2:
        raise ValueError(f"x must have shape (C, L); got {x.shape}")
    if isinstance(length, bool) or not isinstance(length, (int, np.integer)) or length < 2:
        raise ValueError(f"length must be an integer >= 2; got {length!r}")
    out = np.empty((x.shape[0], int(length)))
    grid = np.linspace(0.0, 1.0, int(length))
    for c, row in enumerate(x):
        row = row[np.isfinite(row)]
        if row.size == 0:
            raise ValueError(f"x: channel {c} has no finite value")
        if row.size == 1:
            out[c] = row[0]
        else:
            out[c] = np.interp(grid, np.linspace(0.0, 1.0, row.size), row)
    return out


def znormalize(x: np.ndarray, eps: float = 1e-6) -> np.ndarray:
    """Z-normalise along time: ``(x - mean_t) / (std_t + eps)`` per series and channel.

    Args:
      x: array ``(..., L)``, the last axis time.
      eps: added to the standard deviation.

    Returns:
      float64, the shape of ``x``.

    Example:
      >>> import numpy as np
      >>> from jaxpapers.xit.data import znormalize
      >>> np.round(znormalize(np.asarray([1.0, 2.0, 3.0])), 3).tolist()
      [-1.225, 0.0, 1.225]
    """
    x = np.asarray(x, np.float64)
    return (x - x.mean(-1, keepdims=True)) / (x.std(-1, keepdims=True) + eps)


def split_channels(x: np.ndarray) -> np.ndarray:
    """Make every channel its own univariate series: ``(N, C, L) -> (N * C, 1, L)``.

    Args:
      x: ``(N, C, L)`` array.

    Returns:
      ``(N * C, 1, L)``, the dtype of ``x``; series ``i``'s channels are rows ``i * C`` to
      ``i * C + C - 1``.

    Raises:
      ValueError: ``x`` not 3-D.
    """
    x = np.asarray(x)
    if x.ndim != 3:
        raise ValueError(f"x must have shape (N, C, L); got {x.shape}")
    return x.reshape(x.shape[0] * x.shape[1], 1, x.shape[2])


def k_per_class(labels: np.ndarray, k: int, seed: int, num_classes: int | None = None
                ) -> np.ndarray:
    """A stratified few-label subset: ``k`` examples of every class, without replacement.

    Args:
      labels: non-negative integer ``(N,)`` labels.
      k: examples per class (positive int).
      seed: integer seed of the draw (with ``k``; NumPy's ``SeedSequence``).
      num_classes: the classes ``0 .. num_classes - 1`` (default: the labels present).

    Returns:
      Sorted int ``(num_classes * k,)`` indices into ``labels``.

    Raises:
      ValueError: ``labels`` not 1-D non-negative integers, ``k`` not a positive int, or a
        class with fewer than ``k`` examples.

    Example:
      >>> import numpy as np
      >>> from jaxpapers.xit.data import k_per_class
      >>> idx = k_per_class(np.asarray([0, 1, 0, 1, 2, 2]), 1, seed=0)
      >>> np.asarray([0, 1, 0, 1, 2, 2])[idx].tolist()
      [0, 1, 2]
    """
    labels = np.asarray(labels)
    if labels.ndim != 1 or not np.issubdtype(labels.dtype, np.integer) or np.any(labels < 0):
        raise ValueError(f"labels must be a 1-D array of non-negative integers; got "
                         f"{labels.dtype}{list(labels.shape)}")
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 1:
        raise ValueError(f"k must be a positive integer; got {k!r}")
    classes = np.arange(num_classes) if num_classes is not None else np.unique(labels)
    rng = np.random.default_rng(np.random.SeedSequence([int(seed), int(k)]))
    chosen = []
    for c in classes:
        members = np.flatnonzero(labels == c)
        if members.size < k:
            raise ValueError(f"class {c} has {members.size} example(s); k={k} needs {k}")
        chosen.append(rng.choice(members, size=k, replace=False))
    return np.sort(np.concatenate(chosen))


# -- datasets and the pool -------------------------------------------------------------------------

@dataclasses.dataclass(frozen=True)
class Dataset:
    """One split of a labelled set (:func:`load_dataset`).

    Attributes:
      name: the set's name.
      split: ``"train"`` or ``"test"``.
      x: float32 ``(N, C, L)`` series.
      y: int32 ``(N,)`` labels, indices into ``class_names``.
      class_names: the class labels as written in the file.
      source: the file it was read from.
    """

    name: str
    split: str
    x: np.ndarray
    y: np.ndarray
    class_names: tuple
    source: str

    @property
    def num_classes(self) -> int:
        """The number of classes, ``len(class_names)``."""
        return len(self.class_names)


def _read_split(name: str, split: str, data_dir: str | None):
    found = _locate(name, data_dir)
    if found is None:
        where = f" or under {data_dir!r}" if data_dir is not None else ""
        raise ValueError(
            f"dataset {name!r} is not available here (shipped with the package{where}); "
            f"available: {', '.join(available_datasets(data_dir)) or 'none'}. Bundled sets ship "
            "with the package; other UCR/UEA sets go in DATA_DIR/<Name>/<Name>_TRAIN.ts and "
            "_TEST.ts.")
    kind, stem = found
    if kind == "npz":
        with np.load(stem + ".npz") as archive:
            xs = np.asarray(archive[f"X_{split}"], np.float64).transpose(0, 2, 1)
            ys = np.asarray(archive[f"y_{split}"])
        labels = tuple(str(v) for v in ys)
        return [row for row in xs], labels, tuple(sorted(set(labels), key=_natural)), stem
    suffix = ".ts.xz" if kind == "ts.xz" else ".ts"
    parsed = read_ts(f"{stem}_{split.upper()}{suffix}")
    return list(parsed.series), parsed.labels, parsed.class_names, parsed.path


def _natural(text: str):
    try:
        return (0, float(text), text)
    except ValueError:
        return (1, 0.0, text)


def load_dataset(name: str, split: str = "train", *, length: int | None = None,
                 normalize: bool = True, data_dir: str | None = None) -> Dataset:
    """Load one split of a UCR/UEA classification set with no network.

    Args:
      name: the set's name (``available_datasets()`` lists them).
      split: ``"train"`` or ``"test"``.
      length: resample every series to this length (linear, missing values dropped); None keeps
        the file's length, which must then be equal for all series.
      normalize: z-normalise each series and channel (after resampling).
      data_dir: a folder in the UCR/UEA archive layout, searched before the bundled sets.

    Returns:
      A :class:`Dataset` with float32 ``x (N, C, L)`` and int32 ``y (N,)``.

    Raises:
      ValueError: unknown or unavailable set (the message lists the available ones), bad split,
        unequal lengths with ``length=None``; :class:`TSFormatError` for a malformed file.
    """
    if split not in ("train", "test"):
        raise ValueError(f"split must be 'train' or 'test'; got {split!r}")
    series, labels, class_names, source = _read_split(name, split, data_dir)
    if length is None:
        lengths = {s.shape[1] for s in series}
        if len(lengths) != 1 or any(np.isnan(s).any() for s in series):
            raise ValueError(f"{name} has unequal lengths or missing values "
                             f"({min(lengths)}-{max(lengths)}); pass length=... to resample")
        x = np.stack(series)
    else:
        x = np.stack([resample(s, length) for s in series])
    if normalize:
        x = znormalize(x)
    index = {c: i for i, c in enumerate(class_names)}
    y = np.asarray([index[label] for label in labels], np.int32)
    return Dataset(name, split, x.astype(np.float32), y, tuple(class_names), source)


@dataclasses.dataclass(frozen=True)
class Pool:
    """The unlabelled pretraining pool, grouped by dataset (:func:`build_pool`).

    Attributes:
      x: float32 ``(N, 1, L)`` univariate series; dataset ``d`` holds rows ``offsets[d] :
        offsets[d] + counts[d]``.
      ds_id: int32 ``(N,)`` dataset id of each row.
      names: the ``D`` dataset names.
      offsets: int32 ``(D,)`` first row of each dataset.
      counts: int32 ``(D,)`` rows of each dataset.
    """

    x: np.ndarray
    ds_id: np.ndarray
    names: tuple
    offsets: np.ndarray
    counts: np.ndarray


def build_pool(names: Sequence[str], length: int, *, splits: Sequence[str] = ("train", "test"),
               data_dir: str | None = None) -> Pool:
    """The pretraining pool of named sets: resampled, z-normalised, split into channels.

    Args:
      names: distinct set names (see :func:`available_datasets`).
      length: the common length ``L``.
      splits: the splits to include (labels are dropped).
      data_dir: a folder in the UCR/UEA archive layout, searched before the bundled sets.

    Returns:
      A :class:`Pool`.

    Raises:
      ValueError: ``names`` empty or repeating a name, or a set that is unavailable.
      TSFormatError: a malformed file.

    Example:
      >>> from jaxpapers.xit.data import build_pool
      >>> pool = build_pool(["GunPoint", "ArrowHead"], 32, splits=("train",))
      >>> pool.names, pool.x.shape[1:], pool.counts.tolist()
      (('GunPoint', 'ArrowHead'), (1, 32), [50, 36])
    """
    if len(set(names)) != len(names) or not names:
        raise ValueError(f"pool names must be distinct and non-empty; got {list(names)}")
    xs, ids = [], []
    for d, name in enumerate(names):
        parts = [split_channels(load_dataset(name, s, length=length, data_dir=data_dir).x)
                 for s in splits]
        x = np.concatenate(parts)
        xs.append(x)
        ids.append(np.full(x.shape[0], d, np.int32))
    counts = np.asarray([x.shape[0] for x in xs], np.int32)
    offsets = np.concatenate([[0], np.cumsum(counts)[:-1]]).astype(np.int32)
    return Pool(np.concatenate(xs).astype(np.float32), np.concatenate(ids), tuple(names),
                offsets, counts)
