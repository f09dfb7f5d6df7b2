"""Tests for concentrador.protocol.filetypes (CPCSCC.md §4.2, §7)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from concentrador.protocol.errors import ProtocolError
from concentrador.protocol.filetypes import (
    DEFAULT_PREFIXES,
    REAL_TYPE_IDS,
    TOD,
    TYPE_DESCRIPTIONS,
    TYPE_IDS,
    FileTypeError,
    TypeClassifier,
    is_type_id,
    leading_field,
    merge_prefixes,
    normalise_type_id,
    participant_code,
)

SPEC_ORDER = "CUR PTE PTF TAR INC OBJ ROB FIR AGR MAG INV DIS RIS NOS OSI OSP OSA OSG OSE OSD TOD"


def test_type_ids_in_spec_order() -> None:
    assert tuple(SPEC_ORDER.split()) == TYPE_IDS
    assert TYPE_IDS[-1] == TOD == "TOD"
    assert TYPE_IDS[:-1] == REAL_TYPE_IDS
    assert len(REAL_TYPE_IDS) == 20
    assert set(TYPE_DESCRIPTIONS) == set(REAL_TYPE_IDS)


def test_is_type_id_is_exact() -> None:
    assert is_type_id("CUR") and is_type_id("TOD")
    assert not is_type_id("cur") and not is_type_id("XYZ") and not is_type_id("")


def test_default_prefixes_are_the_spec_examples() -> None:
    assert dict(DEFAULT_PREFIXES) == {"F1": "CUR", "F5": "CUR", "P1": "CUR", "P2": "CUR"}


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("F1_0086_20040612_20040617.9.bz2", "CUR"),
        ("F1_CEMI_20031120.2", "CUR"),
        ("P1_CEMI_20031120.1.2_3", "CUR"),  # blocks classify like their original
        ("p2_0021_20240101.0", "CUR"),  # case-insensitive
        ("F5_0021_20240101.0.bz2", "CUR"),
        ("F10_0021_20240101.0", None),  # no implicit prefix matching
        ("F1", "CUR"),  # no '_': the whole name is the leading field
        ("F1.bz2", None),
        ("_F1_x", None),  # empty leading field
        ("", None),
        ("INCI_0021_20240101.0", None),
    ],
)
def test_default_classification(name: str, expected: str | None) -> None:
    assert TypeClassifier().classify(name) == expected


def test_user_table_with_wildcards() -> None:
    classifier = TypeClassifier({"F5*": "cur", "F5D*": "PTE", "F5DX": "INC", "Q1": "TAR"})
    assert classifier.classify("F5D_0021_2024.0") == "PTE"  # longest pattern wins
    assert classifier.classify("F5DAILY_0021_2024.0") == "PTE"
    assert classifier.classify("F5X_0021_2024.0") == "CUR"
    assert classifier.classify("F5DX_0021_2024.0") == "INC"  # exact beats patterns
    assert classifier.classify("q1_0021_2024.0") == "TAR"
    assert classifier.classify("Q10_0021_2024.0") is None
    assert classifier.classify("F1_0021_2024.0") is None  # the table replaces the defaults
    assert dict(classifier.prefixes) == {"F5*": "CUR", "F5D*": "PTE", "F5DX": "INC", "Q1": "TAR"}


@pytest.mark.parametrize(
    ("table", "words"),
    [
        ({"F1": "XYZ"}, "unknown file type 'XYZ'"),
        ({"F1": "TOD"}, "TOD"),
        ({"F1": ""}, "unknown file type"),
        ({"": "CUR"}, "empty"),
        ({"*": "CUR"}, "empty"),
        ({"F_1": "CUR"}, "'_'"),
        ({"F*1": "CUR"}, "last character"),
        ({"F 1": "CUR"}, "whitespace"),
        ({"F\x001": "CUR"}, "control"),
        ({"f1": "CUR", "F1": "INC"}, "differ only in case"),
        ({1: "CUR"}, "must be a string"),
        ({"F1": 3}, "must be a string"),
    ],
)
def test_bad_tables_are_refused(table: dict[object, object], words: str) -> None:
    with pytest.raises(FileTypeError) as info:
        TypeClassifier(table)  # type: ignore[arg-type]
    assert words in str(info.value)
    assert isinstance(info.value, ProtocolError)


def test_same_prefix_in_two_cases_to_one_type_is_fine() -> None:
    assert TypeClassifier({"f1": "CUR", "F1": "cur"}).classify("F1_x_y") == "CUR"


def test_normalise_type_id() -> None:
    assert [normalise_type_id(t) for t in ("cur", " Osd ", "INV")] == ["CUR", "OSD", "INV"]


@pytest.mark.parametrize(
    ("name", "code"),
    [
        ("F1_0086_20040612_20040617.9.bz2", "0086"),
        ("F1_CEMI_20031120.2", "CEMI"),
        ("F1_021_20030402.01", "021"),
        ("P1_CEMI_20031120.1.1_3", "CEMI"),
        ("P1_20031120.1", None),  # second field is a date, not a code
        ("F1", None),
        ("F1__2004", None),
        ("", None),
    ],
)
def test_participant_code(name: str, code: str | None) -> None:
    assert participant_code(name) == code


@given(st.text(alphabet="FPQfpq0125_.x", max_size=12), st.text(max_size=20))
def test_classification_depends_only_on_the_leading_field_and_ignores_case(
    head: str, tail: str
) -> None:
    field = leading_field(head)
    assert "_" not in field and head.startswith(field)
    classifier = TypeClassifier()
    result = classifier.classify(head)
    assert classifier.classify(head.swapcase()) == result
    # Whatever follows the first '_' never changes the answer.
    assert classifier.classify(f"{field}_{tail}") == classifier.classify(field)
    assert (result is not None) == (field.upper() in DEFAULT_PREFIXES)


def test_merge_prefixes_overrides_case_insensitively() -> None:
    merged = merge_prefixes({"f5": "PTE", "Q1": "TAR"})
    assert merged == {"F1": "CUR", "P1": "CUR", "P2": "CUR", "f5": "PTE", "Q1": "TAR"}
    classifier = TypeClassifier(merged)
    assert classifier.classify("F5_0021_2024.0") == "PTE"
    assert classifier.classify("F1_0021_2024.0") == "CUR"
    assert dict(DEFAULT_PREFIXES)["F5"] == "CUR"  # the shipped table is untouched
