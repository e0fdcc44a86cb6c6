"""The published ChiMed-GPT tables (the authors' README = paper v1), as data.

A regenerated table shows these rows as the published reference beside the rows it measures.
"""

from __future__ import annotations

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
