"""The governed code mapping: CARC (refined by group code and RARC) to root cause and routing.

The shipped file ``features/reference/mapping.yaml`` is versioned and reviewed entry by entry;
a site may layer an override file of the same shape on top. The effective mapping's version
and content digest are stamped on every model and every score, so any routing decision can be
traced to the exact entry and review that produced it.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field, replace
from importlib import resources
from pathlib import Path
from typing import Any

import pandas as pd
import yaml

from features.adjustments import GROUP_CODES, split_adjustment
from features.contract import RARC_PATTERN, ROOT_CAUSES

ACTION_PATHS = (
    "documentation_review",
    "eligibility_correction",
    "authorization_evidence",
    "coding_review",
    "corrected_claim_resubmission",
    "payer_escalation",
    "write_off_approval",
    "patient_billing",
    "write_off_review",
)
# CARC letter prefixes are A, B and P (D, W and Y are retired); M and N begin RARCs.
CARC_CODE_PATTERN = r"[ABDPWY]?\d{1,3}"
ROUTE_FIELDS = ("root_cause", "action_path", "owner_queue", "owner", "reviewed_on")
ENTRY_FIELDS = frozenset({"carc", "group", "rarc", "note", *ROUTE_FIELDS})
TOP_LEVEL_FIELDS = frozenset(
    {"version", "owner_queues", "backlog_horizon_days", "root_causes", "fallback", "entries"}
)
SHIPPED_MAPPING = "mapping.yaml"
POLICY_FIELDS = frozenset({"prevention_owner", "human_review", *ROUTE_FIELDS} - {"root_cause"})
# Where a person decides: the model is unsure and disagrees with the codes. Must be one of the
# mapping's owner queues (the check says so).
TRIAGE_QUEUE = "triage"
# Where a denial past every deadline goes (training.priority): nothing can be worked, a person
# approves the write-off. Both an action path and an owner queue, which the mapping must declare.
WRITE_OFF_REVIEW = "write_off_review"
# Days a queue takes to reach a denial put in its backlog, when the mapping does not say.
DEFAULT_BACKLOG_HORIZON_DAYS = 30

Key = tuple[str, str | None, str | None]  # (CARC, group code or any, RARC or any)


@dataclass(frozen=True)
class Route:
    """What the mapping says about a denial, and which rule said it."""

    root_cause: str
    action_path: str
    owner_queue: str
    owner: str
    reviewed_on: dt.date
    rule: str
    note: str | None = None


@dataclass(frozen=True)
class RootCausePolicy:
    """Per root cause: who owns prevention upstream, whether it always needs a person, and
    the route of a denial the model assigns to it."""

    prevention_owner: str
    human_review: bool
    route: Route


@dataclass(frozen=True)
class RoutingDecision:
    """The route a denial takes, on what basis, and the codes' own view beside it."""

    route: Route
    basis: str  # "codes" | "codes and model agree" | "model" | "triage"
    by_codes: Route


@dataclass(frozen=True)
class MappingProblem:
    """One governance defect, located by file and entry."""

    source: str
    where: str
    message: str

    def __str__(self) -> str:
        return f"{self.source}: {self.where}: {self.message}"


class MappingError(ValueError):
    """The mapping cannot be used; carries every problem found."""

    def __init__(self, problems: Sequence[MappingProblem]) -> None:
        self.problems = list(problems)
        super().__init__("\n".join(str(p) for p in self.problems))


@dataclass(frozen=True)
class CodeMapping:
    """The effective mapping: shipped file plus site overrides."""

    version: str
    owner_queues: tuple[str, ...]
    root_causes: dict[str, RootCausePolicy]
    fallback: Route
    routes: dict[Key, Route] = field(repr=False)
    # Per owner queue (and "default"): the days its backlog takes to work through, which
    # decides how urgent a deadline is (training.priority). None in models pickled before.
    backlog_horizon_days: dict[str, int] | None = None

    def backlog_horizon(self, owner_queue: str) -> int:
        """Days the queue takes to reach a denial put in its backlog (its own, else the
        mapping's default)."""
        horizons = self.backlog_horizon_days or {}
        default = horizons.get("default", DEFAULT_BACKLOG_HORIZON_DAYS)
        return int(horizons.get(owner_queue, default))

    @property
    def digest(self) -> str:
        """Short hash of the effective content: changes whenever any routing changes."""
        content = {
            "fallback": _route_json(self.fallback),
            "routes": {
                "|".join(k if k else "*" for k in key): _route_json(r)
                for key, r in sorted(self.routes.items(), key=lambda item: str(item[0]))
            },
            "root_causes": {k: asdict(v) for k, v in sorted(self.root_causes.items())},
        }
        if self.backlog_horizon_days:  # mappings without it keep the digest they had
            content["backlog_horizon_days"] = dict(sorted(self.backlog_horizon_days.items()))
        encoded = json.dumps(content, sort_keys=True, default=str).encode()
        return hashlib.sha256(encoded).hexdigest()[:12]

    @property
    def stamp(self) -> str:
        """Version and digest, as stamped on models and scores."""
        return f"{self.version}#{self.digest}"

    def route(self, carc_codes: Sequence[str], rarc_codes: Sequence[str] = ()) -> Route:
        """Route a denial by its primary adjustment, refined by group code and RARCs."""
        if not carc_codes:
            return self.fallback
        group, carc = split_adjustment(carc_codes[0])
        for key in _candidate_keys(carc, group, rarc_codes):
            if key in self.routes:
                return self.routes[key]
        return self.fallback

    def route_by_probabilities(
        self, probabilities: Mapping[str, float], by_codes: Route, confidence: float
    ) -> RoutingDecision:
        """Route a denial to the owner queue most likely to be right (``probabilities``: the
        root-cause model's, by cause; empty without a root-cause model).

        Each cause the model weighs would send the denial somewhere: the codes' route where the
        cause is the codes' own (they refine it, e.g. CO-50 with PR to patient billing), else the
        cause's route. A queue is right as often as the probabilities of its causes add up to,
        so two likely causes that both belong to billing outweigh a third that alone is likelier:
        routing by the top cause alone misroutes such denials. Within the chosen queue the route
        is that of its likeliest cause. When no queue reaches ``confidence`` a person routes the
        denial (triage), which keeps the codes' action path for its deadlines and cost.
        """
        if not probabilities:
            return RoutingDecision(by_codes, "codes", by_codes)
        routes = {cause: self._cause_route(cause, by_codes) for cause in probabilities}
        shares: dict[str, float] = {}
        for cause, probability in probabilities.items():
            queue = routes[cause].owner_queue
            shares[queue] = shares.get(queue, 0.0) + probability
        queue = max(shares, key=shares.__getitem__)
        if shares[queue] < confidence:
            return self._triage(probabilities, by_codes, confidence, queue, shares[queue])
        cause = max(
            (c for c in probabilities if routes[c].owner_queue == queue),
            key=probabilities.__getitem__,
        )
        route = routes[cause]
        if route is by_codes:
            return RoutingDecision(by_codes, "codes and model agree", by_codes)
        return RoutingDecision(route, "model", by_codes)

    def _cause_route(self, cause: str, by_codes: Route) -> Route:
        return by_codes if cause == by_codes.root_cause else self.root_causes[cause].route

    def _triage(
        self,
        probabilities: Mapping[str, float],
        by_codes: Route,
        confidence: float,
        likeliest_queue: str,
        share: float,
    ) -> RoutingDecision:
        cause = max(probabilities, key=probabilities.__getitem__)
        triage = replace(
            by_codes,
            root_cause=cause,
            owner_queue=TRIAGE_QUEUE,
            rule=f"triage: model says {cause} at {probabilities[cause]:.0%}, codes say "
            f"{by_codes.root_cause}; no queue reaches {confidence:.0%} "
            f"(likeliest {likeliest_queue} at {share:.0%})",
        )
        return RoutingDecision(triage, "triage", by_codes)

    def route_frame(self, frame: pd.DataFrame) -> pd.DataFrame:
        """Route every row of a contract frame; one column per route field plus the rule."""
        rarcs = frame["rarc_codes"] if "rarc_codes" in frame else [()] * len(frame)
        cache: dict[tuple[str, tuple[str, ...]], Route] = {}
        routes = []
        for carcs, remarks in zip(frame["carc_codes"], rarcs, strict=True):
            key = (carcs[0] if len(carcs) else "", tuple(remarks))
            if key not in cache:
                cache[key] = self.route(list(carcs[:1]), list(remarks))
            routes.append(cache[key])
        return pd.DataFrame(
            {
                "mapped_root_cause": [r.root_cause for r in routes],
                "action_path": [r.action_path for r in routes],
                "owner_queue": [r.owner_queue for r in routes],
                "mapping_rule": [r.rule for r in routes],
            },
            index=frame.index,
        )


def _route_json(route: Route) -> dict[str, Any]:
    return {k: str(v) for k, v in asdict(route).items()}


def _candidate_keys(carc: str, group: str, rarc_codes: Sequence[str]) -> Iterable[Key]:
    """Most specific first: group and RARC, RARC, group, the CARC alone."""
    yield from ((carc, group, rarc) for rarc in rarc_codes)
    yield from ((carc, None, rarc) for rarc in rarc_codes)
    yield (carc, group, None)
    yield (carc, None, None)


def describe_key(key: Key) -> str:
    """``("16", None, "N54")`` -> ``"CARC 16 + RARC N54"``."""
    carc, group, rarc = key
    text = f"{group}-{carc}" if group else f"CARC {carc}"
    return f"{text} + RARC {rarc}" if rarc else text


# ---------------------------------------------------------------------------- loading


@dataclass
class _Document:
    """A parsed mapping file with the line of each entry, for messages."""

    source: str
    data: dict[str, Any]
    entry_lines: list[int]


class _TextDatesLoader(yaml.SafeLoader):
    """Safe loading that keeps dates as text, so a bad date is reported at its entry instead of
    failing the whole file (``2026-13-01``) or slipping through as a datetime."""


_TextDatesLoader.add_constructor("tag:yaml.org,2002:timestamp", yaml.SafeLoader.construct_yaml_str)


def _read_document(text: str, source: str) -> _Document:
    try:
        data = yaml.load(text, Loader=_TextDatesLoader)  # a SafeLoader subclass
        root = yaml.compose(text)
    except yaml.YAMLError as exc:
        raise MappingError([MappingProblem(source, "file", f"not valid YAML: {exc}")]) from exc
    if not isinstance(data, dict):
        raise MappingError([MappingProblem(source, "file", "must be a mapping with 'entries'")])
    return _Document(source, data, _entry_lines(root))


def _entry_lines(root: yaml.Node | None) -> list[int]:
    if not isinstance(root, yaml.MappingNode):
        return []
    for key_node, value_node in root.value:
        if key_node.value == "entries" and isinstance(value_node, yaml.SequenceNode):
            return [item.start_mark.line + 1 for item in value_node.value]
    return []


def shipped_mapping_text() -> str:
    """The text of the mapping file shipped with the package."""
    return resources.files("features.reference").joinpath(SHIPPED_MAPPING).read_text()


def _load_documents(overrides: Path | None) -> list[_Document]:
    documents = [_read_document(shipped_mapping_text(), f"features/reference/{SHIPPED_MAPPING}")]
    if overrides is not None:
        if not overrides.exists():
            problem = MappingProblem(str(overrides), "file", "override file does not exist")
            raise MappingError([problem])
        documents.append(_read_document(overrides.read_text(), str(overrides)))
    return documents


def load_mapping(overrides: Path | None = None) -> CodeMapping:
    """The effective mapping; raises :class:`MappingError` on any structural defect.

    Staleness of reviews is a governance finding for ``mapping check``, not a reason to stop
    scoring, so it is not checked here.
    """
    documents = _load_documents(overrides)
    problems = _structural_problems(documents)
    if problems:
        raise MappingError(problems)
    return _build(documents)


def check_mapping(
    overrides: Path | None = None,
    *,
    today: dt.date | None = None,
    max_review_age_days: int = 365,
) -> list[MappingProblem]:
    """Every governance defect: structure, unknown values, duplicates and stale reviews."""
    try:
        documents = _load_documents(overrides)
    except MappingError as exc:
        return exc.problems
    today = today or dt.date.today()
    problems = _structural_problems(documents)
    for document in documents:
        problems.extend(_review_age_problems(document, today, max_review_age_days))
    return problems


def _build(documents: list[_Document]) -> CodeMapping:
    base = documents[0].data
    queues = tuple(q for doc in documents for q in doc.data.get("owner_queues") or ())
    # An override restates only the fields it changes; the shipped file states them all.
    layered: dict[str, dict[str, Any]] = {}
    for doc in documents:
        for name, fields in (doc.data.get("root_causes") or {}).items():
            layered[name] = {**layered.get(name, {}), **fields}
    policies = {
        name: RootCausePolicy(
            str(p["prevention_owner"]),
            bool(p["human_review"]),
            _route({**p, "root_cause": name}, f"root cause {name}"),
        )
        for name, p in layered.items()
    }
    fallback_entry = base["fallback"]
    routes: dict[Key, Route] = {}
    for document in documents:
        fallback_entry = document.data.get("fallback") or fallback_entry
        for entry in document.data.get("entries") or ():
            key = _entry_key(entry)
            routes[key] = _route(entry, describe_key(key))
    versions = [str(doc.data["version"]) for doc in documents]
    horizons: dict[str, int] = {}
    for doc in documents:
        horizons.update(doc.data.get("backlog_horizon_days") or {})
    return CodeMapping(
        version="+".join(versions),
        owner_queues=tuple(dict.fromkeys(queues)),
        root_causes=policies,
        fallback=_route(fallback_entry, "fallback (no mapping entry for the primary CARC)"),
        routes=routes,
        backlog_horizon_days=horizons or None,
    )


def _entry_key(entry: dict[str, Any]) -> Key:
    group = entry.get("group")
    rarc = entry.get("rarc")
    return str(entry["carc"]), str(group) if group else None, str(rarc) if rarc else None


def _route(entry: dict[str, Any], rule: str) -> Route:
    return Route(
        root_cause=entry["root_cause"],
        action_path=entry["action_path"],
        owner_queue=entry["owner_queue"],
        owner=str(entry["owner"]),
        reviewed_on=_as_date(entry["reviewed_on"]),
        rule=rule,
        note=entry.get("note"),
    )


def _as_date(value: object) -> dt.date:
    if isinstance(value, dt.date):
        return value
    return dt.date.fromisoformat(str(value))


# ---------------------------------------------------------------------------- governance


def _structural_problems(documents: list[_Document]) -> list[MappingProblem]:
    problems: list[MappingProblem] = []
    queues = {q for doc in documents for q in doc.data.get("owner_queues") or ()}
    for index, document in enumerate(documents):
        problems.extend(_top_level_problems(document, queues, is_base=index == 0))
        problems.extend(_entries_problems(document, queues))
    return problems


def _top_level_problems(
    document: _Document, queues: set[str], *, is_base: bool
) -> list[MappingProblem]:
    data, source = document.data, document.source
    problems = [
        MappingProblem(source, "file", f"unknown top-level field {name!r}")
        for name in sorted(set(data) - TOP_LEVEL_FIELDS)
    ]
    if not str(data.get("version") or "").strip():
        problems.append(MappingProblem(source, "file", "the file needs a non-empty 'version'"))
    if not isinstance(data.get("entries"), list):
        problems.append(MappingProblem(source, "file", "'entries' must be a list"))
    if is_base or "root_causes" in data:
        # An override may restate some policies; the shipped file must state them all.
        problems.extend(
            _root_cause_policy_problems(data.get("root_causes"), source, is_base, queues)
        )
    if is_base and TRIAGE_QUEUE not in queues:
        message = f"owner_queues must include {TRIAGE_QUEUE!r}, where unsure routes go"
        problems.append(MappingProblem(source, "owner_queues", message))
    if is_base and WRITE_OFF_REVIEW not in queues:
        message = f"owner_queues must include {WRITE_OFF_REVIEW!r}, for denials past every deadline"
        problems.append(MappingProblem(source, "owner_queues", message))
    if "backlog_horizon_days" in data:
        problems.extend(_horizon_problems(data["backlog_horizon_days"], source, queues))
    if is_base and not isinstance(data.get("fallback"), dict):
        problems.append(MappingProblem(source, "file", "the shipped mapping needs 'fallback'"))
    if isinstance(data.get("fallback"), dict):
        problems.extend(_entry_problems(data["fallback"], source, "fallback", queues, True))
    return problems


def _horizon_problems(horizons: object, source: str, queues: set[str]) -> list[MappingProblem]:
    where = "backlog_horizon_days"
    if not isinstance(horizons, dict):
        return [MappingProblem(source, where, "must map owner queues (or 'default') to days")]
    problems = []
    for queue, days in horizons.items():
        if queue != "default" and queue not in queues:
            message = f"unknown owner queue {queue!r}; use 'default' or one of {sorted(queues)}"
            problems.append(MappingProblem(source, where, message))
        if isinstance(days, bool) or not isinstance(days, int) or days < 1:
            message = f"{queue}: {days!r} is not a whole number of days of at least 1"
            problems.append(MappingProblem(source, where, message))
    return problems


def _root_cause_policy_problems(
    policies: object, source: str, complete: bool, queues: set[str]
) -> list[MappingProblem]:
    if not isinstance(policies, dict):
        return [MappingProblem(source, "root_causes", "must map each root cause to its policy")]
    problems = [
        MappingProblem(source, "root_causes", f"unknown root cause {name!r}")
        for name in policies
        if name not in ROOT_CAUSES
    ]
    problems += [
        MappingProblem(source, "root_causes", f"no policy for root cause {name!r}")
        for name in ROOT_CAUSES
        if complete and name not in policies
    ]
    for name, policy in policies.items():
        if name not in ROOT_CAUSES:
            continue  # said above
        where = f"root_causes.{name}"
        if not isinstance(policy, dict):
            problems.append(MappingProblem(source, where, "must be a mapping"))
            continue
        messages = [f"unknown field {field!r}" for field in sorted(set(policy) - POLICY_FIELDS)]
        messages += [f"missing {field}" for field in ("prevention_owner",) if not policy.get(field)]
        messages += ["missing human_review"] if "human_review" not in policy else []
        messages += _route_messages({**policy, "root_cause": name}, queues)
        if not complete:  # an override restates only what it changes
            messages = [m for m in messages if not m.startswith("missing ")]
        problems += [MappingProblem(source, where, message) for message in messages]
    return problems


def _entries_problems(document: _Document, queues: set[str]) -> list[MappingProblem]:
    entries = document.data.get("entries")
    if not isinstance(entries, list):
        return []
    problems: list[MappingProblem] = []
    first_seen: dict[Key, str] = {}
    for index, entry in enumerate(entries):
        where = _where(document, index)
        if not isinstance(entry, dict):
            problems.append(MappingProblem(document.source, where, "must be a mapping"))
            continue
        problems.extend(_entry_problems(entry, document.source, where, queues, False))
        if "carc" not in entry:
            continue
        key = _entry_key(entry)
        if key in first_seen:
            message = f"duplicate key {describe_key(key)}, first defined at {first_seen[key]}"
            problems.append(MappingProblem(document.source, where, message))
        first_seen.setdefault(key, where)
    return problems


def _where(document: _Document, index: int) -> str:
    line = document.entry_lines[index] if index < len(document.entry_lines) else None
    return f"entry {index + 1}" + (f" (line {line})" if line else "")


def _entry_problems(
    entry: dict[str, Any], source: str, where: str, queues: set[str], is_fallback: bool
) -> list[MappingProblem]:
    messages = [f"unknown field {name!r}" for name in sorted(set(entry) - ENTRY_FIELDS)]
    if not is_fallback:
        messages += _key_messages(entry)
    messages += _route_messages(entry, queues)
    return [MappingProblem(source, where, message) for message in messages]


def _key_messages(entry: dict[str, Any]) -> list[str]:
    messages = []
    carc = str(entry.get("carc") or "")
    if not re.fullmatch(CARC_CODE_PATTERN, carc):
        messages.append(f"carc {carc!r} is not a CARC code (e.g. '16', 'A1')")
    group = entry.get("group")
    if group is not None and group not in GROUP_CODES:
        messages.append(f"unknown group code {group!r}; use one of {', '.join(GROUP_CODES)}")
    rarc = entry.get("rarc")
    if rarc is not None and not re.fullmatch(RARC_PATTERN, str(rarc)):
        messages.append(f"rarc {rarc!r} is not a RARC code (e.g. 'N54', 'M127', 'MA04')")
    return messages


def _route_messages(entry: dict[str, Any], queues: set[str]) -> list[str]:
    messages = [f"missing {name}" for name in ROUTE_FIELDS if not entry.get(name)]
    allowed = {"root_cause": ROOT_CAUSES, "action_path": ACTION_PATHS, "owner_queue": queues}
    for name, values in allowed.items():
        value = entry.get(name)
        if value and value not in values:
            kind = name.replace("_", " ")
            messages.append(f"unknown {kind} {value!r}; use one of {', '.join(sorted(values))}")
    reviewed = entry.get("reviewed_on")
    if reviewed and _parse_date(reviewed) is None:
        messages.append(f"reviewed_on {reviewed!r} is not a date (YYYY-MM-DD)")
    return messages


def _parse_date(value: object) -> dt.date | None:
    try:
        return _as_date(value)
    except ValueError:
        return None


def _review_age_problems(
    document: _Document, today: dt.date, max_age_days: int
) -> list[MappingProblem]:
    dated = [("fallback", document.data.get("fallback"))]
    dated += [(f"root_causes.{n}", p) for n, p in (document.data.get("root_causes") or {}).items()]
    dated += [(_where(document, i), e) for i, e in enumerate(document.data.get("entries") or ())]
    problems = []
    for where, entry in dated:
        if not isinstance(entry, dict):
            continue
        reviewed = _parse_date(entry.get("reviewed_on"))
        if reviewed is None:
            continue
        age = (today - reviewed).days
        if age > max_age_days:
            message = (
                f"review is stale: last reviewed {reviewed} ({age} days ago, limit {max_age_days})"
            )
            problems.append(MappingProblem(document.source, where, message))
        elif age < 0:
            message = f"reviewed_on {reviewed} is in the future"
            problems.append(MappingProblem(document.source, where, message))
    return problems
