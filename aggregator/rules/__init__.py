"""Robust aggregation rules with one interface (`Rule.apply(batch, ctx) -> RuleResult`)."""

from __future__ import annotations

from aggregator.rules.base import RoundContext, Rule, RuleResult, UpdateBatch
from aggregator.rules.clip import NormClip, clip_factors
from aggregator.rules.consistency import ConsistencyFilter
from aggregator.rules.cosine import CosineFilter, cosines_to_vector
from aggregator.rules.duplicate import NearDuplicateFilter, pairwise_cosines
from aggregator.rules.feature_outlier import FeatureOutlierFilter
from aggregator.rules.krum import MultiKrum, krum_scores
from aggregator.rules.median import CoordinateMedian
from aggregator.rules.norm_outlier import NormOutlierFilter
from aggregator.rules.overshoot import OvershootFilter
from aggregator.rules.support import PeerSupportFilter, peer_support
from aggregator.rules.trimmed_mean import TrimmedMean

RULES: dict[str, type] = {
    "clip": NormClip,
    "cosine": CosineFilter,
    "krum": MultiKrum,
    "median": CoordinateMedian,
    "trimmed_mean": TrimmedMean,
    "norm_outlier": NormOutlierFilter,
    "near_duplicate": NearDuplicateFilter,
    "peer_support": PeerSupportFilter,
    "consistency": ConsistencyFilter,
    "overshoot": OvershootFilter,
    "feature_outlier": FeatureOutlierFilter,
}

__all__ = [
    "RULES",
    "ConsistencyFilter",
    "CoordinateMedian",
    "CosineFilter",
    "FeatureOutlierFilter",
    "MultiKrum",
    "NearDuplicateFilter",
    "NormClip",
    "NormOutlierFilter",
    "OvershootFilter",
    "PeerSupportFilter",
    "RoundContext",
    "Rule",
    "RuleResult",
    "TrimmedMean",
    "UpdateBatch",
    "clip_factors",
    "cosines_to_vector",
    "krum_scores",
    "pairwise_cosines",
    "peer_support",
]
