"""Evaluating early exit (and dynamic DKP): exits under thresholds, thresholds for a budget,
what a route costs, and timing with real stopping."""
