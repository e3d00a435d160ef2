"""Feature values put in a reviewer's words."""

from __future__ import annotations

import pytest

from serving.reasons import readable_value


@pytest.mark.parametrize(
    ("feature", "value", "expected"),
    [
        ("procedure_code", "0110", "0110"),
        ("place_of_service", "11", "11"),
        ("payer_id", "COM003", "COM003"),
        ("prior_auth_on_file", "0", "no"),
        ("log_denied_amount", "0", "$0.00"),
        ("payer_recovery_rate", "0.25", "25%"),
        ("adjustment_CO-16", "1", "present"),
        ("days_to_appeal_deadline", "12", "12"),
        ("specialty", "missing", "missing"),
    ],
)
def test_values_read_as_a_reviewer_reads_them(feature: str, value: str, expected: str) -> None:
    assert readable_value(feature, value) == expected
