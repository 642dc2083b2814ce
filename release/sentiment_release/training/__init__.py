"""Turns the UCI sentiment data into a published model bundle: load -> fit -> evaluate -> gate."""
