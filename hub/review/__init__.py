"""The closed-loop review: how the period's alerts were handled, recurring conditions and the longest waits."""
