"""Free text people write (memos, reasons, notes) and the one set of rules it meets, wherever it is
written: the agent checks a memo when it is set, the API and the pages when it arrives, the workflows when
a reason reaches them.

Any language, emoji and right-to-left text are fine. Refused: control characters (but tab and newline),
lone surrogates,
and the bidirectional embeddings and overrides (LRE, RLE, PDF, LRO, RLO), which make text display in
another order than it is stored ("Trojan Source"): a memo could read one way to the client and another to
support. Direction marks (U+200E, U+200F) and isolates (U+2066-U+2069) stay allowed."""

from __future__ import annotations

import unicodedata

from domain.errors import InvalidInput

MAX_MEMO_CHARS = 2000  # a capture's or a manual entry's memo
MAX_REASON_CHARS = 2000
MAX_TITLE_CHARS = 200  # a contract's title
MAX_NAME_CHARS = (
    200  # a person's name  # a dispute's reason, an answer's or a resolution's note, an extension's reason
)
BIDI_OVERRIDES = frozenset("\u202a\u202b\u202c\u202d\u202e")


def check_text(value: str, *, what: str, max_chars: int) -> str:
    """``value`` in NFC and stripped, or :class:`InvalidInput` saying what to remove."""
    value = unicodedata.normalize("NFC", value or "")
    if len(value) > max_chars:
        raise InvalidInput(f"{what} is {len(value)} characters; the limit is {max_chars}", "text_too_long")
    for char in value:
        category = unicodedata.category(char)
        if category == "Cs":  # half of a UTF-16 pair: no text, and no database can store it
            raise InvalidInput(
                f"{what} contains the lone surrogate U+{ord(char):04X}: send the text as proper UTF-8",
                "text_invalid_character",
            )
        if category == "Cc" and char not in "\t\n":
            raise InvalidInput(
                f"{what} contains the control character U+{ord(char):04X}: remove it",
                "text_invalid_character",
            )
        if char in BIDI_OVERRIDES:
            raise InvalidInput(
                f"{what} contains the bidirectional override U+{ord(char):04X}, which makes text display "
                "in another order than it is written: remove it (direction marks U+200E/U+200F are fine)",
                "text_invalid_character",
            )
    return value.strip()


def clean_memo(memo: str, max_chars: int = MAX_MEMO_CHARS) -> str:
    """A memo as it is stored (a deployment may set a lower limit than :data:`MAX_MEMO_CHARS`)."""
    return check_text(memo, what="memo", max_chars=max_chars)
