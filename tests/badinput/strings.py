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
    # a right-to-left mark and an isolate (RLI ... PDI): how right-to-left writing embeds other text
    "rtl_marks_and_isolates": "\u05e9\u05dc\u05d1 \u2067\u05d1\u05d3\u05d9\u05e7\u05d4\u2069 \u200fv2",
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


# Refused with 422 naming the character: explicit embeddings and overrides make a memo display in another
# order than it is stored, e.g. "approve" on screen for text that reads otherwise (Trojan Source).
BIDI_OVERRIDE_MEMOS = {
    "right_to_left_override": "Invoice total \u202e0001\u202c USD",
    "left_to_right_embedding": "\u202aembedded\u202c text",
    "left_to_right_override": "\u202dforced order",
}


def injection_strings() -> list[str]:
    """SQL, script, template, shell and path shapes: stored and returned verbatim, never executed."""
    return [line for line in (FILES / "injection.txt").read_text(encoding="utf-8").splitlines() if line]


# A memo far past the documented limit (WORKPROOF_MAX_MEMO_CHARS, 2000 by default).
LONG_MEMO = "a" * 10_000
