"""One result type: iterable rows of dicts, with named parts and `to_markdown()`.

Example:

>>> from tfsubspace.evaluation.results import Table
>>> table = Table([{"alpha": 0.0, "accuracy": 0.5}, {"alpha": 1.0, "accuracy": 0.75}])
>>> len(table), [row["alpha"] for row in table]
(2, [0.0, 1.0])
>>> print(table.to_markdown())
| alpha | accuracy |
|---|---|
| 0.0000 | 0.5000 |
| 1.0000 | 0.7500 |
"""


def _format(value):
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_format(v) for v in value) + "]"
    if isinstance(value, str):
        return value
    if value is None:
        return "—"
    if isinstance(value, bool):
        return str(value)
    return f"{value:.4f}"


class Table:
    """Rows (one dict per point, member, ...) and named parts (`table["ensemble"]`).

    `iter(table)`, `len(table)` and `table[i]` go over the rows; `table[name]`
    returns a named part; `to_dict()` gives JSON-ready values.
    """

    def __init__(self, rows, **named):
        self.rows = list(rows)
        self.named = named

    def __iter__(self):
        return iter(self.rows)

    def __len__(self):
        return len(self.rows)

    def __getitem__(self, key):
        if isinstance(key, str):
            if key not in self.named:
                raise KeyError(f"{key!r}: this result has {sorted(self.named)} and {len(self.rows)} rows.")
            return self.named[key]
        return self.rows[key]

    def __contains__(self, key):
        return key in self.named

    def keys(self):
        return self.named.keys()

    def to_dict(self):
        return {"rows": [dict(row) for row in self.rows], **self.named}

    def to_markdown(self):
        if not self.rows:
            return "(no rows)"
        columns = list(self.rows[0])
        lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
        for row in self.rows:
            lines.append("| " + " | ".join(_format(row.get(c)) for c in columns) + " |")
        return "\n".join(lines)

    def __repr__(self):
        return f"{type(self).__name__}({len(self.rows)} rows, parts={sorted(self.named)})"
