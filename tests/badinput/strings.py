"""Strings for memos and titles: what must come back exactly as sent, and what must be refused."""

from __future__ import annotations

import unicodedata
from pathlib import Path

FILES = Path(__file__).parent / "files"

# Kept verbatim: any language, emoji (with skin tones and ZWJ sequences), right-to-left text, newlines.
INTACT_MEMOS = {
    "emoji": "Fixing the export 🐛➡️✅ with 👩🏽‍💻 and 🇵🇹",
    "arabic": "إصلاح تصدير الفواتير",
    "hebrew": "תיקון ייצוא חשבוניות (invoice export) שלב 2",
    "mixed_rtl_ltr": "Review: مراجعة الكود for PR #42 — שלב ב",
    "cjk": "請求書のエクスポートを修正 · 修复发票导出",
    "combining": unicodedata.normalize("NFC", "Cafe\u0301 déjà vu, naïve résumé"),
    "tab_and_newline": "line one\tcolumn\nline two",
}

# Refused with 422 naming the character: they garble logs, terminals and CSV exports.
CONTROL_MEMOS = {
    "nul": "before\x00after",
    "bell": "ding\x07",
    "escape_sequence": "\x1b[2J\x1b[31mred\x1b[0m",
    "carriage_return": "overwrite\rme",
    "delete": "rub\x7fout",
    "c1_control": "next\x85line",
}


def injection_strings() -> list[str]:
    """SQL, script, template, shell and path shapes: stored and returned verbatim, never executed."""
    return [line for line in (FILES / "injection.txt").read_text(encoding="utf-8").splitlines() if line]


# A memo far past the documented limit (WORKPROOF_MAX_MEMO_CHARS, 2000 by default).
LONG_MEMO = "a" * 10_000
