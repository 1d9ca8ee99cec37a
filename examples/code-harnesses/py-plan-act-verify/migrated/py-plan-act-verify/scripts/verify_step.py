#!/usr/bin/env python3
"""`verify_step`, extracted verbatim by nlah migrate from agent/verify.py:8.

Usage: python3 scripts/verify_step.py PATH MIN_CHARS — the arguments go to `verify_step` in order, as strings; exits 0 when it
returns a true value (or None), 1 when it returns a false value or raises.
"""

import sys as _nlah_sys

from pathlib import Path
MIN_CHARS = 1


def verify_step(path, min_chars=MIN_CHARS):
    """An act step must leave a non-empty artifact without placeholders."""
    p = Path(path)
    if not p.is_file():
        return False, f"{path} does not exist"
    text = p.read_text(errors="replace").strip()
    if len(text) < int(min_chars):
        return False, f"{path} is empty"
    if "TODO" in text or "FIXME" in text:
        return False, f"{path} still has a TODO or FIXME"
    return True, "ok"


def _nlah_main(argv):
    try:
        result = verify_step(*argv)
    except Exception as e:  # the check failed: say why, exit 1
        print(f"verify_step: {type(e).__name__}: {e}", file=_nlah_sys.stderr)
        return 1
    ok = result
    if isinstance(result, (tuple, list)) and result and isinstance(result[0], bool):
        ok = result[0]
    if result is not None:
        print(result)
    return 0 if (result is None or ok) else 1


if __name__ == "__main__":
    _nlah_sys.exit(_nlah_main(_nlah_sys.argv[1:]))
