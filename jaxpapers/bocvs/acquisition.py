"""The acquisition maximiser's pieces: the assembled inputs of a control query, the SE kernel's
closed form (value, gradient and Hessian of the expected UCB without re-evaluating the kernel at
the assembled points), the generic per-set maximiser and the box-constrained Newton ascent that
:func:`jaxpapers.bocvs.maximize_expected_ucb` is built from."""

from jaxpapers.bocvs._acquisition import assemble, maximize_per_control_set
from jaxpapers.bocvs._newton import (
    ExpectedUCBParts,
    expected_ucb_derivatives,
    expected_ucb_parts,
    expected_ucb_value,
    newton_refine,
)

__all__ = ["ExpectedUCBParts", "assemble", "expected_ucb_derivatives", "expected_ucb_parts",
           "expected_ucb_value", "maximize_per_control_set", "newton_refine"]
