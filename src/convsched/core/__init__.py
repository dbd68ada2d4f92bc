"""Domain types and plumbing every other part uses: dimensions, Layer, Architecture, Schedule,
sizes with units, limits, errors, reading user files, writing output files, worker processes.
"""
