"""The heading rules of :mod:`chainproof.tools.sec_sections` on small made-up filings (the real
filings are checked in test_sec_sections_real.py when ../shared/data is present)."""

from __future__ import annotations

import pytest

from chainproof.errors import DossierError
from chainproof.tools.sec_sections import find_item, find_note_number, find_sections

_BODY = "We make widgets in three plants and sell them to distributors.\n" * 5


def test_sentence_case_headings_are_headings_and_end_sections() -> None:
    text = (f"PART I\nItem 1. Business\n{_BODY}\nItem 1A. Risk factors\n{_BODY}Our plants may flood.\n\n"
            f"Item 1B. Unresolved staff comments\nNone.\n\nItem 3. Legal proceedings\nNone pending.\n\n"
            f"Item 4. Mine safety disclosures\nNot applicable.\n")
    found = find_sections(text)
    assert found["risk_factors"].heading == "Item 1A. Risk factors"
    assert found["risk_factors"].text.rstrip().endswith("Our plants may flood.")
    assert found["legal_proceedings"].text == "Item 3. Legal proceedings\nNone pending.\n"


def test_a_cross_reference_at_a_line_start_is_neither_a_heading_nor_an_end() -> None:
    """"Item 1A. Risk Factors—Pricing section in this Form 10-Q." wrapped onto a line of its own in
    MD&A is prose: Part II's Item 1A is found, and MD&A does not end there."""
    text = (f"PART I. FINANCIAL INFORMATION\nITEM 2. MANAGEMENT'S DISCUSSION AND ANALYSIS\n{_BODY}For more, see\n"
            f"Item 1A. Risk Factors—Pricing section in this Form 10-Q and in our 2023 Form 10-K, which applies.\n{_BODY * 3}\n"
            f"ITEM 4. CONTROLS AND PROCEDURES\nEffective.\n\nPART II. OTHER INFORMATION\n\nITEM 1. LEGAL PROCEEDINGS\n\n"
            f"See Note 12A.\n\nITEM 1A. RISK FACTORS\n\nNo material changes.\n\nITEM 6. EXHIBITS\n")
    assert find_item(text, "1a", "risk").text == "ITEM 1A. RISK FACTORS\n\nNo material changes.\n"
    assert find_item(text, "1", "legal").text == "ITEM 1. LEGAL PROCEEDINGS\n\nSee Note 12A.\n"
    assert "Pricing section" in find_item(text, "2", "management").text


def test_part_executive_officers_and_signatures_end_a_section() -> None:
    text = (f"Item 1A. Risk Factors\n{_BODY}\nItem 3. Legal Proceedings\nSee Note 9.\n\n"
            f"INFORMATION ABOUT OUR EXECUTIVE OFFICERS\nJane Roe, 50, Chief Executive Officer.\n\nPART II\n"
            f"Item 8. Financial Statements\n{_BODY}Note 9. Commitments and Contingencies\nA suit is pending.\n\n"
            f"Item 9. Changes in and Disagreements with Accountants\nNone.\n\nSIGNATURES\n/s/ Jane Roe\n")
    found = find_sections(text, need_note=True)
    assert found["legal_proceedings"].text == "Item 3. Legal Proceedings\nSee Note 9.\n"
    assert found["legal_note"].text == "Note 9. Commitments and Contingencies\nA suit is pending.\n"  # the last note ends at Item 9
    assert find_item(text.replace("Item 9. Changes", "Other matters. Changes"), "8", "financial").text.rstrip().endswith(
        "Changes in and Disagreements with Accountants\nNone.")  # and Item 8 at the signatures


def test_a_wrapped_numbered_sentence_or_a_column_header_is_not_a_note_heading() -> None:
    """A sentence wrapped after "Note" ("12. On the closing date, ...") in an earlier note, and a
    table's column header ("12 Months Ended"), would open a longer "note 12" than the real one."""
    text = ("NOTE 3 – ACQUISITIONS\nThe buyer's lease is further discussed in Note\n"
            "12. On the closing date, the buyer also paid $150 million for shares.\n" + _BODY * 10 +
            "       12 Months Ended      11 Months Ended\nRent   10   9\n" + _BODY * 10 +
            "NOTE 12 – COMMITMENTS AND CONTINGENCIES\nA suit is pending.\n\nNOTE 13 — STOCKHOLDERS' EQUITY\nShares.\n")
    note = find_note_number(text, 12)
    assert note is not None and note.text == "NOTE 12 – COMMITMENTS AND CONTINGENCIES\nA suit is pending.\n"


_TOC = ("TABLE OF CONTENTS\nPART I\nItem 1.    Business                                  1\n"
        "Item 1A.   Risk Factors                              13\nItem 1B.   Unresolved Staff Comments       N/A\n"
        "Item 2.    Properties.................................. 28\nItem 3.    Legal Proceedings......... 29\n"
        "Item 4.    Mine Safety Disclosures                   29\nPART II\n")


def test_a_table_of_contents_entry_is_not_the_section() -> None:
    """A table of contents alone (its lines end in page numbers, with gaps or dot leaders) has no
    Item 1A or Item 3: the error names both; with the body's headings present, the bodies win, and a
    one-word body ("None.") under a heading without a page number is a section."""
    with pytest.raises(DossierError, match=r"section not found: Item 1A \(Risk Factors\).*table-of-contents entry.*"
                                           r"Item 3 \(Legal Proceedings\)"):
        find_sections(_TOC + f"Item 5. Market\n{_BODY}")
    text = _TOC + f"Item 1A. Risk Factors\n{_BODY}\nItem 2. Properties\n{_BODY}\nItem 3. Legal Proceedings\nNone.\n\nItem 4. Mine\nNo.\n"
    found = find_sections(text)
    assert found["risk_factors"].text == f"Item 1A. Risk Factors\n{_BODY}"
    assert found["legal_proceedings"].text == "Item 3. Legal Proceedings\nNone.\n"
    bare = "Item 1A.\nRisk Factors\n13\nItem 1B.\nUnresolved Staff Comments\n27\n"  # number and page on their own lines
    assert find_item(bare, "1a", "risk") is None
    assert find_item(bare.replace("13\n", f"{_BODY}", 1), "1a", "risk") is not None
