"""Numbers and verdicts of a reproduction: estimates with standard errors, and the paired or
unpaired comparisons that decide whether a paper's claim held, tied or reversed."""

from jaxpapers.experiments._stats import (
    VERDICTS,
    Comparison,
    Estimate,
    agree,
    compare,
    estimate,
    paired,
)

__all__ = ["VERDICTS", "Comparison", "Estimate", "agree", "compare", "estimate", "paired"]
