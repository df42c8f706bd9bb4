"""Imports every calibrator module so that each registers itself."""

from kvtool.calibrate import cq, duo, kivi, kvquant, million, pertensor, qaq  # noqa: F401
