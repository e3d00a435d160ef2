"""Realistic synthetic denial history that meets the data contract, labels included.

No public claim-level denial data exists, so the generator is a product feature: a latent true
root cause per denial produces the observed CARC/RARC codes through payer-specific habits, and
recovery and preventability follow from cause, payer behaviour (drifting over time), deadlines,
amounts and front-end flags. The parameters and their sources live in
:mod:`training.synthetic_world`. Output is deterministic for a seed and written in chunks so
memory stays bounded for millions of rows.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from features.adjustments import split_adjustment
from features.contract import COLUMNS, PAYER_TYPES, ROOT_CAUSES, TRUTH_COLUMNS, DenialWriter
from features.payer_rules import load_payer_rules
from training import synthetic_changes
from training import synthetic_world as world_params
from training.synthetic_world import CODE_OPTIONS, PROCEDURE_FAMILIES, SPECIALTIES

CHUNK_ROWS = 100_000  # fixed so that a seed gives the same table whatever the row count
BACKLOG_SHARE = 0.15  # assumption: about one denial in seven waits in a backlog
DEFAULT_END_DATE = dt.date(2026, 9, 30)
DEFAULT_MONTHS = 30
AUTH_FAMILIES = frozenset(
    {
        "advanced_imaging",
        "musculoskeletal_surgery",
        "cardiology",
        "physical_therapy",
        "behavioral_health",
        "durable_medical_equipment",
        "infused_drugs",
        "inpatient_stay",
    }
)
CORRECTION_CAUSES = frozenset(
    {"eligibility_registration", "coordination_of_benefits", "coding", "missing_invalid_claim_data"}
)


@dataclass(frozen=True)
class Payer:
    payer_id: str
    payer_type: str
    volume: float
    overturn_offset: float  # logit shift of recovery odds: the payer's appeal behaviour
    overturn_drift: float  # logit change across the covered period
    shift_at: float | None  # fraction of the period where behaviour steps, if it does
    shift_size: float
    remark_rate: float  # share of denials on which the payer sends its RARC
    generic_rate: float  # share of denials the payer reports with its catch-all code
    generic_code: str  # that catch-all code: CO-16 or CO-A1, whatever the cause


@dataclass(frozen=True)
class SyntheticWorld:
    """Everything fixed for a seed: payers and their habits, providers, the covered period."""

    payers: tuple[Payer, ...]
    code_habits: dict[str, np.ndarray]  # cause -> [payer, option] cumulative probabilities
    provider_npis: tuple[np.ndarray, ...]  # per specialty
    provider_facilities: tuple[np.ndarray, ...]
    specialty_effect: np.ndarray
    start: dt.date
    end: dt.date

    @property
    def days(self) -> int:
        return (self.end - self.start).days + 1


def build_world(
    seed: int, end: dt.date = DEFAULT_END_DATE, months: int = DEFAULT_MONTHS
) -> SyntheticWorld:
    """Draw the fixed parts of the world for a seed."""
    rng = np.random.default_rng([seed, 0])
    payers = _draw_payers(rng)
    habits = {cause: _draw_habits(rng, cause, len(payers)) for cause in ROOT_CAUSES}
    npis, facilities = _draw_providers(rng)
    start = (pd.Period(end, "M") - (months - 1)).start_time.date()
    return SyntheticWorld(
        payers=payers,
        code_habits=habits,
        provider_npis=npis,
        provider_facilities=facilities,
        specialty_effect=rng.normal(0.0, 0.25, len(SPECIALTIES)),
        start=start,
        end=end,
    )


def _draw_payers(rng: np.random.Generator) -> tuple[Payer, ...]:
    payers = []
    for payer_type in PAYER_TYPES:
        count, share = world_params.PAYER_TYPE_VOLUME[payer_type]
        volumes = rng.dirichlet(np.full(count, 2.0)) * share
        for number, volume in enumerate(volumes, start=1):
            shifts = rng.random() < 0.25
            payers.append(
                Payer(
                    payer_id=f"{world_params.PAYER_ID_PREFIX[payer_type]}{number:03d}",
                    payer_type=payer_type,
                    volume=float(volume),
                    overturn_offset=float(rng.normal(0.0, 0.7)),
                    overturn_drift=float(rng.normal(0.0, 0.5)),
                    shift_at=float(rng.uniform(0.3, 0.8)) if shifts else None,
                    shift_size=float(rng.choice([-1.0, 1.0]) * rng.uniform(0.5, 1.0)),
                    remark_rate=float(rng.uniform(0.3, 1.0)),
                    generic_rate=float(rng.beta(1.2, 3.0)),
                    generic_code=str(rng.choice(["CO-16", "CO-A1"], p=[0.7, 0.3])),
                )
            )
    return tuple(payers)


def _draw_habits(rng: np.random.Generator, cause: str, payer_count: int) -> np.ndarray:
    """Each payer's own way of coding a cause, drawn around the shared weights."""
    weights = np.array([weight for *_, weight in CODE_OPTIONS[cause]])
    concentration = 0.6 * weights / weights.sum() * len(weights)
    habits = rng.dirichlet(concentration, size=payer_count)
    return np.cumsum(habits, axis=1)


def _draw_providers(
    rng: np.random.Generator,
) -> tuple[tuple[np.ndarray, ...], tuple[np.ndarray, ...]]:
    npis, facilities = [], []
    for specialty in SPECIALTIES:
        count = max(3, int(specialty.volume * 400))
        bases = 100_000_000 + rng.choice(100_000_000, size=count, replace=False)
        npis.append(np.array([_npi_with_check_digit(int(base)) for base in bases]))
        facilities.append(rng.integers(1, 13, size=count))
    return tuple(npis), tuple(facilities)


def _npi_with_check_digit(base: int) -> str:
    """A 10-digit NPI: nine digits plus the Luhn check digit over the 80840 prefix (CMS rule)."""
    digits = [int(d) for d in f"80840{base:09d}"]
    total = 0
    for position, digit in enumerate(reversed(digits)):
        doubled = digit * 2 if position % 2 == 0 else digit
        total += doubled - 9 if doubled > 9 else doubled
    return f"{base:09d}{(10 - total % 10) % 10}"


# ---------------------------------------------------------------------------- sampling


def sample_chunk(world: SyntheticWorld, rows: int, seed: int, chunk_index: int) -> pd.DataFrame:
    """One chunk of history; row ``i`` of chunk ``k`` is denial number ``k * CHUNK_ROWS + i``."""
    return sample_chunk_with_truth(world, rows, seed, chunk_index)[0]


def sample_chunk_with_truth(
    world: SyntheticWorld, rows: int, seed: int, chunk_index: int
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """One chunk of history, and what the generator knows of each of its denials
    (``denial_id`` and :data:`~features.contract.TRUTH_COLUMNS`): the same rows either way."""
    rng = np.random.default_rng([seed, chunk_index + 1])
    draw = _Draw(world, rng, rows)
    first_id = chunk_index * CHUNK_ROWS
    frame = pd.DataFrame({"denial_id": [f"D{first_id + i:09d}" for i in range(rows)]})
    for step in _STEPS:
        step(draw, frame)
    frame["true_root_cause"] = np.array(ROOT_CAUSES)[frame["_cause"].to_numpy()]
    return frame[[c.name for c in COLUMNS]], frame[["denial_id", *TRUTH_COLUMNS]]


class _Draw:
    """Shared state while sampling one chunk."""

    def __init__(self, world: SyntheticWorld, rng: np.random.Generator, rows: int) -> None:
        self.world = world
        self.rng = rng
        self.rows = rows
        self.rules = load_payer_rules()


def _sample_payer_and_dates(draw: _Draw, frame: pd.DataFrame) -> None:
    world, rng = draw.world, draw.rng
    volumes = np.array([p.volume for p in world.payers])
    payer = rng.choice(len(world.payers), size=draw.rows, p=volumes / volumes.sum())
    frame["_payer"] = payer
    frame["payer_id"] = np.array([p.payer_id for p in world.payers])[payer]
    frame["payer_type"] = np.array([p.payer_type for p in world.payers])[payer]
    days = np.minimum((_rising_position(rng, draw.rows) * world.days).astype(int), world.days - 1)
    frame["denial_date"] = np.datetime64(world.start, "D") + days.astype("timedelta64[D]")
    frame["_period_position"] = days / max(world.days - 1, 1)


def _rising_position(rng: np.random.Generator, rows: int, growth: float = 0.15) -> np.ndarray:
    """Positions in [0, 1) on a density rising by ``growth`` across the period: denial volume
    grows year on year (assumption), by inverting the linear density's distribution function."""
    u = rng.random(rows)
    return (np.sqrt(1.0 + 2.0 * growth * u * (1.0 + growth / 2.0)) - 1.0) / growth


def _sample_specialty_and_procedure(draw: _Draw, frame: pd.DataFrame) -> None:
    rng = draw.rng
    volumes = np.array([s.volume for s in SPECIALTIES])
    specialty = rng.choice(len(SPECIALTIES), size=draw.rows, p=volumes / volumes.sum())
    family = np.empty(draw.rows, dtype=int)
    for index, spec in enumerate(SPECIALTIES):
        rows = np.flatnonzero(specialty == index)
        names, weights = zip(*spec.families, strict=True)
        choices = [world_params.FAMILY_INDEX[name] for name in names]
        family[rows] = rng.choice(choices, size=len(rows), p=np.array(weights) / sum(weights))
    frame["_specialty"] = specialty
    frame["_family"] = family
    frame["specialty"] = np.array([s.name for s in SPECIALTIES])[specialty]
    frame["claim_type"] = np.where(
        np.array([s.institutional for s in SPECIALTIES])[specialty], "institutional", "professional"
    )


def _sample_root_cause(draw: _Draw, frame: pd.DataFrame) -> None:
    """True cause from payer type, procedure family and season."""
    base = np.array([world_params.BASE_ROOT_CAUSE_MIX[c] for c in ROOT_CAUSES])
    type_lift = np.array(
        [
            [world_params.PAYER_TYPE_CAUSE_LIFT[t].get(c, 1.0) for c in ROOT_CAUSES]
            for t in PAYER_TYPES
        ]
    )
    family_lift = np.array(
        [[dict(f.cause_lift).get(c, 1.0) for c in ROOT_CAUSES] for f in PROCEDURE_FAMILIES]
    )
    type_index = pd.Categorical(frame["payer_type"], categories=PAYER_TYPES).codes
    weights = base * type_lift[type_index] * family_lift[frame["_family"].to_numpy()]
    # New plan years bring a wave of eligibility denials in January and February (assumption).
    new_plan_year = pd.DatetimeIndex(frame["denial_date"]).month.isin([1, 2])
    weights[new_plan_year, ROOT_CAUSES.index("eligibility_registration")] *= 1.6
    frame["_cause"] = _categorical_draw(draw.rng, weights)


def _categorical_draw(rng: np.random.Generator, weights: np.ndarray) -> np.ndarray:
    cumulative = np.cumsum(weights / weights.sum(axis=1, keepdims=True), axis=1)
    return (rng.random((len(weights), 1)) > cumulative).sum(axis=1).clip(0, weights.shape[1] - 1)


def _sample_front_end_flags(draw: _Draw, frame: pd.DataFrame) -> None:
    rng, cause = draw.rng, frame["_cause"].to_numpy()
    eligibility = cause == ROOT_CAUSES.index("eligibility_registration")
    verified = rng.random(draw.rows) < np.where(eligibility, 0.35, 0.9)
    needs_auth = np.isin(frame["_family"], [world_params.FAMILY_INDEX[f] for f in AUTH_FAMILIES])
    auth_cause = cause == ROOT_CAUSES.index("authorization_referral")
    on_file_rate = np.where(
        needs_auth, np.where(auth_cause, 0.3, 0.92), np.where(auth_cause, 0.1, 0.35)
    )
    on_file = rng.random(draw.rows) < on_file_rate
    # Some sources do not send front-end flags at all; absence is allowed by the contract.
    frame["eligibility_verified"] = _with_missing(rng, verified, 0.08)
    frame["prior_auth_on_file"] = _with_missing(rng, on_file, 0.08)


def _with_missing(rng: np.random.Generator, values: np.ndarray, missing_rate: float) -> pd.Series:
    series = pd.Series(values, dtype="boolean")
    series[rng.random(len(values)) < missing_rate] = pd.NA
    return series


def _sample_codes(draw: _Draw, frame: pd.DataFrame) -> None:
    """Observed adjustments and remarks through each payer's coding habits."""
    rng, world = draw.rng, draw.world
    cause, payer = frame["_cause"].to_numpy(), frame["_payer"].to_numpy()
    # Occasionally a payer reports with a code from a different family altogether (noise).
    reported_cause = np.where(rng.random(draw.rows) < 0.06, rng.integers(0, 10, draw.rows), cause)
    adjustments: list[list[str]] = [[] for _ in range(draw.rows)]
    remarks: list[list[str]] = [[] for _ in range(draw.rows)]
    remark_rate = np.array([p.remark_rate for p in world.payers])[payer]
    sends_remark = rng.random(draw.rows) < remark_rate
    # Many payers report a share of denials with a catch-all code whatever the cause, keeping
    # only the remark to say why (domain.md: CO-16 serves registration, coding, documentation).
    generic_rate = np.array([p.generic_rate for p in world.payers])[payer]
    generic_code = np.array([p.generic_code for p in world.payers])[payer]
    catch_all = rng.random(draw.rows) < generic_rate
    for index, name in enumerate(ROOT_CAUSES):
        rows = np.flatnonzero(reported_cause == index)
        habits = world.code_habits[name][payer[rows]]
        option = (rng.random((len(rows), 1)) > habits).sum(axis=1).clip(0, habits.shape[1] - 1)
        for row, choice in zip(rows, option, strict=True):
            carcs, rarcs, _ = CODE_OPTIONS[name][choice]
            adjustments[row] = [generic_code[row]] if catch_all[row] else list(carcs)
            remarks[row] = list(rarcs) if sends_remark[row] else []
    _add_secondary_adjustments(rng, adjustments)
    frame["carc_codes"] = adjustments
    frame["rarc_codes"] = remarks


def _add_secondary_adjustments(rng: np.random.Generator, adjustments: list[list[str]]) -> None:
    """Routine reductions sometimes ride along after the primary adjustment."""
    extras = world_params.SECONDARY_ADJUSTMENTS
    riders = np.flatnonzero(rng.random(len(adjustments)) < 0.2)
    picks = rng.integers(0, len(extras), len(riders))
    for row, pick in zip(riders, picks, strict=True):
        if extras[pick] not in adjustments[row]:
            adjustments[row].append(extras[pick])


def _sample_dates(draw: _Draw, frame: pd.DataFrame) -> None:
    """Service, submission and triage dates around the denial; late filing for timely filing."""
    rng = draw.rng
    cause = frame["_cause"].to_numpy()
    filing_days = np.array(
        [draw.rules.by_payer_type[t]["timely_filing"].days for t in PAYER_TYPES]
    )[pd.Categorical(frame["payer_type"], categories=PAYER_TYPES).codes]
    submit_lag = np.minimum(rng.lognormal(np.log(6.0), 0.9, draw.rows), filing_days * 0.8)
    late = cause == ROOT_CAUSES.index("timely_filing")
    submit_lag[late] = filing_days[late] + rng.gamma(2.0, 15.0, late.sum())
    adjudication_lag = 7 + rng.gamma(2.0, 8.0, draw.rows)
    denial = frame["denial_date"].to_numpy().astype("datetime64[D]")
    submission = denial - adjudication_lag.astype(int).astype("timedelta64[D]")
    service = submission - submit_lag.astype(int).astype("timedelta64[D]")
    # Most denials are triaged within days; a backlog share waits for months (the widely
    # repeated "most denials are never reworked" figure, domain.md section 4), often past the
    # appeal window.
    backlog = rng.random(draw.rows) < BACKLOG_SHARE
    queue_delay = np.where(
        backlog, rng.uniform(20, 240, draw.rows), rng.gamma(1.5, 4.0, draw.rows)
    ).astype(int)
    appeal_days = np.array([draw.rules.by_payer_type[t]["appeal"].days for t in PAYER_TYPES])[
        pd.Categorical(frame["payer_type"], categories=PAYER_TYPES).codes
    ]
    frame["_appeal_expired"] = queue_delay > appeal_days
    frame["service_date"] = service
    frame["submission_date"] = submission
    frame["as_of_date"] = denial + queue_delay.astype("timedelta64[D]")
    frame["_filing_slack"] = (service + filing_days.astype("timedelta64[D]") - denial).astype(int)
    frame["_queue_delay"] = queue_delay
    duplicate = cause == ROOT_CAUSES.index("duplicate")
    attempt = np.where(rng.random(draw.rows) < 0.88, 1, np.where(rng.random(draw.rows) < 0.8, 2, 3))
    frame["submission_attempt"] = np.where(
        duplicate & (rng.random(draw.rows) < 0.8), attempt + 1, attempt
    )


def _sample_service_detail(draw: _Draw, frame: pd.DataFrame) -> None:
    rng = draw.rng
    family, specialty = frame["_family"].to_numpy(), frame["_specialty"].to_numpy()
    coding = frame["_cause"].to_numpy() == ROOT_CAUSES.index("coding")
    with_modifier = rng.random(draw.rows) < np.where(coding, 0.7, 0.3)  # miscoded modifiers
    frame["procedure_code"] = _pick_per_group(rng, family, [f.codes for f in PROCEDURE_FAMILIES])
    modifier = _pick_per_group(rng, family, [f.modifiers or ("",) for f in PROCEDURE_FAMILIES])
    frame["modifiers"] = [
        [m] if use and m else [] for m, use in zip(modifier, with_modifier, strict=True)
    ]
    low, high = np.array([f.units for f in PROCEDURE_FAMILIES]).T
    frame["units"] = rng.integers(low[family], high[family] + 1)
    frame["place_of_service"] = _pick_per_group(rng, specialty, [s.places for s in SPECIALTIES])
    provider = np.floor(
        rng.random(draw.rows) * [len(draw.world.provider_npis[s]) for s in specialty]
    ).astype(int)
    frame["provider_npi"] = [
        draw.world.provider_npis[s][p] for s, p in zip(specialty, provider, strict=True)
    ]
    frame["facility_id"] = [
        f"FAC{draw.world.provider_facilities[s][p]:02d}"
        for s, p in zip(specialty, provider, strict=True)
    ]
    frame["diagnosis_codes"] = _sample_diagnoses(rng, frame["_cause"].to_numpy())


def _pick_per_group(
    rng: np.random.Generator, group: np.ndarray, choices: list[tuple[str, ...]]
) -> np.ndarray:
    """For each row, a uniform pick among the choices of its group."""
    width = max(len(c) for c in choices)
    table = np.array([list(c) + [c[0]] * (width - len(c)) for c in choices], dtype=object)
    sizes = np.array([len(c) for c in choices])[group]
    return table[group, np.floor(rng.random(len(group)) * sizes).astype(int)]


def _sample_diagnoses(rng: np.random.Generator, cause: np.ndarray) -> list[list[str]]:
    necessity = cause == ROOT_CAUSES.index("medical_necessity_documentation")
    weak_primary = rng.random(len(cause)) < np.where(necessity, 0.6, 0.15)
    counts = rng.integers(1, 4, len(cause))
    specific, weak = world_params.SPECIFIC_DIAGNOSES, world_params.WEAK_DIAGNOSES
    primary = np.where(
        weak_primary,
        np.array(weak)[rng.integers(0, len(weak), len(cause))],
        np.array(specific)[rng.integers(0, len(specific), len(cause))],
    )
    others = np.array(specific)[rng.integers(0, len(specific), (len(cause), 2))]
    return [[p, *extra[: n - 1]] for p, extra, n in zip(primary, others, counts, strict=True)]


def _sample_amounts(draw: _Draw, frame: pd.DataFrame) -> None:
    rng = draw.rng
    family = frame["_family"].to_numpy()
    median = np.array([f.median_charge for f in PROCEDURE_FAMILIES])[family]
    spread = np.array([f.charge_spread for f in PROCEDURE_FAMILIES])[family]
    units = frame["units"].to_numpy()
    billed = np.round(rng.lognormal(np.log(median), spread) * np.sqrt(units), 2).clip(5.0)
    pricing = frame["_cause"].to_numpy() == ROOT_CAUSES.index("payer_error_pricing")
    denied_share = np.where(pricing, rng.uniform(0.15, 0.7, draw.rows), 1.0)
    denied = np.round(billed * denied_share, 2).clip(0.01)
    frame["billed_amount"] = billed
    frame["denied_amount"] = denied
    frame["paid_amount"] = np.round(billed - denied, 2)
    frame["_log_charge_ratio"] = np.log(billed / median)


def _sample_outcomes(draw: _Draw, frame: pd.DataFrame) -> None:
    """Recovery, preventability and resolution from the latent cause and circumstances."""
    rng = draw.rng
    cause = frame["_cause"].to_numpy()
    probability = _recovery_probability(draw, frame)
    recovered = rng.random(draw.rows) < probability
    full = np.array([world_params.FULL_RECOVERY_SHARE[c] for c in ROOT_CAUSES])[cause]
    share = np.where(rng.random(draw.rows) < full, 1.0, rng.beta(2.5, 2.0, draw.rows))
    resolution = _resolution(rng, frame, recovered)
    mean_days = pd.Series(resolution).map(world_params.MEAN_DAYS_TO_RESOLVE).to_numpy()
    # Work starts when the denial is triaged, so its outcome comes after the queue delay.
    lag = frame["_queue_delay"].to_numpy() + rng.gamma(2.0, mean_days / 2.0).astype(int) + 1
    resolved = frame["denial_date"].to_numpy().astype("datetime64[D]") + lag.astype(
        "timedelta64[D]"
    )
    still_open = resolved > np.datetime64(draw.world.end, "D")
    frame["root_cause"] = _noisy_labels(rng, cause)
    frame["preventable"] = _preventable(rng, frame)
    frame["true_recovery_probability"] = probability
    frame["true_recovered"] = recovered
    frame["resolution"] = np.where(still_open, "open", resolution)
    amount = np.round(frame["denied_amount"].to_numpy() * share * recovered, 2)
    frame["recovered_amount"] = pd.Series(np.where(still_open, np.nan, amount), dtype="float64")
    frame["resolved_date"] = pd.Series(resolved).where(~still_open).to_numpy()


def _recovery_probability(draw: _Draw, frame: pd.DataFrame) -> np.ndarray:
    world, rng = draw.world, draw.rng
    cause = frame["_cause"].to_numpy()
    base = np.array([world_params.RECOVERY_BASE_PROBABILITY[c] for c in ROOT_CAUSES])[cause]
    logit = np.log(base / (1 - base))
    logit += _payer_behaviour(
        world, frame["_payer"].to_numpy(), frame["_period_position"].to_numpy()
    )
    logit += world.specialty_effect[frame["_specialty"].to_numpy()]
    logit += 0.2 * frame["_log_charge_ratio"].to_numpy()  # bigger claims get worked harder
    logit -= 0.01 * np.minimum(frame["_queue_delay"].to_numpy(), 60)  # stale denials recover less
    by_appeal = np.isin(cause, [ROOT_CAUSES.index(c) for c in world_params.APPEAL_CAUSES])
    logit -= 2.0 * (by_appeal & frame["_appeal_expired"].to_numpy())  # too late to appeal
    slack = frame["_filing_slack"].to_numpy() - frame["_queue_delay"].to_numpy()
    needs_refile = np.isin(cause, [ROOT_CAUSES.index(c) for c in CORRECTION_CAUSES])
    logit -= np.where(
        needs_refile & (slack < 0), 2.5, np.where(needs_refile & (slack < 30), 1.0, 0.0)
    )
    logit -= 0.5 * (frame["submission_attempt"].to_numpy() > 1)
    auth_on_file = frame["prior_auth_on_file"].fillna(False).to_numpy(dtype=bool)
    logit += 1.2 * (auth_on_file & (cause == ROOT_CAUSES.index("authorization_referral")))
    verified = frame["eligibility_verified"].fillna(False).to_numpy(dtype=bool)
    logit += 0.8 * (verified & (cause == ROOT_CAUSES.index("eligibility_registration")))
    weak_diagnosis = np.isin(
        [codes[0] for codes in frame["diagnosis_codes"]], world_params.WEAK_DIAGNOSES
    )
    necessity = cause == ROOT_CAUSES.index("medical_necessity_documentation")
    logit -= 0.7 * (weak_diagnosis & necessity)
    logit += rng.normal(0.0, 0.5, draw.rows)  # documentation quality nobody records
    return 1.0 / (1.0 + np.exp(-logit))


def _payer_behaviour(world: SyntheticWorld, payer: np.ndarray, position: np.ndarray) -> np.ndarray:
    """Each payer's overturn propensity, drifting over the period, some with a step change."""
    offset = np.array([p.overturn_offset for p in world.payers])[payer]
    drift = np.array([p.overturn_drift for p in world.payers])[payer]
    shift_at = np.array([p.shift_at if p.shift_at is not None else 2.0 for p in world.payers])[
        payer
    ]
    shift = np.array([p.shift_size for p in world.payers])[payer]
    return offset + drift * (position - 0.5) + np.where(position >= shift_at, shift, 0.0)


def _resolution(rng: np.random.Generator, frame: pd.DataFrame, recovered: np.ndarray) -> np.ndarray:
    cause = frame["_cause"].to_numpy()
    by_appeal = np.isin(cause, [ROOT_CAUSES.index(c) for c in world_params.APPEAL_CAUSES])
    appealed = np.where(by_appeal, rng.random(len(cause)) < 0.85, rng.random(len(cause)) < 0.15)
    patient_group = np.array(
        [split_adjustment(codes[0])[0] == "PR" for codes in frame["carc_codes"]]
    )
    patient_cause = np.isin(
        cause,
        [ROOT_CAUSES.index("non_covered_service"), ROOT_CAUSES.index("eligibility_registration")],
    )
    to_patient = patient_group | (patient_cause & (rng.random(len(cause)) < 0.3))
    unrecovered = np.where(to_patient, "billed_to_patient", "written_off")
    recovered_how = np.where(appealed, "overturned_on_appeal", "paid_after_correction")
    return np.where(recovered, recovered_how, unrecovered)


def _noisy_labels(rng: np.random.Generator, cause: np.ndarray) -> np.ndarray:
    flip = rng.random(len(cause)) < world_params.ROOT_CAUSE_LABEL_NOISE
    labels = np.where(flip, rng.integers(0, len(ROOT_CAUSES), len(cause)), cause)
    return np.array(ROOT_CAUSES)[labels]


def _preventable(rng: np.random.Generator, frame: pd.DataFrame) -> np.ndarray:
    cause = frame["_cause"].to_numpy()
    table = np.array([world_params.PREVENTABLE_PROBABILITY[c] for c in ROOT_CAUSES])
    flag = np.where(
        cause == ROOT_CAUSES.index("authorization_referral"),
        frame["prior_auth_on_file"].fillna(False).to_numpy(dtype=bool),
        frame["eligibility_verified"].fillna(True).to_numpy(dtype=bool),
    )
    probability = table[cause, flag.astype(int)]
    preventable = rng.random(len(cause)) < probability
    noise = world_params.PREVENTABLE_LABEL_NOISE
    flip = rng.random(len(cause)) < noise
    # The label is the flag flipped with the noise's probability, so this is its probability.
    frame["true_preventable_probability"] = probability * (1 - noise) + (1 - probability) * noise
    return preventable ^ flip


def _sample_claim_ids(draw: _Draw, frame: pd.DataFrame) -> None:
    frame["claim_id"] = [f"C{n:010d}" for n in draw.rng.integers(0, 10**10, draw.rows)]


_STEPS: tuple[Callable[[_Draw, pd.DataFrame], None], ...] = (
    _sample_payer_and_dates,
    _sample_specialty_and_procedure,
    _sample_root_cause,
    _sample_front_end_flags,
    _sample_codes,
    _sample_dates,
    _sample_service_detail,
    _sample_amounts,
    _sample_outcomes,
    _sample_claim_ids,
)


# ---------------------------------------------------------------------------- writing


def generate_history(
    rows: int,
    seed: int,
    out: Path,
    *,
    end: dt.date = DEFAULT_END_DATE,
    months: int = DEFAULT_MONTHS,
    on_chunk: Callable[[int], None] | None = None,
    truth_out: Path | None = None,
    payer_changes: int = 0,
    changes_out: Path | None = None,
    overturn_changes: int = 0,
) -> Path:
    """Write ``rows`` denials to ``out`` (Parquet or CSV), chunk by chunk; with ``truth_out``,
    the generator's truth of each denial to that separate Parquet file (benchmarks only: a
    contract file holding it is refused, see :data:`features.contract.TRUTH_COLUMNS`).

    With ``payer_changes``, that many payer behaviour changes are injected
    (:mod:`training.synthetic_changes`: their extra denials come on top of ``rows``); with
    ``overturn_changes``, that many cells' recovered shares fall from an onset (nothing else
    changes); with ``changes_out``, both are recorded there as CSV."""
    world = build_world(seed, end, months)
    truth = []
    injection = _ChangeInjection(world, seed, payer_changes, rows, overturn_changes)
    with DenialWriter(out) as writer:
        for chunk_index, start in enumerate(range(0, rows, CHUNK_ROWS)):
            size = min(CHUNK_ROWS, rows - start)
            chunk, chunk_truth = sample_chunk_with_truth(world, size, seed, chunk_index)
            chunk, chunk_truth = injection.apply(chunk, chunk_truth)
            writer.write(chunk)
            if truth_out is not None:
                truth.append(chunk_truth)
            if on_chunk is not None:
                on_chunk(size)
    if truth_out is not None:
        write_truth(pd.concat(truth, ignore_index=True), truth_out)
    if changes_out is not None and injection.changes:
        synthetic_changes.write_changes_truth(injection.changes, changes_out)
    return out


class _ChangeInjection:
    """Payer changes chosen on the first chunk (every chunk samples the same world), then
    injected into each chunk; the extra denials are numbered after the ``rows`` asked for."""

    def __init__(
        self, world: SyntheticWorld, seed: int, count: int, rows: int, overturns: int = 0
    ) -> None:
        self.world = world
        self.count = count
        self.overturns = overturns
        self.rows = rows
        self.rng = np.random.default_rng([seed, 17])  # a stream of its own: history unchanged
        # Another for outcome changes: the volume changes stay as they were without them.
        self.overturn_rng = np.random.default_rng([seed, 18])
        self.changes: list[synthetic_changes.PayerChange] = []
        self.added = 0

    def _choose(self, chunk: pd.DataFrame) -> list[synthetic_changes.PayerChange]:
        where = {"start": self.world.start, "end": self.world.end, "scale": self.rows / len(chunk)}
        volume = synthetic_changes.choose_changes(chunk, self.count, self.rng, **where)
        overturn = synthetic_changes.choose_changes(
            chunk,
            self.overturns,
            self.overturn_rng,
            **where,
            kind=synthetic_changes.OVERTURN,
            taken=[change.cell for change in volume],
        )
        return volume + overturn

    def apply(self, chunk: pd.DataFrame, truth: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
        if self.count == 0 and self.overturns == 0:
            return chunk, truth
        if not self.changes:
            self.changes = self._choose(chunk)
        chunk, truth = synthetic_changes.lower_recovery(
            chunk, truth, self.changes, self.overturn_rng
        )
        copies, sources = synthetic_changes.inject_changes(
            chunk, self.changes, self.rng, first_id=self.rows + self.added, end=self.world.end
        )
        copied_truth = truth.iloc[sources].reset_index(drop=True)
        copied_truth["denial_id"] = copies["denial_id"].to_numpy()
        self.added += len(copies)
        return (
            pd.concat([chunk, copies], ignore_index=True),
            pd.concat([truth, copied_truth], ignore_index=True),
        )


def write_truth(truth: pd.DataFrame, path: Path) -> Path:
    """The truth table as Parquet (its probabilities must not round through text)."""
    if path.suffix.lower() != ".parquet":
        raise ValueError(f"{path}: the truth file is written as .parquet")
    path.parent.mkdir(parents=True, exist_ok=True)
    truth.to_parquet(path, index=False)
    return path


def default_truth_path(history: Path) -> Path:
    """Where ``generate --with-truth`` writes the truth of ``history``: beside it."""
    return history.with_name(f"{history.stem}.truth.parquet")
