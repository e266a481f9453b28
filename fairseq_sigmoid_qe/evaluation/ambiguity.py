"""The ambiguity report: how alike each QE method scores several valid translations of one
source (force-decoded references)."""

import math

import numpy as np

from ..core.errors import QEUserError
from .records import group_records, method_names, method_scores

AMBIGUITY_VALID = 0.5


def ambiguity_row(groups, method, valid_threshold=AMBIGUITY_VALID):
    """How alike one method scores the valid translations of each source: mean over sources
    of min/max sentence score (1 = all alike; a source whose scores are all 0 counts as 1),
    mean score of the translations, and the share scoring at least ``valid_threshold``."""
    ratios, scores = [], []
    for members in groups:
        values = method_scores(members, method)
        if not np.isfinite(values).all():
            continue
        scores.extend(values)
        top = values.max()
        ratios.append(values.min() / top if top > 0 else 1.0)
    scores = np.asarray(scores, float)
    return {
        "method": method,
        "sources": len(ratios),
        "translations": int(scores.size),
        "min_max_ratio": float(np.mean(ratios)) if ratios else math.nan,
        "mean_score": float(scores.mean()) if scores.size else math.nan,
        f"share_ge_{valid_threshold:g}": float((scores >= valid_threshold).mean())
        if scores.size
        else math.nan,
    }


def ambiguity_report(records, groups=None, label=None):
    """:func:`ambiguity_row` per method of QE records of force-decoded valid translations."""
    grouped = group_records(records, groups)
    if not grouped:
        raise QEUserError("--ambiguity needs sources with two or more translations")
    return [
        {**ambiguity_row(grouped, method), "method": f"{label}/{method}" if label else method}
        for method in method_names(records)
    ]
