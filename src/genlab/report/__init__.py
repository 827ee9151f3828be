"""Pictures and reports of runs: sample grids, scatter plots."""
