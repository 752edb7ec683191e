"""How jobs run: config composition, the job loop (skip finished work, record failures), the
results contract, atomic files, CPU threads, distributed helpers and the commands of a
pipeline. The bottom layer: it imports nothing else of dkp, and everything may import it."""
