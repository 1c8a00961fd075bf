"""cytoresp: predict response to interferon-beta or glatiramer acetate from a cytokine panel."""

__version__ = "0.1.0"
