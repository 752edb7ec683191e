"""Reporting: accuracy-vs-GFLOPs curves, tables and figures drawn from the jobs' results."""
