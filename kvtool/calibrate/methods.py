"""Imports every calibrator module so that each registers itself."""

from kvtool.calibrate import duo, kivi, kvquant, pertensor, qaq  # noqa: F401
