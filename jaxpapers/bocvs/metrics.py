"""Regret of a BOCVS run: the simple-regret curve over spent budget, its final value, the
cumulative regret."""

from jaxpapers.bocvs._metrics import cumulative_regret, final_simple_regret, simple_regret_curve

__all__ = ["cumulative_regret", "final_simple_regret", "simple_regret_curve"]
