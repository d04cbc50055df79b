"""Independent reference computation of METRICS.md (an oracle for the processors' tests).

Written from the spec alone: it never imports ``processors``.
"""
