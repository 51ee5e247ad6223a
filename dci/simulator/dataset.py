"""Beneficiaries the simulator knows, in the spec's ``Beneficiary`` record shape.

The built-in sample gives every outcome a duplicate check can have:

- ``NID:1000000001`` enrolled and active: a confirmed match;
- ``NID:1000000002`` found, but the enrolment has ended: a possible match;
- ``NID:1000000003`` unknown: no match;
- ``NID:1000000004`` three active enrolments: several pages with ``page_size=1``.
"""

import json
from pathlib import Path

__all__ = ["Dataset", "beneficiary"]


def beneficiary(id_type, value, programme, status="Active", programme_id="P1", name=None):
    """One spec-shaped IBR record."""
    first, _, last = (name or "Sample Person").partition(" ")
    return {
        "@type": "Beneficiary",
        "member": {
            "member_identifier": f"M-{value}-{programme_id}",
            "demographic_info": {
                "person": {
                    "identifier_type": id_type,
                    "identifier_value": value,
                    "name": {"first_name": first, "surname": last},
                    "sex": "F",
                    "birth_date": "1990-05-02",
                }
            },
            "programme_identifier": {
                "programme": {"programme_identifier": programme_id, "programme_name": programme},
                "enrolment_date": "2024-02-02",
                "enrolment_status": status,
                "benefits": {"benefit_type": "Cash", "benefit_frequency": "Monthly"},
            },
        },
    }


SAMPLE = [
    beneficiary("NID", "1000000001", "Cash Transfer Programme", name="Amina Diallo"),
    beneficiary(
        "NID", "1000000002", "School Feeding", status="Exited", programme_id="P2", name="Jonas Berg"
    ),
    beneficiary("NID", "1000000004", "Cash Transfer Programme", name="Lea Novak"),
    beneficiary("NID", "1000000004", "Disability Grant", programme_id="P3", name="Lea Novak"),
    beneficiary("NID", "1000000004", "Old Age Pension", programme_id="P4", name="Lea Novak"),
    beneficiary("UIN", "U-77", "Food Voucher", programme_id="P5", name="Zoé Ünal"),
]


class Dataset:
    """Records indexed by ``(identifier type, value)``; types compare case-insensitively."""

    def __init__(self, records):
        self.records = list(records)
        self._index = {}
        for record in self.records:
            person = record.get("member", {}).get("demographic_info", {}).get("person", {})
            key = (
                str(person.get("identifier_type", "")).upper(),
                str(person.get("identifier_value", "")),
            )
            self._index.setdefault(key, []).append(record)

    @classmethod
    def sample(cls):
        return cls(SAMPLE)

    @classmethod
    def load(cls, path):
        """A JSON file: a list of records, or ``{"reg_records": [...]}``."""
        data = json.loads(Path(path).read_text(encoding="utf-8"))
        return cls(data["reg_records"] if isinstance(data, dict) else data)

    def find(self, id_type, value):
        return list(self._index.get((str(id_type).upper(), str(value)), []))
