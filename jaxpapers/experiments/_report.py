"""report.md from results.json (all formatting lives here), and figure saving."""

from __future__ import annotations

import math
import os
from typing import Any

__all__ = ["write_report", "format_number", "format_value", "pyplot", "save_figure"]


def format_number(value: float | int | None, digits: int = 4) -> str:
    """``digits`` significant digits; scientific notation for very small or large magnitudes."""
    if value is None:
        return "–"
    if isinstance(value, str):  # "inf" / "-inf" as stored in JSON
        return {"inf": "∞", "-inf": "−∞"}.get(value, value)
    if isinstance(value, bool):
        return str(value)
    if isinstance(value, int):
        return f"{value:,}".replace(",", " ") if abs(value) >= 10**5 else str(value)
    if math.isnan(value):
        return "NaN"
    if value != 0 and (abs(value) < 1e-3 or abs(value) >= 1e5):
        return f"{value:.{max(digits - 1, 1)}e}"
    return f"{value:.{digits}g}"


def _decimals_for(se: float) -> int:
    """Decimals that show two significant digits of the standard error."""
    if not se or not math.isfinite(se):
        return 4
    return max(0, 1 - int(math.floor(math.log10(abs(se)))))


def format_value(value: Any, unit: str = "") -> str:
    """A table cell: a number, an estimate ``mean ± se`` (the mean to the standard error's
    precision), or text; with the unit appended.

    Args:
      value: a number, None (shown as ``–``), a string (returned as it is), or an estimate as
        results.json holds it (``{"mean", "se", ...}``).
      unit: appended after a space when given.

    Returns:
      The cell's text.

    Example:
      >>> from jaxpapers.experiments.report import format_value
      >>> format_value({"mean": 3.32512, "se": 0.0341}), format_value(0.5, "s")
      ('3.325 ± 0.034', '0.5 s')
    """
    if isinstance(value, dict) and "mean" in value:
        mean, se = value["mean"], value.get("se")
        if mean is None:
            text = "–"
        elif se is None or (isinstance(se, float) and math.isnan(se)):
            text = format_number(mean)
        elif abs(mean) >= 1e5 or (mean != 0 and abs(mean) < 1e-3 and se < 1e-3):
            text = f"{mean:.3e} ± {se:.2e}"
        else:
            d = min(_decimals_for(se), 8)
            text = f"{mean:.{d}f} ± {se:.{d}f}"
    elif isinstance(value, str):
        return value
    else:
        text = format_number(value)
    return f"{text} {unit}".strip() if unit and text != "–" else text


def format_comparison(comparison: dict[str, Any] | None) -> str:
    if not comparison:
        return ""
    verdict = comparison["verdict"]
    z, threshold = comparison["z"], comparison["threshold"]
    if z is None or (isinstance(z, float) and math.isnan(z)):
        return f"{verdict} (no standard error)"
    z_text = format_number(z, 2) if isinstance(z, (int, float)) else format_number(z)
    rule = "|z| ≤" if comparison["better"] == "equal" else "decides at |z| >"
    kind = "paired Δ" if comparison.get("paired") else "Δ"
    diff, se = comparison["difference"], comparison["se"]
    return (f"{verdict} ({kind} {format_value({'mean': diff, 'se': se})}, z = {z_text}; "
            f"{rule} {format_number(threshold, 2)})")


def _table(rows: list[dict[str, Any]]) -> list[str]:
    out = ["| quantity | ours | paper | verdict | note |", "|---|---|---|---|---|"]
    for row in rows:
        claim = row["comparison"]["claim"] if row.get("comparison") else ""
        note = "; ".join(t for t in (claim, row.get("note", "")) if t)
        cells = [row["quantity"], format_value(row["ours"], row.get("unit", "")),
                 format_value(row["paper"], row.get("unit", "")),
                 format_comparison(row.get("comparison")), note]
        out.append("| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |")
    return out


def write_report(path: str, method: Any, results: dict[str, Any]) -> None:
    """Write ``report.md``: our numbers beside the paper's, section by section, and the verdict.

    Args:
      path: the file to write.
      method: the :class:`Method` (its title and paper head the report).
      results: a results dictionary (the content of ``results.json``).

    Returns:
      None; the report is the file at ``path``.

    Raises:
      OSError: the file cannot be written.
      KeyError: ``results`` lacks a field of the schema.
    """
    verdict = results["verdict"]
    counts = ", ".join(f"{verdict[v]} {v}" for v in ("held", "tie", "reversed"))
    lines = [
        f"# {method.title}",
        "",
        f"Paper: {method.paper}. Experiment: {results['experiment']}. "
        f"Scale: `{results['scale']}`, seed {results['seed']}.",
        "",
        f"**Verdict:** {verdict['summary']} (claims: {counts})",
    ]
    sections: dict[str, list[dict[str, Any]]] = {}
    for row in results["table"]:
        sections.setdefault(row.get("section", ""), []).append(row)
    for section, rows in sections.items():
        lines += [""] + ([f"## {section}", ""] if section else []) + _table(rows)
    lines += [
        "",
        f"Device: {results['device']}; {results['num_processes']} process(es); "
        f"jax {results['jax_version']}; jaxpapers {results['jaxpapers_version']}; "
        f"wall {results['wall_s']:.1f} s (compile {results['compile_s']:.1f} s).",
        "",
        "Verdicts: *held* = the data support the claim (an ordering beyond the threshold in "
        "standard errors, or an equality within it); *tie* = an ordering within the threshold; "
        "*reversed* = the data contradict the claim.",
    ]
    for note in results.get("notes", []):
        lines += ["", f"- {note}"]
    for plot in results.get("plots", []):
        lines += ["", f"![{plot}]({plot})"]
    with open(path, "w") as f:
        f.write("\n".join(lines) + "\n")


def pyplot():
    """``matplotlib.pyplot`` on the non-interactive Agg backend (runners run headless).

    Returns:
      The ``matplotlib.pyplot`` module.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def save_figure(ctx, fig, name: str, dpi: int = 110) -> str:
    """Save ``fig`` as ``ctx.path(name)`` (process 0 only) and close it.

    Args:
      ctx: the run's :class:`RunContext`.
      fig: a matplotlib figure.
      name: the file name inside the run's folder, e.g. ``"regret.png"``.
      dpi: resolution of the PNG.

    Returns:
      The figure's path (also in processes that did not write it).

    Raises:
      OSError: the folder or the file cannot be written.
    """
    import matplotlib.pyplot as plt

    path = ctx.path(name)
    if ctx.is_primary:
        os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
        fig.tight_layout()
        fig.savefig(path, dpi=dpi)
    plt.close(fig)
    return path
