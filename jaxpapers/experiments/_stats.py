"""Estimates with standard errors, and comparisons that end in one fixed verdict vocabulary.

Verdicts (the only three words a report uses for a claim):

* ``held``     -- the data support the claim: an ordering is in the claimed direction by more
  than ``threshold`` standard errors, or an equality holds within ``threshold`` standard errors.
* ``tie``      -- an ordering is not resolved: the difference is within ``threshold`` standard
  errors either way.
* ``reversed`` -- the data contradict the claim: the difference is beyond ``threshold`` standard
  errors on the wrong side, or an equality misses by more than ``threshold`` standard errors.

Every number is a float64 NumPy computation on the host; nothing here is traced.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence
from typing import Any

import numpy as np

__all__ = ["VERDICTS", "Estimate", "Comparison", "estimate", "compare", "paired", "agree"]

VERDICTS = ("held", "tie", "reversed")
_BETTER = ("lower", "higher", "equal")


@dataclasses.dataclass(frozen=True)
class Estimate:
    """A mean with its standard error over ``n`` independent samples (made by :func:`estimate`).

    Attributes:
      mean: the sample mean (float).
      se: its standard error, ``std(ddof=1) / sqrt(n)``; None for an exact value (``n = 0``) or
        a single sample.
      n: the number of samples (0: an exact value, see :meth:`exact`).
      median: the sample median where the samples were available, else None.
    """

    mean: float
    se: float | None = None
    n: int = 0
    median: float | None = None

    def to_json(self) -> dict[str, Any]:
        """``{"mean", "se", "n"}`` and ``"median"`` when known: the form in results.json."""
        out = {"mean": self.mean, "se": self.se, "n": self.n}
        if self.median is not None:
            out["median"] = self.median
        return out

    @staticmethod
    def exact(value: float) -> Estimate:
        """An exact value (no standard error, ``n = 0``), e.g. a closed form or a bound."""
        return Estimate(float(value), None, 0)


def estimate(samples: Sequence[float] | np.ndarray, *, drop_nonfinite: bool = False) -> Estimate:
    """Mean, standard error ``std(ddof=1) / sqrt(n)`` and median of independent samples.

    Args:
      samples: a 1-D sequence of numbers (flattened if not 1-D).
      drop_nonfinite: leave out NaN/inf samples (``n`` counts the rest); otherwise they raise.

    Returns:
      An :class:`Estimate` (float64 statistics; ``se`` None for one sample; a NaN mean with
      ``n = 0`` when ``drop_nonfinite`` left nothing).

    Raises:
      ValueError: no samples, or a non-finite sample without ``drop_nonfinite``.

    Example:
      >>> from jaxpapers.experiments.stats import estimate
      >>> estimate([1.0, 2.0, 3.0])
      Estimate(mean=2.0, se=0.5773502691896258, n=3, median=2.0)
    """
    values = np.asarray(samples, np.float64).ravel()
    finite = np.isfinite(values)
    if drop_nonfinite:
        values = values[finite]
    elif not finite.all():
        raise ValueError(f"estimate got {int((~finite).sum())} non-finite sample(s); pass "
                         "drop_nonfinite=True to leave them out")
    if values.size == 0:
        if drop_nonfinite:
            return Estimate(math.nan, None, 0, None)
        raise ValueError("estimate needs at least one sample")
    se = float(values.std(ddof=1) / np.sqrt(values.size)) if values.size > 1 else None
    return Estimate(float(values.mean()), se, int(values.size), float(np.median(values)))


@dataclasses.dataclass(frozen=True)
class Comparison:
    """The outcome of testing a claim ``a <better> b`` (``a`` lower / higher than / equal to ``b``).

    Attributes:
      verdict: one of :data:`VERDICTS` (``held``, ``tie``, ``reversed``).
      better: ``"lower"``, ``"higher"`` or ``"equal"``.
      difference: ``a - b``.
      se: its standard error (NaN when unknown, which gives ``tie``).
      z: ``difference / se``; infinite when ``se`` is 0 and the difference is not.
      threshold: the ``|z|`` that decides.
      claim: the claim in words, for the report.
      paired: whether the samples were paired (:func:`paired`).
    """

    verdict: str
    better: str
    difference: float
    se: float
    z: float
    threshold: float
    claim: str = ""
    paired: bool = False

    def to_json(self) -> dict[str, Any]:
        """Every field, as results.json's ``comparison`` holds it."""
        return dataclasses.asdict(self)


def _z(difference: float, se: float) -> float:
    if math.isnan(se):
        return math.nan
    if se > 0:
        return difference / se
    if difference == 0 or math.isnan(difference):
        return 0.0 if difference == 0 else math.nan
    return math.copysign(math.inf, difference)


def _decide(difference: float, se: float, better: str, threshold: float, claim: str,
            is_paired: bool) -> Comparison:
    if better not in _BETTER:
        raise ValueError(f"better must be one of {_BETTER}; got {better!r}")
    if not threshold > 0:
        raise ValueError(f"threshold must be positive; got {threshold}")
    z = _z(difference, se)
    if math.isnan(z):
        verdict = "tie"
    elif better == "equal":
        verdict = "held" if abs(z) <= threshold else "reversed"
    else:
        signed = -z if better == "lower" else z
        verdict = "held" if signed > threshold else ("reversed" if signed < -threshold else "tie")
    return Comparison(verdict, better, float(difference), float(se), float(z), float(threshold),
                      claim, is_paired)


def _as_estimate(value: Estimate | float) -> Estimate:
    return value if isinstance(value, Estimate) else Estimate.exact(float(value))


def compare(a: Estimate | float, b: Estimate | float, *, better: str = "lower",
            threshold: float = 2.0, claim: str = "") -> Comparison:
    """Test ``a <better> b`` for independent estimates (or exact numbers: standard error 0).

    The standard error of ``a - b`` is ``hypot(se_a, se_b)``.

    Args:
      a, b: :class:`Estimate` or a number (an exact value, such as a bound or a closed form).
      better: ``"lower"`` (claim: ``a < b``), ``"higher"`` (``a > b``) or ``"equal"``.
      threshold: the ``|z|`` beyond which a difference counts.
      claim: the claim in words, kept for the report.

    Returns:
      A :class:`Comparison`. An ordering is ``held`` beyond ``threshold`` standard errors on the
      claimed side, ``reversed`` beyond them on the other, ``tie`` within; an equality is
      ``held`` within ``threshold`` and ``reversed`` beyond.

    Raises:
      ValueError: an unknown ``better`` or a ``threshold`` that is not positive.

    Example:
      >>> from jaxpapers.experiments.stats import Estimate, compare
      >>> compare(Estimate(1.0, 0.1, 10), 2.0, better="lower").verdict
      'held'
    """
    ea, eb = _as_estimate(a), _as_estimate(b)
    se = math.hypot(ea.se or 0.0, eb.se or 0.0)
    return _decide(ea.mean - eb.mean, se, better, threshold, claim, False)


def paired(a_samples, b_samples, *, better: str = "lower", threshold: float = 2.0,
           claim: str = "") -> Comparison:
    """Test ``a <better> b`` on paired samples (the same seeds or replicates on both sides).

    The difference is the mean of ``a_i - b_i`` and its standard error that of the per-pair
    differences. A single pair has no standard error and gives ``tie``.

    Args:
      a_samples: the ``a`` side, one number per pair (flattened).
      b_samples: the ``b`` side, in the same order.
      better: ``"lower"``, ``"higher"`` or ``"equal"``, as in :func:`compare`.
      threshold: the ``|z|`` beyond which a difference counts.
      claim: the claim in words, kept for the report.

    Returns:
      A :class:`Comparison` with ``paired=True``.

    Raises:
      ValueError: the sides differ in length or are empty, a sample is not finite, or
        ``better``/``threshold`` are bad.

    Example:
      >>> from jaxpapers.experiments.stats import paired
      >>> paired([1.0, 2.0, 3.0], [1.5, 2.4, 3.6], better="lower").verdict
      'held'
    """
    a = np.asarray(a_samples, np.float64).ravel()
    b = np.asarray(b_samples, np.float64).ravel()
    if a.shape != b.shape or a.size == 0:
        raise ValueError(f"paired samples must have the same nonzero length; got {a.size} and "
                         f"{b.size}")
    diff = estimate(a - b)
    return _decide(diff.mean, diff.se if diff.se is not None else math.nan, better, threshold,
                   claim, True)


def agree(value: Estimate | float, reference: Estimate | float, *, threshold: float = 3.0,
          claim: str = "") -> Comparison:
    """Test the equality claim ``value == reference`` within ``threshold`` standard errors.

    Args:
      value: an :class:`Estimate` or an exact number.
      reference: an :class:`Estimate` or an exact number (e.g. the paper's value).
      threshold: the ``|z|`` within which the two agree (default 3).
      claim: the claim in words, kept for the report.

    Returns:
      A :class:`Comparison` (``better="equal"``): ``held`` or ``reversed``.

    Raises:
      ValueError: a ``threshold`` that is not positive.
    """
    return compare(value, reference, better="equal", threshold=threshold, claim=claim)
