"""Comparison without torch: tensor comparison, the precision study, expected rounding gaps, heatmaps."""
