"""``nmt plot KIND``: pictures of what a trained network does, saved as PNG.

Each module computes its numbers from a run (pure functions, tested) and draws one matplotlib figure.
"""
