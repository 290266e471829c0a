"""Per-ticket wait prediction: causal queue features, a small model learnt per site, and its evaluation.

``features`` (what a ticket issued now finds), ``predictor`` (its wait and 80 % interval),
``training`` (the model, retrained daily from stored history) and ``evaluate`` / ``cli``
(``hallgrid eval-waits``: the live hub replayed over ticket logs, scored against actual waits).
"""
