"""Figures of the evaluation (matplotlib, optional): scatter plots of QE against gold."""

import logging
import math
import os

from ..core.errors import QEUserError
from .calibration import ECE_BINS, raw_probabilities, reliability_bins
from .metrics import pearson


def pyplot(option="--plot"):
    """matplotlib's pyplot drawing to files (Agg), or one error line naming ``option``."""
    logging.getLogger("matplotlib").setLevel(logging.WARNING)
    try:
        import matplotlib
    except ImportError:
        raise QEUserError(f"{option} needs matplotlib: pip install matplotlib") from None
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def save_figure(plt, figure, path, option="--plot"):
    """Write ``figure`` to ``path`` (its folder made), closing it; one error line if it
    cannot be written."""
    try:
        os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
        figure.savefig(path, dpi=120)
    except OSError as exc:
        raise QEUserError(f"cannot write {option} {path}: {exc.strerror}") from exc
    finally:
        plt.close(figure)
    return path


def plot_scatter(panels, directory, gold_name="gold"):
    """Figure-2-style scatter plots, gold on x and predicted QE on y, one panel per
    (label, predicted, gold) entry, written to ``directory/scatter.png``; returns the paths."""
    plt = pyplot()
    columns = min(3, len(panels))
    rows = math.ceil(len(panels) / columns)
    figure, axes = plt.subplots(rows, columns, figsize=(4 * columns, 3.6 * rows), squeeze=False)
    for axis, (label, predicted, gold) in zip(axes.flat, panels):
        axis.scatter(gold, predicted, s=8, alpha=0.5, edgecolors="none")
        axis.set_title(f"{label} (Pearson {pearson(predicted, gold):.3f})", fontsize=10)
        axis.set_xlabel(gold_name)
        axis.set_ylabel("predicted QE")
    for axis in axes.flat[len(panels) :]:
        axis.set_visible(False)
    figure.tight_layout()
    return [save_figure(plt, figure, os.path.join(directory, "scatter.png"))]


def plot_reliability(fitted, path):
    """Reliability diagrams (mean outcome per bin of the predicted probability of OK), one
    panel per level, before and after calibration."""
    plt = pyplot("--plot")
    figure, axes = plt.subplots(1, len(fitted), figsize=(4.4 * len(fitted), 4), squeeze=False)
    for axis, (level, (calibration, x, outcomes)) in zip(axes.flat, fitted.items()):
        axis.plot([0, 1], [0, 1], color="grey", linewidth=0.8, linestyle="--")
        for name, probs in (("before", raw_probabilities(level, x)), ("after", calibration(x))):
            mean_prob, mean_outcome, _ = reliability_bins(probs, outcomes)
            ece = calibration.info[name]["ece"]
            axis.plot(mean_prob, mean_outcome, marker="o", label=f"{name} (ECE {ece:.3f})")
        axis.set_title(f"{level} level ({len(x)} {level}s, {ECE_BINS} bins)", fontsize=10)
        axis.set_xlabel("predicted probability of OK")
        axis.set_ylabel("mean gold" if level == "sentence" else "share of OK words")
        axis.legend(fontsize=8)
    figure.tight_layout()
    return save_figure(plt, figure, path, "--plot")
