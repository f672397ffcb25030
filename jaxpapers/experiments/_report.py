"""report.md writer and the shared plotting set-up."""

from __future__ import annotations

from typing import Any

__all__ = ["write_report", "format_value", "pyplot"]


def format_value(value: Any) -> str:
    if value is None:
        return "–"
    if isinstance(value, float):
        if value != 0 and (abs(value) < 1e-3 or abs(value) >= 1e5):
            return f"{value:.3e}"
        return f"{value:.4g}"
    return str(value)


def markdown_table(rows: list[dict[str, Any]], columns: list[str]) -> str:
    out = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    for row in rows:
        out.append("| " + " | ".join(format_value(row.get(c)) for c in columns) + " |")
    return "\n".join(out)


def write_report(path: str, method: Any, results: dict[str, Any]) -> None:
    lines = [
        f"# {method.title}",
        "",
        f"Paper: {method.paper}. Experiment: {results['experiment']}. "
        f"Scale: `{results['scale']}`, seed {results['seed']}.",
        "",
        markdown_table(results["table"], ["quantity", "ours", "paper", "note"]),
        "",
        f"**Verdict:** {results['verdict']}",
        "",
        f"Device: {results['device']}; jax {results['jax_version']}; wall {results['wall_s']} s"
        + (f" (compile {results['compile_s']} s)" if results.get("compile_s") else "") + ".",
    ]
    for note in results.get("notes", []):
        lines += ["", f"- {note}"]
    for plot in results.get("plots", []):
        lines += ["", f"![{plot}]({plot})"]
    with open(path, "w") as f:
        f.write("\n".join(lines) + "\n")


def pyplot():
    """matplotlib.pyplot with the non-interactive Agg backend (safe on headless machines)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt
