"""Dataset annotation formats to :class:`~dkp.data.annotations.records.VideoRecord` lists:
one module per format (ActivityNet, Kinetics and Mini-Kinetics, UCF-101, HMDB-51,
Something-Something), sharing the record type and its checks (:mod:`.records`) and the
collection of entries, missing videos and probed durations (:mod:`.collector`)."""
