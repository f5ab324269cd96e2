"""Consented, k-anonymous networkx projections for analysts, and what they may learn.

Build a projection through an analyst's session: its graph is the k-anonymous
release of the consenting customers (`pacte.analytics.anonymity`). Then run
analyses on it; they read the detail the projection keeps inside (pacte's code, not
the analyst's), every one has the shape `fn(projection, *, k=5, ...)` and returns
plain data in which no group of fewer than `k` distinct customers appears (G9)::

    from pacte.analytics import build_projection, bought_together, report
    with Pacte.open("pacte-data") as rt:
        projection = build_projection(rt.session(analyst, "analytics"))
    projection.graph, projection.anonymity      # records of classes of >= 5 customers
    bought_together(projection, top=10)
    report(projection, directory=Path("."))
"""

from __future__ import annotations

from pacte.analytics.anonymity import Anonymity, Release
from pacte.analytics.communities import Communities, Community, communities
from pacte.analytics.copurchase import BoughtTogether, Pair, bought_together, copurchase_graph
from pacte.analytics.dp import PrivateCounts, private_counts
from pacte.analytics.export import FORMATS, Exported, ExportFormat, export, export_graph
from pacte.analytics.journeys import (
    ChannelMix,
    Journeys,
    PathCount,
    ProductJourneys,
    channel_mix,
    product_journeys,
    purchase_journeys,
)
from pacte.analytics.projection import Projection, anonymise, build_projection
from pacte.analytics.ratings import ProductRating, Ratings, ratings
from pacte.analytics.referrals import ReferralWeight, referral_weight
from pacte.analytics.report import Findings, findings, report
from pacte.analytics.suppress import K_DEFAULT, Bin, Mix

__all__ = [
    "FORMATS",
    "K_DEFAULT",
    "Anonymity",
    "Bin",
    "BoughtTogether",
    "ChannelMix",
    "Communities",
    "Community",
    "ExportFormat",
    "Exported",
    "Findings",
    "Journeys",
    "Mix",
    "Pair",
    "PathCount",
    "PrivateCounts",
    "ProductJourneys",
    "ProductRating",
    "Projection",
    "Ratings",
    "ReferralWeight",
    "Release",
    "anonymise",
    "bought_together",
    "build_projection",
    "channel_mix",
    "communities",
    "copurchase_graph",
    "export",
    "export_graph",
    "findings",
    "private_counts",
    "product_journeys",
    "purchase_journeys",
    "ratings",
    "referral_weight",
    "report",
]
