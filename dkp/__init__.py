"""dkp: efficient video action recognition (Dynamic Knowledge Propagation and early exit)."""

__version__ = "0.1.0"
