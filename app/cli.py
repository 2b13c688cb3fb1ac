"""The ``routeiq`` console script: the learned-router commands plus the gateway's own.

``router_models.cli`` owns ``train``/``eval``/``compare`` and must not import ``app``;
the decision log's commands live next to their store (``app.access.decisions_cli``).
Only this module knows both, so the dependency points from ``app`` to ``router_models``
and never back. Nothing in the gateway imports it, and it builds the command tree only
when called (``main``, or ``build_cli`` in tests), so importing ``app`` pays nothing
for typer; each command imports its heavy libraries (torch, sqlalchemy) itself.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import typer


def build_cli() -> typer.Typer:
    """The root ``routeiq`` command: ``train``, ``eval``, ``compare``, ``publish``, ``versions``,
    ``promote``, ``rollback``, ``gate``, ``retrain``, ``decisions export``, ``config validate|diff``,
    ``audit export``, ``label``."""
    import typer

    from app.access.decisions_cli import app as decisions
    from app.audit.cli import app as audit
    from app.config_sync.cli import app as config
    from app.label.cli import app as label
    from app.retrain_cli import app as retrain
    from router_models.cli import app as learned
    from router_models.registry.cli import app as registry

    root = typer.Typer(
        help="RouteIQ: train, evaluate and publish learned routers, export the routing decision log.",
        no_args_is_help=True,
        pretty_exceptions_show_locals=False,
    )
    root.add_typer(learned)  # no name: its commands join the root (routeiq train, not routeiq x train)
    root.add_typer(registry)  # publish, versions, promote, rollback
    root.add_typer(decisions, name="decisions")
    root.add_typer(config, name="config")  # config validate, config diff
    root.add_typer(audit, name="audit")  # audit export: backfills to S3
    root.add_typer(retrain)  # retrain: export, train, gate, publish, promote
    root.add_typer(label)  # label: counterfactual labels, replayed and judged through the gateway
    return root


def main() -> None:
    build_cli()()


if __name__ == "__main__":
    main()
