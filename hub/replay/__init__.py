"""Analysts' replay: recorded footage and ticket logs through the live edge and hub code, into statistics.

Nothing here re-implements counting, publishing or rules: each video goes through
``CameraCounter`` and the edge's ``PublishSchedule`` (``camera_job``), the resulting
occupancy messages and the ticket log are fed in footage time to a real ``Hub`` on a
``ManualClock`` (``timeline``), and what comes out is written as series and a report
(``series``, ``report``). The same inputs give byte-identical series.
"""
