"""The human side of a run: the Markdown report, number formatting and figures."""

from jaxpapers.experiments._report import format_value, pyplot, save_figure, write_report

__all__ = ["format_value", "pyplot", "save_figure", "write_report"]
