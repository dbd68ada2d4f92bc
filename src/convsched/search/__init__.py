"""The optimizer: which schedules it searches (`structures`), the bounds it prunes with (`prune`),
the grid of tile points (`grid`), the search itself (`optimizer`), networks and sweeps (`network`).
"""
