"""How jobs run: config composition, the job loop (skip finished work, record failures), the
results contract, atomic files, CPU threads and distributed helpers. The bottom layer: it
imports nothing else of dkp, and everything may import it."""
