"""Text from files shown to people or written into generated code.

Names, ids and descriptions come from files nobody here wrote. Before such text reaches a terminal, a
table or a comment in generated source, every non-printable character (control characters such as ESC,
NUL, newlines, C1 controls, Unicode line separators, lone surrogates) is written as a backslash escape,
so it can neither move the cursor, retitle the window, nor end a comment line.
"""

from __future__ import annotations

_NAMED = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}


def printable(text: object, keep: str = "") -> str:
    """``text`` (made a str) with every non-printable character as a backslash escape; the characters
    in ``keep`` (e.g. "\\n" for a stream of lines) stay as they are."""
    text = text if isinstance(text, str) else str(text)
    if text.isprintable():
        return text
    out = []
    for ch in text:
        if ch.isprintable() or ch in keep:
            out.append(ch)
        elif ch in _NAMED:
            out.append(_NAMED[ch])
        else:
            code = ord(ch)
            out.append(f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}" if code < 0x10000
                       else f"\\U{code:08x}")
    return "".join(out)


#: a name from a file that a message echoes is cut to about this many characters
NAME_LIMIT = 80
#: in a one-line message, a run of more characters than this without a space (a name or a path from a
#: file, or a list of them) is cut in its middle: a path stays whole, a 100,000-character name does not
WORD_LIMIT = 300


def shown(name: object, limit: int = NAME_LIMIT) -> str:
    """A name from a file as a message shows it: printable (line breaks escaped like other controls)
    and, when longer than ``limit``, its head and tail with the number of characters of the whole."""
    text = printable(name)
    if len(text) <= limit:
        return text
    room = limit - 3  # head ... tail within limit: shown again, it stays as it is
    head, tail = text[: room * 2 // 3], text[len(text) - room // 3:]
    return f"{head}...{tail} ({len(text):,} characters)"


def one_line(text: object, word_limit: int = WORD_LIMIT) -> str:
    """``text`` as one printable line: line breaks and other controls escaped (a newline in a file name
    cannot break it), and each run of more than ``word_limit`` characters without a space cut in its
    middle (a 100,000-character name is shown by its ends)."""
    import re

    text = printable(text)
    if len(text) <= word_limit:
        return text
    return re.sub(rf"\S{{{word_limit + 1},}}", lambda m: shown(m.group(0), word_limit), text)


def error_line(exc: BaseException, limit: int = 500) -> str:
    """An exception as one printable line: the first non-empty line of its text (a library's message may
    begin with a line break; the project's own messages escape theirs, see one_line), cut at ``limit``;
    its type's name where it has no text."""
    first = next((line.strip() for line in str(exc).splitlines() if line.strip()), "")
    return printable(first[:limit]) if first else type(exc).__name__


def columns(text: str) -> int:
    """How many terminal columns ``text`` (printable) takes: CJK and other wide characters take two,
    combining marks none."""
    import unicodedata

    if text.isascii():
        return len(text)
    return sum(0 if unicodedata.combining(ch) else 2 if unicodedata.east_asian_width(ch) in "WF" else 1
               for ch in text)


def cut_to_columns(text: str, width: int, tail: str = "...") -> str:
    """``text`` cut so that it, with ``tail`` where it was cut, takes at most ``width`` columns."""
    if columns(text) <= width:
        return text
    room, out = width - columns(tail), []
    for ch in text:
        room -= columns(ch)
        if room < 0:
            break
        out.append(ch)
    return "".join(out) + tail


def natural_key(name: object) -> tuple:
    """A sort key that orders the numbers inside names by value: convgru_2 before convgru_10 (a plain
    sort gives convgru_1, convgru_10, convgru_2); case is ignored. Paths sort by their name."""
    import re

    text = getattr(name, "name", None) or str(name)
    return tuple((0, int(part), part) if part.isdigit() else (1, 0, part.casefold())
                 for part in re.split(r"(\d+)", text) if part)


def status_line(status: str, message: str) -> str:
    """A run's end in words: "status: message", but the message alone where it begins with the status
    ("stopped at epoch 5, step 40", never "stopped: stopped at epoch 5, step 40"); the status alone
    where there is no message."""
    if not message:
        return status
    if message.lower().startswith(status.lower().replace("_", " ")):
        return message
    return f"{status}: {message}"
