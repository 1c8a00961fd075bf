"""Analyte registry, panel reading and validation, censoring, log-ratios and axis scores."""
