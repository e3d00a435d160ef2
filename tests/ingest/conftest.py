"""Fixtures for the ingestion tests; the 835 builders live in ``remit_fixtures``."""

from __future__ import annotations

from pathlib import Path

import pytest
from remit_fixtures import (
    denied_claim,
    header,
    paid_claim,
    partially_paid_claim,
    provider_adjustment,
    reversal_and_correction,
    write,
    x12,
)


@pytest.fixture
def remit(tmp_path: Path) -> Path:
    """One remittance: a denied claim, a partly paid claim, a paid claim, a reversal and
    correction, and a PLB."""
    body = [
        *header(),
        *denied_claim(),
        *partially_paid_claim(),
        *paid_claim(),
        *reversal_and_correction(),
        *provider_adjustment(),
    ]
    return write(tmp_path, "remit.835", x12(body))
