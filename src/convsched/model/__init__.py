"""The exact traffic model, three ways over one semantics (docs/semantics.md): the closed form
(`closed_form`), the same over arrays of tile candidates (`vectorised`, with `spatialtable` and `axes`),
and the walking simulator (`simulate`); lower bounds any schedule's traffic respects (`bounds`).
"""
