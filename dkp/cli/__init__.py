"""The command-line entry points: each parses its arguments and makes one library call.

Hydra commands (``dkp-train``, ``dkp-eval``, ``dkp-exits``) take config overrides and run a
task of :mod:`dkp.tasks` as a job; the others (``dkp-predict``, ``dkp-curves``,
``dkp-synthetic``, ``dkp-activitynet``) take options. Every ``main(argv)`` returns the exit
code: 0 done, 1 done with failures (a video or a job), 2 a usage or config error.
"""
