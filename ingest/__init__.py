"""X12 835 remittance ingestion: remittances in, contract denials out, outcomes linked.

``x12`` tokenizes any X12 file, ``remit835`` reads 835 semantics into claims, ``denials``
decides what counts as a denial, ``batch`` writes contract rows, ``outcomes`` links later
payments back to earlier denials and ``validate`` wraps pyx12 for full TR3 validation.
"""
