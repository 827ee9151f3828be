"""Pictures and reports of runs: sample grids, scatter plots, loss curves, the HTML report, rankings."""
