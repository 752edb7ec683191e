"""``dkp-eval`` whose job with ``sampling.n_t=3`` is interrupted (KeyboardInterrupt, as Ctrl-C)."""

from __future__ import annotations

import dkp.eval

evaluate = dkp.eval.evaluate


def interrupted_at_n_t_3(cfg):
    if cfg.sampling.n_t == 3:
        raise KeyboardInterrupt
    return evaluate(cfg)


if __name__ == "__main__":
    dkp.eval.evaluate = interrupted_at_n_t_3
    dkp.eval.main()
