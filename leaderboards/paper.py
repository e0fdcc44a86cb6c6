"""The published ChiMed-GPT tables (the authors' README = paper v1), as data, with what is known
about each column: the item set and its size, the protocol, the averaging, and footnotes.

A regenerated table shows these rows as the published reference beside the rows it measures.
``tests/test_leaderboard.py`` recomputes every C-Eval and CMMLU figure from integer counts, so a
mistyped figure fails the suite.
"""

from __future__ import annotations

from dataclasses import dataclass

MODELS = ("GPT-3.5-Turbo", "GPT-4", "Ziya-v1", "Ziya-v2", "Baichuan", "Taiyi", "MedicalGPT (Z)", "MedicalGPT (B)", "ChiMed-GPT")

TABLE_A_COLUMNS = ("CCKS-2019", "ChiMST")  # few-shot NER, entity-level micro F1
TABLE_A = {
    "GPT-3.5-Turbo": (31.42, 32.15), "GPT-4": (41.37, 41.25), "Ziya-v1": (25.31, 22.26), "Ziya-v2": (27.84, 25.76),
    "Baichuan": (24.14, 21.20), "Taiyi": (30.90, 30.55), "MedicalGPT (Z)": (29.59, 28.12),
    "MedicalGPT (B)": (23.80, 26.16), "ChiMed-GPT": (40.82, 41.04),
}

TABLE_B_COLUMNS = ("C-Eval", "CMMLU", "MedQA", "B-1", "B-2", "R-1", "R-2", "R-L")
TABLE_B = {
    "GPT-3.5-Turbo": (56.58, 49.91, 44.50, 39.15, 32.85, 26.61, 7.31, 16.84),
    "GPT-4": (71.29, 69.55, 67.99, 33.61, 28.27, 26.51, 7.13, 16.63),
    "Ziya-v1": (36.59, 29.07, 12.50, 6.18, 5.77, 18.59, 3.94, 12.66),
    "Ziya-v2": (39.02, 49.06, 13.00, 38.41, 31.90, 26.91, 7.90, 18.67),
    "Baichuan": (41.46, 45.28, 13.00, 5.81, 5.25, 16.91, 3.01, 11.30),
    "Taiyi": (48.78, 45.20, 39.20, 11.73, 9.96, 21.76, 5.26, 15.46),
    "MedicalGPT (Z)": (48.78, 34.56, 25.99, 39.02, 32.35, 26.76, 8.10, 18.16),
    "MedicalGPT (B)": (39.02, 43.82, 18.50, 5.82, 5.26, 16.61, 2.94, 11.11),
    "ChiMed-GPT": (68.29, 52.92, 44.50, 44.58, 37.22, 27.11, 8.89, 19.86),
}

TABLE_C_COLUMNS = ("B-1", "B-2", "R-1", "R-2", "R-L")
TABLE_C = {
    "GPT-3.5-Turbo": (24.29, 20.17, 20.64, 8.39, 17.14), "GPT-4": (18.58, 15.76, 18.92, 6.62, 14.55),
    "Ziya-v1": (15.85, 11.75, 9.92, 3.04, 9.02), "Ziya-v2": (14.21, 10.99, 12.20, 4.45, 10.61),
    "Baichuan": (3.44, 1.61, 3.87, 0.34, 3.49), "Taiyi": (5.81, 4.67, 14.23, 4.55, 11.99),
    "MedicalGPT (Z)": (20.26, 16.42, 17.51, 5.42, 14.21), "MedicalGPT (B)": (3.94, 2.19, 4.34, 0.13, 3.50),
    "ChiMed-GPT": (33.14, 30.86, 43.43, 34.91, 42.16),
}

PUBLISHED = {"table-a": (TABLE_A_COLUMNS, TABLE_A), "table-b": (TABLE_B_COLUMNS, TABLE_B),
             "table-c": (TABLE_C_COLUMNS, TABLE_C)}

TABLE_TITLES = {
    "table-a": "Table A: few-shot NER, entity-level micro F1",
    "table-b": "Table B: QA, accuracy on C-Eval, CMMLU, MedQA; BLEU/ROUGE on ChiMed open QA",
    "table-c": "Table C: multi-turn dialogue (MC), generate the doctor's last turn",
}

#: Every published figure was obtained with the authors' own protocol (``../shared/PAPER.md``).
PUBLISHED_PROTOCOL = "paper"

# C-Eval val sizes of the paper's two subjects (41 items in all).
CEVAL_SUBJECT_SIZES = {"clinical_medicine": 22, "basic_medicine": 19}
CMMLU_ITEMS = 1166

#: The counts behind the exam figures: C-Eval k of 41 (the GPT rows: (right of 22, right of 19),
#: whose accuracies they average), CMMLU k of 1166. A figure is 100 k / n within 0.01 (one
#: figure, 43.82 = 511/1166 = 43.825..., is rounded down). Pinning k catches a mistyped figure
#: even where the typo lands on another k/1166.
EXAM_COUNTS: dict[str, dict[str, int | tuple[int, int]]] = {
    "C-Eval": {"GPT-3.5-Turbo": (11, 12), "GPT-4": (14, 15), "Ziya-v1": 15, "Ziya-v2": 16, "Baichuan": 17,
               "Taiyi": 20, "MedicalGPT (Z)": 20, "MedicalGPT (B)": 16, "ChiMed-GPT": 28},
    "CMMLU": {"GPT-3.5-Turbo": 582, "GPT-4": 811, "Ziya-v1": 339, "Ziya-v2": 572, "Baichuan": 528, "Taiyi": 527,
              "MedicalGPT (Z)": 403, "MedicalGPT (B)": 511, "ChiMed-GPT": 617},
}


@dataclass(frozen=True)
class PublishedColumn:
    """What is known about one published column.

    ``n`` is the item count (None: not published); ``averaging`` is ``items`` (micro, pooled),
    ``corpus`` (corpus-level micro) or ``subjects`` (macro); ``note`` a footnote for the whole
    column."""

    items: str
    n: int | None
    averaging: str
    note: str = ""


_BLEU_NOTE = ("which BLEU the published B-1/B-2 are is not stated; read as cumulative BLEU-1/BLEU-2 over "
              "space-padded characters (nltk corpus_bleu on strings), the paper protocol")
_QA = "ChiMed open-QA test set (not public; size not published)"
_MC = "MC (HET-MC) dialogue test set (size not published)"

COLUMNS: dict[tuple[str, str], PublishedColumn] = {
    ("table-a", "CCKS-2019"): PublishedColumn("CCKS-2019 test, first 200 records", 200, "corpus",
                                              "micro P/R/F1 over exact (entity, type) pairs per record"),
    ("table-a", "ChiMST"): PublishedColumn("ChiMST test, first 100 records", 100, "corpus",
                                           "micro P/R/F1 over exact (entity, type) pairs per record"),
    ("table-b", "C-Eval"): PublishedColumn("C-Eval val, clinical_medicine (22) + basic_medicine (19)", 41, "items",
                                           "open models: k/41; the GPT rows are per-subject means"),
    ("table-b", "CMMLU"): PublishedColumn("CMMLU test, seven medical subjects", CMMLU_ITEMS, "items",
                                          "every figure is k/1166"),
    ("table-b", "MedQA"): PublishedColumn("MedQA Mainland (MCMLE) test, a subset of unknown size", None, "items",
                                          "6 of 9 figures are exactly k/200; GPT-4, Taiyi and MedicalGPT (Z) are not"),
    ("table-b", "B-1"): PublishedColumn(_QA, None, "corpus", _BLEU_NOTE),
    ("table-b", "B-2"): PublishedColumn(_QA, None, "corpus", _BLEU_NOTE),
    ("table-b", "R-1"): PublishedColumn(_QA, None, "items", "F of the `rouge` package, averaged over pairs"),
    ("table-b", "R-2"): PublishedColumn(_QA, None, "items", "F of the `rouge` package, averaged over pairs"),
    ("table-b", "R-L"): PublishedColumn(_QA, None, "items", "F of the `rouge` package, averaged over pairs"),
    ("table-c", "B-1"): PublishedColumn(_MC, None, "corpus", _BLEU_NOTE),
    ("table-c", "B-2"): PublishedColumn(_MC, None, "corpus", _BLEU_NOTE),
    ("table-c", "R-1"): PublishedColumn(_MC, None, "items", "F of the `rouge` package, averaged over pairs"),
    ("table-c", "R-2"): PublishedColumn(_MC, None, "items", "F of the `rouge` package, averaged over pairs"),
    ("table-c", "R-L"): PublishedColumn(_MC, None, "items", "F of the `rouge` package, averaged over pairs"),
}

#: Footnotes carried by single published figures or rows.
FOOTNOTES = {
    "gpt-ceval": "per-subject mean, not k/41: 56.58 = (11/22 + 12/19)/2, 71.29 = (14/22 + 15/19)/2",
    "gpt-api": "through the API, 0-shot, with a system prompt, temperature 0.2, at most 256 tokens",
    "chimed-ner": "0-shot after fine-tuning on CCKS-2019 train (the baselines are 5-shot)",
}

#: (table, model, column or None for the whole row) -> footnote keys.
CELL_NOTES: dict[tuple[str, str, str | None], tuple[str, ...]] = {
    ("table-b", "GPT-3.5-Turbo", "C-Eval"): ("gpt-ceval",),
    ("table-b", "GPT-4", "C-Eval"): ("gpt-ceval",),
    ("table-a", "GPT-3.5-Turbo", None): ("gpt-api",),
    ("table-a", "GPT-4", None): ("gpt-api",),
    ("table-b", "GPT-3.5-Turbo", None): ("gpt-api",),
    ("table-b", "GPT-4", None): ("gpt-api",),
    ("table-c", "GPT-3.5-Turbo", None): ("gpt-api",),
    ("table-c", "GPT-4", None): ("gpt-api",),
    ("table-a", "ChiMed-GPT", None): ("chimed-ner",),
}


def published_value(table: str, model: str, column: str) -> float | None:
    cols, rows = PUBLISHED[table]
    if model not in rows or column not in cols:
        return None
    return rows[model][cols.index(column)]


def notes_for(table: str, model: str, column: str) -> tuple[str, ...]:
    """Footnote keys of one published figure (its own and its row's)."""
    return CELL_NOTES.get((table, model, None), ()) + CELL_NOTES.get((table, model, column), ())
