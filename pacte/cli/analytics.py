"""Pseudonymised, consented projections; aggregates of k customers or more."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from pacte.cli._common import DataOpt, app, fail, guarded, opened
from pacte.errors import PacteError

if TYPE_CHECKING:
    from pacte.graph.session import Session

analytics_app = typer.Typer(help="Pseudonymised, consented projections for analysts.",
                            no_args_is_help=True)
app.add_typer(analytics_app, name="analytics")


OutputOpt = Annotated[Path | None, typer.Option(
    "--output", "-o", help="The file to write (a new one; never overwritten)",
    show_default=False)]


@analytics_app.command("export")
def analytics_export(
    format: Annotated[str, typer.Option(
        "--format", help="graphml, gexf or json (node-link)")] = "graphml",
    k: Annotated[int, typer.Option("--k", help="Smallest equivalence class (>= 5)")] = 5,
    output: OutputOpt = None,
    data: DataOpt = None,
) -> None:
    """Export the k-anonymous projection to a new file (-o), else one named by the time
    in the current directory.

    Every customer record (segment, age band, edges with month ranges and amount
    bands) matches at least k-1 others; customers are pseudonyms keyed for this
    export alone. Prints the file name, then the achieved k and suppression rates
    (also in the file's metadata and the export's audit entry).

    Example: pacte analytics export --format gexf -o customers.gexf --k 10
    """
    from pacte.analytics import FORMATS, build_projection, export

    _check_output(output)
    chosen = next((f for f in FORMATS if f == format), None)
    if chosen is None:
        fail(f"--format must be one of {', '.join(FORMATS)}", code=2)
    with opened(data) as rt:
        session = rt.operator_session("analytics")
        projection = guarded(lambda: build_projection(session))
        done = guarded(lambda: export(projection, format=chosen, directory=Path.cwd(),
                                      output=output, k=k))
        _on_record(session, "analytics.export", done.path,
                   {"format": chosen, **done.anonymity.metadata()})
    typer.echo(done.path.name if output is None else done.path)
    typer.echo(str(done.anonymity))


@analytics_app.command("report")
def analytics_report(
    epsilon: Annotated[float | None, typer.Option(
        "--epsilon", help="Release the customer counts with differential privacy, "
                          "spending this much of the privacy budget")] = None,
    output: OutputOpt = None,
    data: DataOpt = None,
) -> None:
    """Write an HTML report (one file, plots inlined) to -o, else to a new file named by
    the time in the current directory; prints its path.

    With --epsilon, the number of customers and the customers per channel are
    noisy (epsilon-differentially private) and the epsilon spent is recorded in
    the audit trail; once the budget is spent, further releases are refused. The
    budget is the policy file's ([privacy] budget, default 1.0), not an option.

    Example: pacte analytics report --epsilon 0.2 -o report.html
    """
    from pacte.analytics import build_projection, private_counts, report

    _check_output(output)  # before any budget is spent
    with opened(data) as rt:
        session = rt.operator_session("analytics")
        projection = guarded(lambda: build_projection(session))
        private = None
        if epsilon is not None:
            eps = epsilon
            # Spent before the noisy figures exist: a failure after this wastes budget,
            # never releases unaccounted figures.
            counts = guarded(lambda: private_counts(projection, epsilon=eps))
            left = guarded(lambda: session.record_release(
                "analytics.dp_release", details=counts.parameters(), epsilon=eps))
            private = counts
        path = guarded(lambda: report(projection, directory=Path.cwd(), output=output,
                                      private=private))
        _on_record(session, "analytics.report", path,
                   {"file": path.name, "differentially_private": private is not None})
    typer.echo(path)
    if private is not None:
        typer.echo(f"differential privacy: epsilon {private.epsilon:g} spent, "
                   f"{left:g} of the budget left")


def _check_output(output: Path | None) -> None:
    from pacte.analytics.export import new_file

    if output is not None:
        guarded(lambda: new_file(output))


def _on_record(session: Session, action: str, path: Path, details: dict[str, Any]) -> None:
    """Record the release of the file at `path`; a file whose release could not be
    recorded does not stay (whatever the failure), and a domain error is one line."""
    try:
        session.record_release(action, details=details)
    except BaseException as exc:
        path.unlink(missing_ok=True)
        if isinstance(exc, PacteError):
            fail(str(exc))
        raise

