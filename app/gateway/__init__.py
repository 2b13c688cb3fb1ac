"""The request core of the ingress: what happens to a request between its route and the graph.

- ``core.Gateway``: resolve the model, route (``routing``), admit, call along the
  fallback chain, with ingress-side deadlines on every provider handle call;
- ``exchange.Exchange``: one request from admission to settlement, the only owner of
  its lifecycle (admission slot, settlement, metrics, span, decision record);
- ``catalog`` (what a ``model`` names), ``admission`` (load shedding), ``cooldowns``
  (failing deployments skipped), ``decisions`` (the decision-record protocol),
  ``metrics`` (the metrics protocol), ``plan`` (per-request data).

No Ray, no HTTP here: routes hand requests over, ``deployments.ingress`` supplies the
handles, ``app.wiring.build_gateway`` puts the pieces together.
"""

from app.gateway.core import Gateway, ProviderPool
from app.gateway.exchange import Answer, Exchange, StreamAnswer
from app.gateway.plan import Plan, RequestContext
from app.gateway.routing import RouterClient

__all__ = ["Answer", "Exchange", "Gateway", "Plan", "ProviderPool", "RequestContext", "RouterClient",
           "StreamAnswer"]
