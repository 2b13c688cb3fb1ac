"""The gate's rule for refusing on the decision log, apart from the gate so the CLIs can name
it in their options without importing numpy at start-up (``router_models.evaluation.gate``
says why ``interval`` is the default)."""

from __future__ import annotations

from enum import StrEnum


class OpeEvidence(StrEnum):
    """What refuses a candidate on the log (``Margins.ope_evidence``; the CLIs' ``--ope-evidence``)."""

    INTERVAL = "interval"
    POINT = "point"


OPE_EVIDENCE_HELP = ("What refuses on the decision log: 'interval' (its 95 % interval lies below -margin-ope) "
                     "or 'point' (the point estimate does).")
