"""A corpus of bad inputs for the API: images (generated here, or small files under ``files/``) and
strings. Every generator is deterministic, so a failure names the same bytes on every run.

``images``: truncated, corrupt, bombs, oversized, wrong formats, plus the good small WebP they are cut from.
``strings``: memos and titles (emoji, right-to-left, control characters, injection-shaped).
"""
