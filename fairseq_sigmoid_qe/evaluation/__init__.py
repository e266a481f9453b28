"""Evaluation of QE scores (no fairseq): metrics, gold, QE records, calibration, the ambiguity
report, plots."""
