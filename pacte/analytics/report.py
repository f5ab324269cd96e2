"""An HTML report of a projection, with PNG plots, built only from suppressed aggregates.

The report calls the analyses and draws what they return, nothing else, so a group
hidden by an analysis (fewer than `k` customers) is absent from the tables and the
plots alike (G9). Plots are drawn with matplotlib's Agg canvas, without pyplot, so no
display and no global state are involved.
"""

from __future__ import annotations

import base64
import io
from collections.abc import Sequence
from dataclasses import dataclass
from html import escape
from pathlib import Path
from typing import TYPE_CHECKING

from pacte.analytics.communities import Communities, communities
from pacte.analytics.copurchase import BoughtTogether, bought_together
from pacte.analytics.dp import PrivateCounts
from pacte.analytics.export import check_directory, new_file, output_path
from pacte.analytics.journeys import ChannelMix, Journeys, channel_mix, purchase_journeys
from pacte.analytics.projection import Projection, _detail
from pacte.analytics.ratings import Ratings, ratings
from pacte.analytics.referrals import ReferralWeight, referral_weight
from pacte.analytics.suppress import K_DEFAULT, Mix, check_k
from pacte.clock import Clock, utcnow
from pacte.errors import ConfigError

if TYPE_CHECKING:
    from matplotlib.figure import Figure

__all__ = ["Findings", "findings", "report"]

_OTHER = "(other)"


@dataclass(frozen=True, slots=True)
class Findings:
    """Every analysis the report shows, already suppressed."""

    k: int
    customers: int | None
    channels: ChannelMix
    journeys: Journeys
    pairs: BoughtTogether
    communities: Communities
    referrals: ReferralWeight
    ratings: Ratings


def findings(projection: Projection, *, k: int = K_DEFAULT, seed: int = 0) -> Findings:
    """Run the report's analyses.

    >>> from pacte.analytics.testing import projection_of, row
    >>> f = findings(projection_of([row(i, bought=["lamp"]) for i in range(3)]))
    >>> f.customers, f.pairs.pairs
    (None, [])
    """
    check_k(k)
    n = projection.anonymity.customers  # every projected customer, released or not
    return Findings(
        k=k,
        customers=n if n >= k else None,
        channels=channel_mix(projection, k=k),
        journeys=purchase_journeys(projection, k=k),
        pairs=bought_together(projection, k=k),
        communities=communities(projection, k=k, seed=seed),
        referrals=referral_weight(projection, k=k),
        ratings=ratings(projection, k=k, top=20),
    )


def report(projection: Projection, *, directory: Path | None = None,
           output: Path | None = None, k: int = K_DEFAULT, seed: int = 0,
           private: PrivateCounts | None = None, now: Clock = utcnow) -> Path:
    """Write `pacte-report-<time>.html` in `directory`, or `output` (a new file);
    returns its path.

    One self-contained file: the PNG plots are inlined as data URIs, so the page can
    be mailed or archived as it is.

    With `private` (see `pacte.analytics.dp`), the customer count and the customers
    per channel are its noisy, differentially private figures, and their exact
    values appear nowhere in the report; the page says which figures are which.

    >>> import tempfile
    >>> from pacte.analytics.testing import projection_of, row
    >>> p = projection_of([row(i, bought=["lamp"]) for i in range(6)])
    >>> with tempfile.TemporaryDirectory() as tmp:
    ...     path = report(p, directory=Path(tmp))
    ...     path.suffix, sorted(f.suffix for f in Path(tmp).iterdir())
    ('.html', ['.html'])
    """
    page = new_file(output) if output is not None else output_path(
        check_directory(directory), stem="pacte-report", suffix="html", now=now)
    found = findings(projection, k=k, seed=seed)
    channel_bars = (_with_other(found.channels.customers) if private is None
                    else sorted(private.channels.items(), key=lambda kv: (-kv[1], kv[0])))
    plots = {
        "channels": _bar_plot(channel_bars, "Customers per channel"
                              + (" (differentially private)" if private else ""),
                              "distinct customers"),
        "journeys": _bar_plot([(str(p), p.customers) for p in found.journeys.paths],
                              "Most common paths to a purchase", "distinct customers"),
        "communities": _communities_plot(found.communities),
        "referrals": _bar_plot(
            [(_bin_label(b.low, b.high), b.customers) for b in found.referrals.histogram],
            "Referral weight (1.0 = average customer)", "customers", horizontal=False),
    }
    html = _html(found, projection, images={n: _data_uri(fig) for n, fig in plots.items()},
                 private=private, now=now)
    page.write_text(html, encoding="utf-8")
    return page


# -- plots -------------------------------------------------------------------------


def _new_figure(*, figsize: tuple[float, float]) -> Figure:
    # matplotlib is the `report` extra: only the report needs it (and numpy with it).
    try:
        from matplotlib.figure import Figure
    except ImportError as exc:
        raise ConfigError("the HTML report needs matplotlib: pip install 'pacte[report]'"
                          ) from exc
    return Figure(figsize=figsize, layout="constrained")


def _data_uri(fig: Figure) -> str:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=110)
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


def _with_other(mix: Mix) -> list[tuple[str, int]]:
    bars = list(mix.counts.items())
    if mix.other is not None:
        bars.append((_OTHER, mix.other))
    return bars


def _bin_label(low: float, high: float) -> str:
    return f"{low:g}+" if high == float("inf") else f"{low:g}–{high:g}"


def _bar_plot(bars: Sequence[tuple[str, int]], title: str, unit: str, *,
              horizontal: bool = True) -> Figure:
    fig = _new_figure(figsize=(8, max(2.5, 0.45 * len(bars) + 1.5)))
    ax = fig.add_subplot()
    ax.set_title(title)
    if not bars:
        ax.text(0.5, 0.5, "nothing to show: every group has fewer than k customers",
                ha="center", va="center", transform=ax.transAxes)
        ax.set_axis_off()
        return fig
    labels = [b[0] for b in bars]
    values = [b[1] for b in bars]
    if horizontal:
        rects = ax.barh(labels[::-1], values[::-1], color="#4477aa")
        ax.set_xlabel(unit)
    else:
        rects = ax.bar(labels, values, color="#4477aa")
        ax.set_ylabel(unit)
    ax.bar_label(rects, padding=2)
    if horizontal:
        ax.margins(x=0.08)
    else:
        ax.margins(y=0.15)
    ax.spines[["top", "right"]].set_visible(False)
    return fig


def _communities_plot(found: Communities, *, shown: int = 8) -> Figure:
    rows = found.communities[:shown]
    fig = _new_figure(figsize=(8, max(2.5, 0.5 * len(rows) + 1.8)))
    ax = fig.add_subplot()
    ax.set_title("Communities by segment (distinct customers)")
    if not rows:
        ax.text(0.5, 0.5, "nothing to show: every community has fewer than k customers",
                ha="center", va="center", transform=ax.transAxes)
        ax.set_axis_off()
        return fig
    segments = sorted({s for c in rows for s in c.segments.counts})
    if any(c.segments.other is not None for c in rows):
        segments.append(_OTHER)
    labels = [f"#{c.number} ({c.customers})" for c in rows][::-1]
    left = [0] * len(rows)
    colours = ["#4477aa", "#ee6677", "#228833", "#ccbb44", "#66ccee", "#aa3377", "#bbbbbb"]
    for i, seg in enumerate(segments):
        values = [(c.segments.other or 0) if seg == _OTHER else c.segments.counts.get(seg, 0)
                  for c in rows][::-1]
        ax.barh(labels, values, left=left, label=seg, color=colours[i % len(colours)])
        left = [a + b for a, b in zip(left, values, strict=True)]
    ax.set_xlabel("distinct customers")
    ax.legend(loc="lower right", fontsize="small", frameon=False)
    ax.spines[["top", "right"]].set_visible(False)
    return fig


# -- HTML --------------------------------------------------------------------------


def _table(head: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    if not rows:
        return "<p class=empty>Nothing to show: every group has fewer than k customers.</p>"
    th = "".join(f"<th>{escape(h)}</th>" for h in head)
    body = "".join("<tr>" + "".join(f"<td>{escape(_cell(v))}</td>" for v in r) + "</tr>"
                   for r in rows)
    return f"<table><thead><tr>{th}</tr></thead><tbody>{body}</tbody></table>"


def _cell(value: object) -> str:
    if value is None:
        return "—"
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


def _mix_text(mix: Mix, *, n: int = 4, names: dict[str, str] | None = None) -> str:
    parts = [f"{(names or {}).get(name, _short(name))} {count}" for name, count in mix.top(n)]
    if mix.other is not None:
        parts.append(f"{_OTHER} {mix.other}")
    return ", ".join(parts) or "—"


def _short(node: str) -> str:
    return node.split(":", 1)[1] if ":" in node else node


def _hidden(n: int, what: str) -> str:
    return f"<p class=note>{n} {what} hidden (fewer than k customers).</p>" if n else ""


def _img(src: str, alt: str) -> str:
    return f'<img src="{escape(src)}" alt="{escape(alt)}">'


def _channels(f: Findings, private: PrivateCounts | None) -> list[str]:
    if private is not None:  # the exact counts and interactions would undo the noise
        noisy = sorted(private.channels.items(), key=lambda kv: (-kv[1], kv[0]))
        return [_table(["channel", "distinct customers (noisy)"], noisy)]
    return [_table(["channel", "distinct customers", "interactions"],
                   [(ch, n, f.channels.interactions.get(ch)) for ch, n in
                    f.channels.customers.counts.items()]),
            _hidden(f.channels.suppressed, "channels")]


def _what_is_what(f: Findings, private: PrivateCounts | None) -> str:
    exact = (f"Exact with suppression: every figure below except those marked noisy; each "
             f"counts distinct customers, and groups of fewer than k = {f.k} are not shown. "
             f"These are not differentially private.")
    if private is None:
        return f"<p>{exact} No figure in this report is noisy.</p>"
    p = private.parameters()
    return (f"<p>Noisy (epsilon-differentially private, epsilon = {p['epsilon']:g} for the "
            f"whole release, {escape(str(p['mechanism']))}): the number of customers "
            f"(sensitivity 1, scale {p['customers_scale']:g}) and the customers per channel "
            f"for every channel (sensitivity {p['channels_sensitivity']}, scale "
            f"{p['channels_scale']:g}), clamped at 0. {exact}</p>")


def _html(f: Findings, projection: Projection, *, images: dict[str, str],
          private: PrivateCounts | None, now: Clock) -> str:
    c, r = f.communities, f.referrals
    g = _detail(projection)
    names = {n: str(d.get("label", _short(n))) for n, d in g.nodes(data=True)
             if d.get("kind") == "product"}
    sections = [
        "<h2>What these figures are</h2>", _what_is_what(f, private),
        "<h2>Channels</h2>", _img(images["channels"], "customers per channel"),
        *_channels(f, private),
        "<h2>Paths to a purchase</h2>", _img(images["journeys"], "paths to a purchase"),
        _table(["path", "distinct customers"], [(str(p), p.customers) for p in f.journeys.paths]),
        _hidden(f.journeys.suppressed, "paths"),
        "<h2>Bought together</h2>",
        _table(["product", "product", "distinct customers"],
               [(names.get(p.a, p.a), names.get(p.b, p.b), p.customers)
                for p in f.pairs.pairs]),
        _hidden(f.pairs.suppressed, "pairs"),
        "<h2>Communities</h2>", _img(images["communities"], "communities by segment"),
        _table(["#", "customers", "segments", "age bands", "channels", "products"],
               [(x.number, x.customers, _mix_text(x.segments), _mix_text(x.age_bands),
                 _mix_text(x.channels), _mix_text(x.products, names=names))
                for x in c.communities]),
        _hidden(c.suppressed, "communities"),
        "<h2>Referral weight</h2>", _img(images["referrals"], "referral weight histogram"),
        _table(["customers", "referrals", "referrers", "top tenth holds"],
               [(None if private else r.customers, r.referrals, r.referrers,
                 r.top_decile_share)]),
        _table(["quantile", "weight"], [(f"p{round(q * 100)}", v)
                                         for q, v in r.quantiles.items()]),
        "<h2>Ratings</h2>",
        _table(["product", "reviewers", "mean", "stars"],
               [(p.label, p.reviewers, p.mean, _mix_text(p.stars, n=5))
                for p in f.ratings.products]),
        _hidden(f.ratings.suppressed, "products"),
    ]
    title = "pacte analytics report"
    meta = (f"Projection built {projection.built_at:%Y-%m-%d %H:%M} UTC under "
            f"<code>{escape(projection.purpose)}</code>; report written "
            f"{now():%Y-%m-%d %H:%M} UTC. Customers: "
            + (f"{private.customers} (noisy)" if private else _cell(f.customers))
            + f". Every figure counts distinct customers; groups of fewer than k = {f.k} "
            "are not shown.")
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{title}</title>
<style>
body {{ font: 15px/1.45 system-ui, sans-serif; max-width: 60rem; margin: 2rem auto;
       padding: 0 1rem; color: #222; }}
table {{ border-collapse: collapse; margin: .5rem 0 1rem; }}
th, td {{ border-bottom: 1px solid #ddd; padding: .25rem .6rem; text-align: left; }}
img {{ max-width: 100%; }} .note, .empty {{ color: #666; font-size: 90%; }}
</style></head>
<body><h1>{title}</h1><p>{meta}</p>
{chr(10).join(s for s in sections if s)}
</body></html>
"""
