"""Samplers kept apart from networks: noise schedules and solvers, decoding strategies, latent paths."""
