"""A real dataset made ready for training: checked (:mod:`.check`, :mod:`.report`) and copied
into renditions made for sampled reading (:mod:`.prepare`, :mod:`.manifest`).

``dkp-data check`` opens and indexes every video a data config lists and reports the missing,
unreadable and suspicious ones; ``dkp-data prepare`` re-encodes each into a small H.264 copy
with short, fixed keyframe intervals, whose frame at every time is the original's. The data
module reads both back: ``data.exclude_report`` leaves the bad videos out, ``data.prepared``
reads the copies; :mod:`.commands` is what the two commands run. Submodules are imported on
use: the data module imports :mod:`.report` and :mod:`.manifest`, and :mod:`.listing`
imports the data module.
"""
