"""The text the data dialogs show of a panel they read (its ``BarPanel.describe()``): one summary line and
the report of its source, notes and counts. The import dialog and the Qlib dialog show the same text."""

from __future__ import annotations

from studio.core.text import printable


def panel_summary(described: dict, unit: str = "symbols") -> str:
    d = described
    return (f"{d['symbols']} {unit}, {d['dates']} dates ({d['first_date']} .. {d['last_date']}), "
            f"{d['bars_per_day']} bars per day, {d['stocks_per_day_min']}-{d['stocks_per_day_max']} stocks a day; "
            f"features {', '.join(d['features'])}")


def panel_report(described: dict) -> str:
    d = described
    width = max((len(name) for name in d["counts"]), default=0)
    lines = [f"source: {printable(str(d['source']))}", "", "notes:"]
    lines += [f"  - {printable(note)}" for note in d["notes"]]
    lines += ["", "counts:"] + [f"  {name:<{width}}  {value:>12,}" for name, value in d["counts"].items()]
    return "\n".join(lines)
