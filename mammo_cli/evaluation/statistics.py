"""How sure a test-set number is: bootstrap intervals, paired comparisons, DeLong's test.

Resampling is by *units*: a unit is what was sampled independently (a test sample, an
abnormality/baseline pair, a patient, or one test sample predicted by several holdout
splits), and the rows of a unit are always resampled together. The bootstrap is
*stratified*, as R's pROC does by default for AUC: units are grouped by the set of
classes they hold, and each group is resampled on its own with its size kept
(``scipy.stats.bootstrap`` with one data array per group resamples each independently).
Every resample thus holds every class, and the AUC is defined in all of them. A group of
a single unit has no resampling variability and stays in every resample as it is.

A resample is represented by how often it draws each unit, so every metric is a
weighted sum over rows, computed for all resamples at once (these weighted metrics equal
scikit-learn's on the resampled rows; the tests check it). The module is one piece: the
resampling design, the vectorised metrics and the tests built on them share their code.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
from scipy import stats

from mammo_cli.evaluation.metrics import brier_per_sample, classification_metrics, to_distribution

#: metrics that get an interval (and that :func:`paired_difference` compares)
INTERVAL_METRICS = ("accuracy", "auc", "f1", "f1_macro", "brier")
#: the interval constructions :func:`bootstrap_intervals` offers
CI_METHODS = ("percentile", "bca")
#: resamples x rows computed at once (bounds memory on large pooled test sets)
_BATCH_CELLS = 2_000_000

Interval = tuple[float, float]


@dataclass(frozen=True)
class _Rows:
    """Per-row quantities the metrics of a resample are weighted sums of."""

    labels: np.ndarray
    dist: np.ndarray
    onehot: np.ndarray
    predicted: np.ndarray
    brier: np.ndarray
    positive_class: int | None

    @classmethod
    def of(cls, labels: np.ndarray, probs: np.ndarray, positive_class: int | None) -> _Rows:
        dist = to_distribution(probs)
        eye = np.eye(dist.shape[1])
        labels = np.asarray(labels)
        predicted = eye[dist.argmax(axis=1)]
        return cls(
            labels, dist, eye[labels], predicted, brier_per_sample(labels, dist), positive_class
        )

    def metric(self, name: str, weights: np.ndarray) -> np.ndarray:
        """``name`` for each row of ``weights`` (resamples x rows: draws of each row)."""
        total = weights.sum(axis=1)
        if name == "accuracy":
            return weights @ np.sum(self.onehot * self.predicted, axis=1) / total
        if name == "brier":
            return weights @ self.brier / total
        if name in ("f1", "f1_macro"):
            f1 = _f1_per_class(weights, self.onehot, self.predicted)
            if name == "f1" and self.positive_class is not None:
                return f1[:, self.positive_class]
            return f1.mean(axis=1)
        if name == "auc":
            if self.dist.shape[1] == 2:
                positive = 1 if self.positive_class is None else self.positive_class
                return weighted_auc(weights, self.labels == positive, self.dist[:, positive])
            per_class = [
                weighted_auc(weights, self.labels == c, self.dist[:, c])
                for c in range(self.dist.shape[1])
            ]
            return np.mean(per_class, axis=0)
        raise ValueError(f"unknown metric {name!r}; expected one of {INTERVAL_METRICS}")


def _f1_per_class(weights: np.ndarray, onehot: np.ndarray, predicted: np.ndarray) -> np.ndarray:
    """F1_c = 2 TP_c / (2 TP_c + FP_c + FN_c) from weighted confusion counts; 0 if 0/0."""
    true_positives = weights @ (onehot * predicted)
    denominator = weights @ (onehot + predicted)
    return np.divide(
        2 * true_positives, denominator, out=np.zeros_like(denominator), where=denominator > 0
    )


def weighted_auc(weights: np.ndarray, positives: np.ndarray, scores: np.ndarray) -> np.ndarray:
    """The ROC AUC of each row of ``weights`` (resamples x samples), rank-based.

    AUC = sum over (positive i, negative j) of w_i w_j (1[s_i > s_j] + 1/2 1[s_i = s_j]),
    divided by (sum of positive weights) x (sum of negative weights): the Mann-Whitney
    statistic with ties counted half, equal to :func:`sklearn.metrics.roc_auc_score` of
    the rows repeated w times. Computed from cumulative negative weights over the sorted
    scores, O(samples) per resample.
    """
    order = np.argsort(scores, kind="stable")
    sorted_scores, positive = scores[order], np.asarray(positives)[order]
    w = weights[:, order]
    new_value = np.r_[True, sorted_scores[1:] != sorted_scores[:-1]]
    starts = np.flatnonzero(new_value)
    ends = np.r_[starts[1:], len(sorted_scores)]
    group = np.cumsum(new_value)[positive] - 1  # tie group of each positive
    negatives_below = np.zeros((w.shape[0], w.shape[1] + 1))
    np.cumsum(w * ~positive, axis=1, out=negatives_below[:, 1:])
    w_positive = w[:, positive]
    # per positive: the negatives strictly below its score plus half of those tied with it
    ranked = (negatives_below[:, starts[group]] + negatives_below[:, ends[group]]) / 2
    pairs = w_positive.sum(axis=1) * negatives_below[:, -1]
    return np.sum(w_positive * ranked, axis=1) / pairs


@dataclass(frozen=True)
class _Design:
    """The units of the rows and the strata they are resampled in."""

    row_unit: np.ndarray  # unit index of each row
    n_units: int
    strata: list[np.ndarray]  # unit indices of each stratum with two or more units
    fixed: np.ndarray  # units alone in their stratum: in every resample once

    @classmethod
    def of(cls, labels: np.ndarray, units: np.ndarray | None) -> _Design:
        labels = np.asarray(labels)
        ids = np.arange(len(labels)) if units is None else np.asarray(units)
        if len(ids) != len(labels):
            raise ValueError(f"{len(ids)} unit ids for {len(labels)} rows")
        _, row_unit = np.unique(ids, return_inverse=True)
        row_unit = row_unit.ravel()
        n_units = int(row_unit.max()) + 1
        classes_of_unit = np.zeros((n_units, int(labels.max()) + 1), dtype=bool)
        classes_of_unit[row_unit, labels] = True
        _, stratum = np.unique(classes_of_unit, axis=0, return_inverse=True)
        groups = [np.flatnonzero(stratum.ravel() == s) for s in range(int(stratum.max()) + 1)]
        return cls(
            row_unit,
            n_units,
            [g for g in groups if len(g) > 1],
            np.concatenate([g for g in groups if len(g) == 1] + [np.empty(0, dtype=int)]),
        )

    @property
    def single_rows(self) -> bool:
        """Whether every unit is one row (the rows are independent)."""
        return self.n_units == len(self.row_unit)

    def bootstrap(
        self, statistic: Callable[[np.ndarray], np.ndarray], resamples: int, seed: int, **options
    ) -> tuple[np.ndarray, tuple[float, float]]:
        """``scipy.stats.bootstrap`` of ``statistic`` (row weights -> one value per row of
        weights) over the strata: the bootstrap distribution and the interval (NaN when
        undefined). The same seed draws the same resamples."""

        def on_units(*drawn: np.ndarray, axis: int = -1) -> np.ndarray:
            lead = drawn[0].shape[:-1]
            counts = np.zeros((int(np.prod(lead)), self.n_units))
            counts[:, self.fixed] = 1
            for units in drawn:
                units = units.reshape(-1, units.shape[-1]).astype(np.intp)
                offsets = self.n_units * np.arange(len(units))[:, None]
                flat = np.bincount((units + offsets).ravel(), minlength=counts.size)
                counts += flat.reshape(counts.shape)
            return statistic(counts[:, self.row_unit]).reshape(lead)

        with warnings.catch_warnings(), np.errstate(invalid="ignore", divide="ignore"):
            warnings.simplefilter("ignore", stats.DegenerateDataWarning)  # NaN: reported as None
            result = stats.bootstrap(
                self.strata,
                on_units,
                n_resamples=resamples,
                batch=max(1, _BATCH_CELLS // len(self.row_unit)),
                vectorized=True,
                rng=np.random.default_rng(seed),
                **options,
            )
        low, high = result.confidence_interval
        return result.bootstrap_distribution, (float(low), float(high))


def _auc_defined(rows: _Rows) -> bool:
    return len(np.unique(rows.labels)) == rows.dist.shape[1]


def bootstrap_intervals(
    labels: np.ndarray,
    probs: np.ndarray,
    positive_class: int | None,
    *,
    units: np.ndarray | None = None,
    resamples: int = 2000,
    seed: int = 0,
    level: float = 0.95,
    method: str = "bca",
) -> dict[str, Interval | None]:
    """Bootstrap confidence intervals of accuracy, AUC, F1, macro F1 and Brier score.

    The metrics are those of :func:`~mammo_cli.evaluation.metrics.classification_metrics`.
    ``resamples`` stratified resamples of the ``units`` (one id per row; default: each row
    its own unit; see the module docstring) are drawn with ``numpy.random.default_rng(seed)``,
    the same draws for every metric, so the same inputs and seed give identical intervals.

    ``method``: ``"bca"`` (default) is Efron's bias-corrected and accelerated interval
    (acceleration from the jackknife over units); ``"percentile"`` takes the level's
    central quantiles of the bootstrap distribution. BCa is second-order accurate for
    smooth statistics, but accuracy and F1 are discrete and on small test sets take few
    values, so its bias correction jumps with ties and it can degenerate (see below).
    Measured with this code (95 %, 1000 resamples, 1000 draws of binormal scores with
    AUC 0.80): with 15 / 30 / 50 samples per class the percentile interval covered the
    true AUC in 92.4 / 92.8 / 95.2 % of the draws, BCa in 95.9 / 95.6 / 96.1 %; the
    accuracy (0.73, 30 per class) 92.9 % against 94.3 %. On a coarse discrete case
    (accuracy 0.8, 15 per class, every probability 0.3 or 0.7) BCa over-covered, 98.2 %
    against 95.4 %. BCa is the default: the percentile interval is too narrow on the
    small test sets of this field, and where BCa errs, it errs on the safe side.

    A value is ``None`` when there is nothing to compute: ``resamples == 0``, no stratum
    with two units, an AUC on a test set missing a class, or a BCa interval that is
    undefined (scipy's DegenerateDataWarning). A bootstrap distribution with a single
    value (e.g. an AUC of 1 in every resample) gives the interval (value, value).
    """
    intervals: dict[str, Interval | None] = dict.fromkeys(INTERVAL_METRICS)
    design = _Design.of(labels, units)
    if resamples == 0 or not design.strata:
        return intervals
    rows = _Rows.of(labels, probs, positive_class)
    for name in INTERVAL_METRICS:
        if name == "auc" and not _auc_defined(rows):
            continue
        distribution, (low, high) = design.bootstrap(
            lambda weights, name=name: rows.metric(name, weights),
            resamples,
            seed,
            confidence_level=level,
            method=method,
        )
        if np.ptp(distribution) == 0:
            low = high = float(distribution[0])
        intervals[name] = None if np.isnan(low) or np.isnan(high) else (low, high)
    return intervals


def delong_test(
    labels01: np.ndarray, scores_a: np.ndarray, scores_b: np.ndarray, level: float = 0.95
) -> dict[str, float | Interval]:
    """DeLong's test for the difference of two correlated ROC AUCs on the same samples.

    DeLong, DeLong & Clarke-Pearson (1988), with the midrank algorithm of Sun & Xu (2014).
    Each positive's structural component V10 is the share of negatives it outscores
    (ties half), each negative's V01 the share of positives that outscore it; an AUC is
    the mean of either. The variance of the difference d = AUC_b - AUC_a is
    var(V10_b - V10_a) / m + var(V01_b - V01_a) / n (m positives, n negatives, sample
    variances), z = d / se, the p-value two-sided from the normal distribution and
    ``ci`` = d -/+ z_(1+level)/2 se. Identical scores give d = 0, z = 0 and p = 1.
    Needs two or more samples of each class (``labels01``: 1 positive, 0 negative;
    higher scores mean positive).
    """
    positive = np.asarray(labels01).astype(bool)
    m, n = int(positive.sum()), int((~positive).sum())
    if min(m, n) < 2:
        raise ValueError(f"DeLong's test needs 2+ positives and negatives; got {m} and {n}")
    scores = np.stack([scores_a, scores_b]).astype(np.float64)
    x, y = scores[:, positive], scores[:, ~positive]
    ranks_all = stats.rankdata(np.concatenate([x, y], axis=1), axis=1)
    v10 = (ranks_all[:, :m] - stats.rankdata(x, axis=1)) / n
    v01 = 1 - (ranks_all[:, m:] - stats.rankdata(y, axis=1)) / m
    auc_a, auc_b = v10.mean(axis=1)
    difference = float(auc_b - auc_a)
    se = float(np.sqrt(np.var(v10[1] - v10[0], ddof=1) / m + np.var(v01[1] - v01[0], ddof=1) / n))
    if se > 0:
        z = difference / se
    else:  # no variability: the difference is exact
        z = 0.0 if difference == 0 else float(np.copysign(np.inf, difference))
    half_width = float(stats.norm.ppf((1 + level) / 2)) * se
    return {
        "auc_a": float(auc_a),
        "auc_b": float(auc_b),
        "difference": difference,
        "se": se,
        "z": z,
        "p_value": float(2 * stats.norm.sf(abs(z))),
        "ci": (difference - half_width, difference + half_width),
    }


def paired_difference(
    labels: np.ndarray,
    probs_a: np.ndarray,
    probs_b: np.ndarray,
    metric: str,
    positive_class: int | None,
    *,
    units: np.ndarray | None = None,
    resamples: int = 2000,
    seed: int = 0,
    level: float = 0.95,
) -> dict:
    """The difference b - a of ``metric`` between two runs scored on the same test samples,
    with its ``level`` interval and a two-sided p-value for "no difference".

    ``method`` in the result names the construction:

    - ``"delong"``: the AUC of a binary task whose units are single rows, with two or
      more samples of each class (DeLong's test, :func:`delong_test`, for the interval
      and p-value);
    - ``"mcnemar-exact+paired-bootstrap"``: accuracy with single-row units: McNemar's exact
      test (a binomial test of the discordant samples, those exactly one run classifies
      right) for the p-value, the paired bootstrap for the interval;
    - ``"paired-bootstrap"``: every other case (F1, macro F1, Brier, 3-class AUC, units
      of several rows): both runs are scored on the same stratified resamples of units
      (see :func:`bootstrap_intervals`); the interval is the percentile interval of the
      differences d*, the p-value inverts it: p = min(1, 2 min(P*(d* <= 0), P*(d* >= 0))),
      the smallest 1 - level whose percentile interval excludes 0.

    The DeLong and McNemar tests assume independent samples, hence the bootstrap when
    units hold several rows. Comparing a run with itself gives difference 0 and p = 1.
    ``ci`` and a bootstrap ``p_value`` are ``None`` when ``resamples == 0``; every
    number is ``None`` when the metric is undefined (an AUC on a test set missing a class).
    Keys: metric, a, b, difference, ci, p_value, method, n (test rows).
    """
    if metric not in INTERVAL_METRICS:
        raise ValueError(f"unknown metric {metric!r}; expected one of {INTERVAL_METRICS}")
    labels = np.asarray(labels)
    n_classes = np.shape(probs_a)[1]
    class_names = [str(c) for c in range(n_classes)]
    a = classification_metrics(labels, probs_a, class_names, positive_class)[metric]
    b = classification_metrics(labels, probs_b, class_names, positive_class)[metric]

    def result(ci: Interval | None, p_value: float | None, method: str | None) -> dict:
        difference = None if a is None or b is None else b - a
        return {
            "metric": metric,
            "a": a,
            "b": b,
            "difference": difference,
            "ci": ci,
            "p_value": p_value,
            "method": method,
            "n": len(labels),
        }

    if a is None or b is None:
        return result(None, None, None)
    design = _Design.of(labels, units)
    rows_a = _Rows.of(labels, probs_a, positive_class)
    rows_b = _Rows.of(labels, probs_b, positive_class)
    positive = 1 if positive_class is None else positive_class
    counts = np.bincount(labels, minlength=n_classes)
    if metric == "auc" and n_classes == 2 and design.single_rows and counts.min() >= 2:
        delong = delong_test(
            labels == positive, rows_a.dist[:, positive], rows_b.dist[:, positive], level
        )
        return result(delong["ci"], delong["p_value"], "delong")
    ci, p_value = None, None
    if resamples > 0 and design.strata:
        differences, ci = design.bootstrap(
            lambda w: rows_b.metric(metric, w) - rows_a.metric(metric, w),
            resamples,
            seed,
            confidence_level=level,
            method="percentile",
        )
        tail = min(np.mean(differences <= 0), np.mean(differences >= 0))
        p_value = float(min(1.0, 2 * tail))
    method = "paired-bootstrap"
    if metric == "accuracy" and design.single_rows:
        right_a = rows_a.predicted.argmax(axis=1) == labels
        right_b = rows_b.predicted.argmax(axis=1) == labels
        only_b, discordant = int(np.sum(right_b & ~right_a)), int(np.sum(right_a != right_b))
        p_value = float(stats.binomtest(only_b, discordant).pvalue) if discordant else 1.0
        method = "mcnemar-exact+paired-bootstrap"
    return result(ci, p_value, method)


def pool_splits(
    labels: Sequence[np.ndarray], probs: Sequence[np.ndarray], units: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The pooled rows of several splits' predictions of the same test set: labels,
    probabilities and units. A test sample's rows over all splits form one unit (its
    ``units`` id, default its index), so the pooled interval resamples test samples, not
    predictions."""
    if any(not np.array_equal(labels[0], other) for other in labels[1:]):
        raise ValueError("the splits did not predict the same test set")
    ids = np.arange(len(labels[0])) if units is None else np.asarray(units)
    return np.concatenate(labels), np.concatenate(probs), np.tile(ids, len(labels))
