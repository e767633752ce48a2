"""A decision's id: one exact form, the same in the code and in the OpenAPI document."""

from __future__ import annotations

import re
import uuid

import pytest

from xinyi.decisions.explain import ID_PATTERN, InvalidDecisionId, parse_id

SOURCE = uuid.UUID("8a4f2c3e-1b2d-4e5f-9a8b-7c6d5e4f3a2b")
GOOD = [f"score_change:{SOURCE}", f"tier_change:{SOURCE}", f"eligibility:{SOURCE}",
        f"list_entry:{SOURCE}", f"session_outcome:{SOURCE}:overdue",
        f"session_outcome:{SOURCE}:defaulted", f"session_outcome:{SOURCE}:recorded"]
BAD = ["", "score_change", f"score_change:{str(SOURCE).upper()}", f"score_change:{SOURCE.hex}",
       f"session_outcome:{SOURCE}", f"session_outcome:{SOURCE}:settled",
       f"eligibility:{SOURCE}:overdue", f"verdict:{SOURCE}", f"score_change:{SOURCE}\n",
       f" score_change:{SOURCE}", "x" * 1000]


@pytest.mark.parametrize("text", GOOD)
def test_a_well_formed_id_names_its_kind_source_and_step(text: str) -> None:
    ref = parse_id(text)
    assert ref.source_id == SOURCE and str(ref) == text
    assert ref.kind == text.split(":")[0]
    assert ref.step == (text.split(":")[2] if ref.kind == "session_outcome" else None)
    assert re.search(ID_PATTERN, text)


@pytest.mark.parametrize("text", BAD)
def test_any_other_form_is_refused_naming_the_path_parameter(text: str) -> None:
    with pytest.raises(InvalidDecisionId) as refused:
        parse_id(text)
    assert refused.value.status == 422
    assert refused.value.errors[0]["field"] == "decision_id"
    assert refused.value.errors[0]["location"] == "path"
    # The document's pattern refuses the same ids (read as JSON Schema reads it, ECMA: there
    # `$` never matches before a final newline, as Python's does, so that one is left out).
    assert re.search(ID_PATTERN, text) is None or text.endswith("\n")
