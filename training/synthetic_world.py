"""Parameters of the synthetic denial world, each grounded where a public figure exists.

Sources are cited by the short names used in ``../shared/docs/domain.md`` section 4 (Change
Healthcare denial index, Premier, KFF, Experian). Where no public figure exists the value is a
modelling assumption and says so. The generator in :mod:`training.synthetic` samples from these.
"""

from __future__ import annotations

from dataclasses import dataclass

from features.contract import ROOT_CAUSES

# Base mix of true root causes. Change Healthcare 2017/2020: registration/eligibility 24-27%,
# missing or invalid claim data ~15%, authorization ~12%; the rest split by assumption, with
# medical necessity and non-covered near the KFF 2023 shares (6% and 16% of a different base).
BASE_ROOT_CAUSE_MIX = {
    "eligibility_registration": 0.24,
    "coordination_of_benefits": 0.06,
    "authorization_referral": 0.13,
    "coding": 0.10,
    "medical_necessity_documentation": 0.11,
    "missing_invalid_claim_data": 0.15,
    "timely_filing": 0.05,
    "duplicate": 0.05,
    "non_covered_service": 0.07,
    "payer_error_pricing": 0.04,
}

# Multipliers on the base mix by payer type (assumption, shaped by the public picture:
# Medicare Advantage and managed Medicaid deny more on authorization, Premier/KFF; Medicaid churn
# drives eligibility; Medicare fee-for-service applies coverage determinations, hence necessity).
PAYER_TYPE_CAUSE_LIFT: dict[str, dict[str, float]] = {
    "medicare": {
        "authorization_referral": 0.3,
        "medical_necessity_documentation": 1.8,
        "timely_filing": 1.3,
        "eligibility_registration": 0.6,
    },
    "medicare_advantage": {"authorization_referral": 1.8, "medical_necessity_documentation": 1.3},
    "medicaid": {"eligibility_registration": 1.6, "coordination_of_benefits": 1.5},
    "medicaid_managed_care": {"eligibility_registration": 1.5, "authorization_referral": 1.5},
    "commercial": {"coordination_of_benefits": 1.2, "payer_error_pricing": 1.3},
    "workers_comp": {
        "coordination_of_benefits": 2.5,
        "authorization_referral": 1.6,
        "eligibility_registration": 0.5,
    },
    "other": {},
}

# Payers per type: (count, share of denial volume). Commercial plans dominate volume at most
# providers; the split is an assumption.
PAYER_TYPE_VOLUME = {
    "medicare": (2, 0.20),
    "medicare_advantage": (7, 0.18),
    "medicaid": (3, 0.10),
    "medicaid_managed_care": (6, 0.14),
    "commercial": (16, 0.30),
    "workers_comp": (4, 0.04),
    "other": (4, 0.04),
}
PAYER_ID_PREFIX = {
    "medicare": "MCR",
    "medicare_advantage": "MA",
    "medicaid": "MCD",
    "medicaid_managed_care": "MMC",
    "commercial": "COM",
    "workers_comp": "WC",
    "other": "OTH",
}


@dataclass(frozen=True)
class ProcedureFamily:
    """A group of procedure codes with its charge level and how it draws each root cause."""

    name: str
    codes: tuple[str, ...]
    median_charge: float  # assumption, order of magnitude of typical list charges
    charge_spread: float  # lognormal sigma
    modifiers: tuple[str, ...] = ()
    units: tuple[int, int] = (1, 1)
    cause_lift: tuple[tuple[str, float], ...] = ()


PROCEDURE_FAMILIES: tuple[ProcedureFamily, ...] = (
    ProcedureFamily(
        "evaluation_management",
        ("99203", "99204", "99213", "99214", "99215"),
        220,
        0.4,
        ("25",),
        cause_lift=(("coding", 1.8), ("eligibility_registration", 1.3)),
    ),
    ProcedureFamily(
        "preventive",
        ("99385", "99386", "99395", "99396", "G0439"),
        260,
        0.3,
        (),
        cause_lift=(("non_covered_service", 3.0), ("coding", 1.3)),
    ),
    ProcedureFamily(
        "advanced_imaging",
        ("70450", "70553", "72148", "74177", "71250", "78452"),
        1400,
        0.6,
        ("26", "TC"),
        cause_lift=(("authorization_referral", 3.2), ("medical_necessity_documentation", 1.5)),
    ),
    ProcedureFamily(
        "musculoskeletal_surgery",
        ("27447", "29881", "23472", "63030", "27130"),
        9000,
        0.7,
        ("LT", "RT", "59"),
        cause_lift=(("authorization_referral", 2.8), ("coding", 1.4), ("payer_error_pricing", 2.0)),
    ),
    ProcedureFamily(
        "cardiology",
        ("93306", "93458", "92928", "93000", "93350"),
        1800,
        0.9,
        ("26",),
        cause_lift=(("authorization_referral", 1.8), ("medical_necessity_documentation", 1.6)),
    ),
    ProcedureFamily(
        "laboratory",
        ("80053", "85025", "87635", "81003", "83036", "84443"),
        95,
        0.6,
        ("QW", "90"),
        cause_lift=(
            ("medical_necessity_documentation", 2.2),
            ("missing_invalid_claim_data", 1.6),
            ("non_covered_service", 1.5),
        ),
    ),
    ProcedureFamily(
        "physical_therapy",
        ("97110", "97140", "97530", "97161", "97112"),
        160,
        0.4,
        ("GP", "59", "KX"),
        (2, 6),
        cause_lift=(("authorization_referral", 2.0), ("medical_necessity_documentation", 1.8)),
    ),
    ProcedureFamily(
        "behavioral_health",
        ("90834", "90837", "90791", "90853", "H0031"),
        210,
        0.4,
        ("HJ",),
        cause_lift=(("authorization_referral", 2.2), ("eligibility_registration", 1.3)),
    ),
    ProcedureFamily(
        "anesthesia",
        ("00790", "01402", "00840", "01480"),
        1300,
        0.5,
        ("AA", "QK"),
        (4, 16),
        cause_lift=(("coding", 1.6), ("payer_error_pricing", 1.8)),
    ),
    ProcedureFamily(
        "gastroenterology",
        ("45378", "43239", "45385", "45380"),
        2200,
        0.5,
        ("PT", "33"),
        cause_lift=(("non_covered_service", 1.5), ("authorization_referral", 1.4), ("coding", 1.3)),
    ),
    ProcedureFamily(
        "durable_medical_equipment",
        ("E0601", "K0001", "E1390", "L1833"),
        750,
        0.6,
        ("NU", "RR", "KX"),
        cause_lift=(("authorization_referral", 2.0), ("medical_necessity_documentation", 2.0)),
    ),
    ProcedureFamily(
        "infused_drugs",
        ("J9299", "J0897", "J1745", "J2505", "J9271"),
        4200,
        0.8,
        ("JZ",),
        (1, 40),
        cause_lift=(("authorization_referral", 3.0), ("non_covered_service", 1.4)),
    ),
    ProcedureFamily(
        "emergency",
        ("99283", "99284", "99285", "99291"),
        1100,
        0.5,
        ("25",),
        cause_lift=(
            ("eligibility_registration", 1.8),
            ("coordination_of_benefits", 1.4),
            ("authorization_referral", 0.2),
        ),
    ),
    ProcedureFamily(
        "inpatient_stay",
        ("0120", "0110", "0200", "0206"),
        26000,
        0.7,
        (),
        (2, 9),
        cause_lift=(
            ("authorization_referral", 2.0),
            ("medical_necessity_documentation", 1.8),
            ("payer_error_pricing", 1.5),
        ),
    ),
    ProcedureFamily(
        "outpatient_facility",
        ("0450", "0360", "0320", "0510"),
        3100,
        0.7,
        (),
        cause_lift=(("missing_invalid_claim_data", 1.4), ("coding", 1.2)),
    ),
    ProcedureFamily(
        "ambulance",
        ("A0427", "A0429", "A0425", "A0433"),
        900,
        0.4,
        ("RH", "SH"),
        (1, 30),
        cause_lift=(("medical_necessity_documentation", 1.8), ("coordination_of_benefits", 1.3)),
    ),
)
FAMILY_INDEX = {family.name: i for i, family in enumerate(PROCEDURE_FAMILIES)}


@dataclass(frozen=True)
class Specialty:
    """A provider specialty: its procedure mix, claim type and places of service."""

    name: str
    volume: float
    families: tuple[tuple[str, float], ...]
    institutional: bool = False
    places: tuple[str, ...] = ("11",)


SPECIALTIES: tuple[Specialty, ...] = (
    Specialty(
        "family_medicine",
        0.10,
        (("evaluation_management", 0.7), ("preventive", 0.2), ("laboratory", 0.1)),
    ),
    Specialty(
        "internal_medicine",
        0.08,
        (("evaluation_management", 0.7), ("preventive", 0.15), ("laboratory", 0.15)),
    ),
    Specialty(
        "cardiology",
        0.07,
        (("cardiology", 0.6), ("evaluation_management", 0.3), ("advanced_imaging", 0.1)),
        places=("11", "22"),
    ),
    Specialty(
        "orthopedics",
        0.07,
        (
            ("musculoskeletal_surgery", 0.45),
            ("evaluation_management", 0.35),
            ("advanced_imaging", 0.2),
        ),
        places=("11", "22", "24"),
    ),
    Specialty(
        "radiology",
        0.07,
        (("advanced_imaging", 0.9), ("evaluation_management", 0.1)),
        places=("22", "11"),
    ),
    Specialty(
        "oncology",
        0.05,
        (("infused_drugs", 0.65), ("evaluation_management", 0.25), ("laboratory", 0.1)),
        places=("11", "22"),
    ),
    Specialty(
        "emergency_medicine", 0.07, (("emergency", 0.9), ("advanced_imaging", 0.1)), places=("23",)
    ),
    Specialty("physical_therapy", 0.06, (("physical_therapy", 1.0),)),
    Specialty("behavioral_health", 0.05, (("behavioral_health", 1.0),), places=("11", "02")),
    Specialty("anesthesiology", 0.04, (("anesthesia", 1.0),), places=("22", "24")),
    Specialty(
        "gastroenterology",
        0.04,
        (("gastroenterology", 0.7), ("evaluation_management", 0.3)),
        places=("24", "22"),
    ),
    Specialty(
        "obstetrics_gynecology",
        0.04,
        (("evaluation_management", 0.6), ("preventive", 0.25), ("laboratory", 0.15)),
    ),
    Specialty("clinical_laboratory", 0.05, (("laboratory", 1.0),), places=("81",)),
    Specialty(
        "durable_medical_equipment", 0.03, (("durable_medical_equipment", 1.0),), places=("12",)
    ),
    Specialty("ambulance_services", 0.02, (("ambulance", 1.0),), places=("41",)),
    Specialty(
        "general_surgery",
        0.04,
        (
            ("musculoskeletal_surgery", 0.3),
            ("gastroenterology", 0.3),
            ("evaluation_management", 0.4),
        ),
        places=("22", "24"),
    ),
    Specialty(
        "hospital_inpatient",
        0.07,
        (("inpatient_stay", 1.0),),
        institutional=True,
        places=("111", "121"),
    ),
    Specialty(
        "hospital_outpatient",
        0.09,
        (("outpatient_facility", 0.7), ("advanced_imaging", 0.15), ("emergency", 0.15)),
        institutional=True,
        places=("131", "141"),
    ),
)

# Diagnosis codes: a specific pool per specialty, and a weakly supporting pool (screening,
# symptoms, unspecified) that medical-necessity denials draw from more often (assumption).
SPECIFIC_DIAGNOSES = (
    "I25.10",
    "M17.11",
    "E11.9",
    "J44.1",
    "C50.911",
    "F33.1",
    "K21.9",
    "M54.16",
    "I48.91",
    "N18.4",
    "S82.201A",
    "G89.29",
    "O24.419",
    "J18.9",
)
WEAK_DIAGNOSES = ("Z00.00", "Z12.11", "R51.9", "R10.9", "Z13.6", "R53.83", "M79.609", "Z01.89")

# How each cause shows in the remittance: options of (adjustments, remarks, base weight). Each
# payer draws its own habit around these weights, so the same cause is coded differently by
# different payers, and CO-16, CO-50, CO-97 and CO-A1 serve several causes (domain.md section 2).
CodeOption = tuple[tuple[str, ...], tuple[str, ...], float]
CODE_OPTIONS: dict[str, tuple[CodeOption, ...]] = {
    "eligibility_registration": (
        (("CO-27",), (), 3.0),
        (("CO-26",), (), 1.5),
        (("CO-31",), ("N30",), 1.5),
        (("CO-140",), (), 1.0),
        (("CO-177",), ("N30",), 1.0),
        (("CO-16",), (), 3.0),
        (("CO-16",), ("N30",), 1.0),
        (("PR-27",), (), 0.8),
        (("CO-A1",), ("N30",), 0.6),
        (("CO-200",), (), 0.4),
        (("CO-A1",), (), 1.0),
    ),
    "coordination_of_benefits": (
        (("CO-22",), ("MA04",), 2.5),
        (("CO-22",), (), 1.5),
        (("CO-109",), (), 2.0),
        (("OA-109",), (), 0.8),
        (("CO-16",), ("MA04",), 1.0),
        (("CO-19",), (), 0.7),
        (("CO-27",), (), 0.6),
        (("CO-A1",), ("MA04",), 0.4),
        (("CO-16",), (), 1.0),
    ),
    "authorization_referral": (
        (("CO-197",), (), 3.0),
        (("CO-197",), ("N54",), 1.5),
        (("CO-16",), ("N54",), 1.2),
        (("CO-198",), ("N54",), 1.0),
        (("CO-288",), (), 0.8),
        (("CO-50",), (), 1.0),
        (("CO-243",), (), 0.4),
        (("CO-A1",), ("N54",), 0.5),
        (("CO-16",), (), 1.5),
        (("CO-96",), (), 0.6),
        (("CO-A1",), (), 0.6),
    ),
    "coding": (
        (("CO-4",), (), 2.0),
        (("CO-11",), (), 1.5),
        (("CO-97",), ("M15",), 1.2),
        (("CO-181",), (), 0.8),
        (("CO-182",), (), 0.5),
        (("CO-236",), (), 0.8),
        (("CO-234",), (), 0.6),
        (("CO-16",), ("M51",), 1.2),
        (("CO-16",), (), 2.5),
        (("CO-146",), (), 0.6),
        (("CO-A1",), (), 0.6),
        (("CO-97",), (), 0.8),
    ),
    "medical_necessity_documentation": (
        (("CO-50",), ("N115",), 2.5),
        (("CO-50",), (), 2.0),
        (("CO-151",), (), 1.0),
        (("CO-150",), (), 0.8),
        (("CO-252",), ("M127",), 1.0),
        (("CO-226",), ("N706",), 0.8),
        (("CO-16",), ("M127",), 0.8),
        (("CO-16",), (), 2.0),
        (("CO-167",), (), 0.5),
        (("CO-A1",), (), 0.6),
        (("CO-56",), (), 0.3),
    ),
    "missing_invalid_claim_data": (
        (("CO-16",), ("MA130",), 1.5),
        (("CO-16",), ("N290",), 1.2),
        (("CO-16",), ("M51",), 0.8),
        (("CO-16",), (), 3.0),
        (("CO-125",), ("N290",), 0.8),
        (("CO-206",), (), 0.6),
        (("CO-208",), (), 0.5),
        (("CO-A1",), ("MA130",), 0.6),
        (("CO-A1",), (), 0.8),
        (("CO-16",), ("MA120",), 0.4),
    ),
    "timely_filing": (
        (("CO-29",), (), 4.0),
        (("CO-29",), ("N211",), 1.5),
        (("CO-16",), (), 0.5),
        (("CO-A1",), (), 0.5),
    ),
    "duplicate": (
        (("OA-18",), (), 3.0),
        (("CO-18",), (), 2.0),
        (("CO-B13",), (), 0.8),
        (("CO-16",), (), 0.3),
        (("CO-A1",), ("N111",), 0.3),
    ),
    "non_covered_service": (
        (("CO-96",), ("N130",), 2.0),
        (("PR-96",), ("N130",), 1.5),
        (("CO-204",), (), 0.8),
        (("CO-119",), (), 1.0),
        (("PR-119",), (), 0.6),
        (("CO-49",), (), 0.8),
        (("PR-49",), (), 0.6),
        (("CO-35",), (), 0.4),
        (("CO-50",), (), 1.2),
        (("CO-242",), (), 0.6),
        (("CO-16",), (), 0.6),
    ),
    "payer_error_pricing": (
        (("CO-59",), (), 2.0),
        (("CO-94",), (), 0.6),
        (("CO-24",), (), 0.6),
        (("CO-97",), (), 1.2),
        (("CO-16",), (), 1.0),
        (("CO-256",), (), 0.6),
        (("CO-A1",), (), 0.5),
    ),
}

# Secondary adjustments that ride along on some denials: routine reductions on the claim,
# listed after the primary (largest) adjustment as the contract requires.
SECONDARY_ADJUSTMENTS = ("CO-45", "PR-2", "PR-1", "CO-253", "PR-3")

# Probability that working a denial recovers money, by true cause, on the logit scale.
# Premier: 54.3% (2022) to ~70% (2023) of private-payer denials eventually paid; KFF: MA
# prior-authorization appeals overturned 81.7%; timely filing and duplicates rarely recover
# (Medicare timely filing with N211 is not appealable, domain.md section 3).
RECOVERY_BASE_PROBABILITY = {
    "eligibility_registration": 0.62,
    "coordination_of_benefits": 0.68,
    "authorization_referral": 0.55,
    "coding": 0.66,
    "medical_necessity_documentation": 0.45,
    "missing_invalid_claim_data": 0.80,
    "timely_filing": 0.10,
    "duplicate": 0.12,
    "non_covered_service": 0.18,
    "payer_error_pricing": 0.65,
}
# Share of recoveries that are paid in full (the rest are partial); assumption.
FULL_RECOVERY_SHARE = {cause: 0.65 for cause in ROOT_CAUSES} | {
    "payer_error_pricing": 0.25,
    "medical_necessity_documentation": 0.5,
}

# Probability a denial was preventable, by cause and front-end flag (assumption bounded by
# Change Healthcare 2020: 86% potentially avoidable, 34% unequivocally avoidable).
PREVENTABLE_PROBABILITY = {
    "eligibility_registration": (0.95, 0.45),  # (eligibility not verified, verified)
    "coordination_of_benefits": (0.85, 0.55),
    "authorization_referral": (0.95, 0.35),  # (no authorization on file, authorization on file)
    "coding": (0.80, 0.80),
    "medical_necessity_documentation": (0.45, 0.45),
    "missing_invalid_claim_data": (0.95, 0.95),
    "timely_filing": (0.97, 0.97),
    "duplicate": (0.85, 0.85),
    "non_covered_service": (0.60, 0.60),
    "payer_error_pricing": (0.05, 0.05),
}
# Recovered denials resolve by appeal for these causes, by correction for the others.
APPEAL_CAUSES = frozenset(
    {
        "authorization_referral",
        "medical_necessity_documentation",
        "payer_error_pricing",
        "non_covered_service",
    }
)
# Premier: ~3 review rounds of 45-60 days each for appeals; corrections resolve faster.
MEAN_DAYS_TO_RESOLVE = {
    "overturned_on_appeal": 95.0,
    "paid_after_correction": 38.0,
    "written_off": 110.0,
    "billed_to_patient": 45.0,
}
ROOT_CAUSE_LABEL_NOISE = 0.04  # staff mislabel a few denials (assumption)
PREVENTABLE_LABEL_NOISE = 0.03
