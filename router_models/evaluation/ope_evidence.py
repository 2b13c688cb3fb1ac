"""The gate's rules for the decision log and for the labelled split, apart from the gate so
the CLIs can name them in their options without importing numpy at start-up
(``router_models.evaluation.gate`` says why ``interval`` is the log's default)."""

from __future__ import annotations

from enum import StrEnum


class OpeEvidence(StrEnum):
    """What refuses a candidate on the log (``Margins.ope_evidence``; the CLIs' ``--ope-evidence``)."""

    INTERVAL = "interval"
    POINT = "point"


OPE_EVIDENCE_HELP = ("What refuses on the decision log: 'interval' (its 95 % interval lies below -margin-ope) "
                     "or 'point' (the point estimate does).")


class SplitEvidence(StrEnum):
    """What passes on the labelled split (``Margins.split_evidence``; the CLIs' ``--split-evidence``)."""

    POINT = "point"
    BETTER = "better"


SPLIT_EVIDENCE_HELP = ("What passes on the labelled split's Q@C_best ratio: 'point' (not lower than the current "
                       "router's by more than margin-q) or 'better' (higher in 90 % of paired bootstrap resamples).")
