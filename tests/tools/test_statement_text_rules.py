"""The statement-reading rules of :mod:`chainproof.tools.statement_text` on small made-up filings
(every real 10-K is compared with key_financials.csv in test_statement_text_real.py)."""

from __future__ import annotations

import pytest

from chainproof.tools.statement_text import before_notes, is_statement_title, statement_pages, text_financials

_COVER = "ACME WIDGETS INC.\nAnnual report on Form 10-K\n"
_INCOME = ("ACME Widgets Inc. and Subsidiaries\nCONSOLIDATED STATEMENTS OF INCOME\n(In millions)            2017      2016\n"
           "Net sales                         1,000       900\nOperating income                    120       100\n"
           "Net income                           80        70\n")
_BALANCE = ("ACME Widgets Inc. and Subsidiaries\nConsolidated Balance Shee t\n(In millions)            2017      2016\n"
            "Total assets                      2,000     1,800\nTotal equity                        700       650\n"
            "Total liabilities and equity      2,000     1,800\n")
#: a note's table whose total is not the balance sheet's (Coca-Cola's derivatives note)
_NOTE_TABLE = ("(In millions)            2017      2016\nDerivatives designated as hedges\n"
               "Total liabilities                   159       178\nCash and cash equivalents            11        12\n")


@pytest.mark.parametrize("line", ["CONSOLIDATED STATEMENTS OF INCOME", "Consolidated Statement of Incom e",
                                  "  Consolidated Balance Sheets (continued)", "Consolidated Statements of Cash Flows — Years Ended",
                                  "Consolidated Balance Sheets as of December 31, 2017 and 2016",
                                  "Consolidated Statements of Income Verizon Communications Inc. and Subsidiaries",
                                  "Consolidated Statement of Financial Position"])
def test_a_statement_title_is_a_heading(line):
    assert is_statement_title(line)


@pytest.mark.parametrize("line", ["consolidated statement of income as the changes in the fair values of the hedged items",
                                  "Consolidated Balance Sheet. Such balances are pledged as collateral.",
                                  "Consolidated Balance Sheet that are Subject",
                                  "Consolidated Statements of Income                                72",
                                  "Notes to Consolidated Statements of Income",
                                  "Consolidated Statements of Shareowners' Equity"])
def test_prose_a_table_title_and_an_index_entry_are_not_statement_titles(line):
    assert not is_statement_title(line)


def test_a_page_opening_with_a_wrapped_sentence_is_not_a_statement_page():
    """A notes page whose first line goes on a sentence ("consolidated statement of income as the
    changes ...") is not a statement page, so its table's "Total liabilities" is not read."""
    prose = "consolidated statement of income as the changes in the fair values of the hedged items are recorded.\n"
    text = "\f".join([_COVER, _INCOME, _BALANCE, prose + _NOTE_TABLE])
    pages = statement_pages(text)
    assert [page for _, page in pages] == [_INCOME, _BALANCE]
    figures = {(fy, m): (v, s) for fy, m, v, s in text_financials(text, "acme.txt")}
    assert figures[(2017, "total_liabilities")][0] == 1300.0  # 2,000 - 700, not the note's 159
    assert figures[(2017, "total_liabilities")][1].startswith("derived: total_assets - total_equity")
    assert "acme.txt: statement page line" in figures[(2017, "total_liabilities")][1]  # names the lines it used
    assert figures[(2016, "total_liabilities")][0] == 1150.0


def test_item_8_is_read_up_to_its_notes_only():
    """A text without form feeds (EDGAR HTML): Item 8's statements are read, its notes' tables never;
    a figure only a note prints is absent, not taken from the note."""
    text = (f"{_COVER}Item 8. Financial Statements and Supplementary Data\nIndex\n"
            "Notes to Consolidated Financial Statements      60\n"  # the index's entry is not where the notes begin
            f"{_INCOME}\n{_BALANCE}\nNOTES TO CONSOLIDATED FINANCIAL STATEMENTS\nNote 1. Summary of Accounting Policies\n"
            f"We make widgets.\n{_NOTE_TABLE}\nItem 9. Changes in and Disagreements with Accountants\nNone.\n")
    figures = {(fy, m): (v, s) for fy, m, v, s in text_financials(text, "acme.txt")}
    assert figures[(2017, "revenue")][0] == 1000.0 and "Item 8 line" in figures[(2017, "revenue")][1]
    assert figures[(2017, "total_liabilities")][0] == 1300.0 and figures[(2017, "total_liabilities")][1].startswith("derived:")
    assert (2017, "cash_and_equivalents") not in figures  # only the note prints it
    assert "Derivatives designated" in before_notes(text.split("NOTES TO", 1)[0] + _NOTE_TABLE)  # no notes heading: all of it
    assert "Total liabilities      " not in before_notes(text)


def test_a_printed_total_liabilities_line_is_never_replaced_by_a_derived_one():
    balance = _BALANCE.replace("Total equity", "Total liabilities                 1,250     1,100\nTotal equity")
    text = "\f".join([_COVER, _INCOME, balance, _COVER])
    figures = {(fy, m): (v, s) for fy, m, v, s in text_financials(text, "acme.txt")}
    assert figures[(2017, "total_liabilities")][0] == 1250.0
    assert figures[(2017, "total_liabilities")][1].endswith(": total liabilities")


def test_the_total_with_noncontrolling_interests_is_preferred_to_the_parents_equity():
    """MGM prints its parent's "Total MGM Resorts International stockholders' equity" first and the
    total "Total stockholders' equity" after the noncontrolling interests: the total is read."""
    balance = _BALANCE.replace("Total equity                        700       650",
                               "Total Acme Widgets Inc. stockholders' equity   600   560\n"
                               "Noncontrolling interests                    100    90\n"
                               "Total stockholders' equity                  700   650")
    text = "\f".join([_COVER, _INCOME, balance, _COVER])
    figures = {(fy, m): (v, s) for fy, m, v, s in text_financials(text, "acme.txt")}
    assert figures[(2017, "total_equity")][0] == 700.0
    assert figures[(2017, "total_equity")][1].endswith(": total stockholders' equity")
