"""Loss matrices in the report: each network's matrix normalised by its median, as heatmap
cells on one colour scale, and the rank agreement of every two networks (pure)."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

from styletransfer.agreement import (
    interpret,
    median_scale,
    normalised,
    pair_values,
    rank_agreement,
)

LOSSES = ("content", "style")
SMALL = 10  # up to this many images, a matrix shows names and values in its cells


def matrix_view(
    experiment_id: str,
    models: Mapping[str, Sequence[Mapping[str, Any]]],
    heads: Sequence[dict[str, Any]],
) -> dict[str, Any]:
    """The view of one loss matrix: ``models`` maps each network to its ``loss_matrix`` rows,
    ``heads`` describe the images (id, name, role, thumbnail), content images first."""
    heads = sorted(heads, key=lambda h: (h["role"] != "content", h["role"], h["name"], h["id"]))
    losses = []
    for loss in LOSSES:
        values = {
            m: pair_values((r["image_a"], r["image_b"], r[f"{loss}_loss"]) for r in rows)
            for m, rows in sorted(models.items())
        }
        values = {m: v for m, v in values.items() if v}
        if not values:
            continue
        scales = {m: median_scale(v) for m, v in values.items()}
        norm = {m: normalised(v) for m, v in values.items()}
        heat = heat_range(norm)
        networks = [
            {
                "model": m,
                "median": scales[m],
                "rows": [
                    [heat_cell(a, b, values[m], norm[m], heat, loss) for b in heads] for a in heads
                ],
            }
            for m in values
        ]
        names = list(values)
        agreements = []
        for i, a in enumerate(names):
            for b in names[i + 1 :]:
                agreement = rank_agreement(values[a], values[b])
                ratio = scales[a] / scales[b] if scales[b] else math.nan
                agreements.append(
                    {
                        "a": a,
                        "b": b,
                        "rho": agreement.spearman,
                        "tau": agreement.kendall,
                        "p": agreement.p_value,
                        "pairs": agreement.pairs,
                        "sentence": interpret(agreement, loss, a, b, ratio),
                    }
                )
        losses.append({"loss": loss, "networks": networks, "agreements": agreements})
    return {
        "experiment_id": experiment_id,
        "images": heads,
        "losses": losses,
        "small": len(heads) <= SMALL,
    }


def heat_range(norm: Mapping[str, Mapping[Any, float]]) -> tuple[float, float]:
    """The log10 range of the normalised values of every network: one colour scale."""
    logs = [
        math.log10(v) for vs in norm.values() for v in vs.values() if v > 0 and math.isfinite(v)
    ]
    if not logs:
        return (0.0, 1.0)
    lo, hi = min(logs), max(logs)
    return (lo, hi if hi > lo else lo + 1.0)


def heat_cell(
    a: Mapping[str, Any],
    b: Mapping[str, Any],
    raw: Mapping[tuple[str, str], float],
    norm: Mapping[tuple[str, str], float],
    heat: tuple[float, float],
    loss: str,
) -> dict[str, Any]:
    """One cell: the normalised value, its viridis colour, a legible ink, the raw value on hover."""
    import matplotlib

    if a["id"] == b["id"]:
        return {"text": "", "colour": "#eeeeee", "ink": "#999", "title": f"{a['name']}: itself"}
    key = (min(a["id"], b["id"]), max(a["id"], b["id"]))
    value, scaled = raw.get(key), norm.get(key)
    if value is None or scaled is None or not math.isfinite(scaled) or scaled <= 0:
        return {"text": "—", "colour": "#ffffff", "ink": "#999", "title": "not measured"}
    t = (math.log10(scaled) - heat[0]) / (heat[1] - heat[0])
    r, g, bl, _ = matplotlib.colormaps["viridis"](min(max(t, 0.0), 1.0))
    ink = "#000" if 0.299 * r + 0.587 * g + 0.114 * bl > 0.5 else "#fff"
    return {
        "text": f"{scaled:.2g}",
        "colour": f"#{int(r * 255):02x}{int(g * 255):02x}{int(bl * 255):02x}",
        "ink": ink,
        "title": f"{a['name']} ({a['role'] or '?'}) and {b['name']} ({b['role'] or '?'}): "
        f"{loss} loss {value:.4g}, {scaled:.3g} × the network's median",
    }
