"""The optimizer. `optimizer` runs the search as named steps over: what is searched (`space`), which
structures (`structures`), the bounds (`prune`) and the ranking built on them (`ranking`), one structure's
grid axes (`gridaxes`), points (`grid`) and evaluation (`tiling`), the best found (`best`); networks and
sweeps (`network`); `diskcache` and `alloc` only save time (docs/optimizer.md, "How the code follows the
search").
"""
