"""Rewrite the quotes of PEP 701 f-strings (Python 3.12: ``f'{d['k']}'``) so Python 3.11's ``ast``
parses the file, keeping every byte but those quotes (so every line number).

Why not libcst: it does the same rewrite (``code._requote_libcst``, kept as the fallback) but parses
the whole module into a concrete tree first, ~0.5 s for one 2,000-line decoded record; this scanner
reads the text once. The rule is libcst's, applied innermost first: an f-string whose replacement
fields contain its own quote gets the first of ``'``, ``"``, ``'''``, ``\"\"\"`` that appears in
none of its fields (nor, unescaped, in its body) and with which the f-string parses on its own.
``None`` means the scanner did not understand the text; the caller then asks libcst.
"""
from __future__ import annotations

import ast

_PREFIXES = {"r", "u", "b", "f", "br", "rb", "fr", "rf"}
_QUOTES = ("'", '"', "'''", '"""')
_OPEN = "([{"
_CLOSE = ")]}"


class _Unsure(Exception):
    """Something this scanner does not model: let libcst decide."""


def requote(text: str) -> str | None:
    try:
        return _Scanner(text).module()
    except (_Unsure, IndexError, RecursionError):
        return None


class _Scanner:
    def __init__(self, text: str):
        self.s = text
        self.n = len(text)

    # --- plain code ------------------------------------------------------------------------
    def module(self) -> str:
        s, n = self.s, self.n
        out: list[str] = []
        i = last = 0
        while i < n:
            c = s[i]
            if c == "#":
                j = s.find("\n", i)
                i = n if j < 0 else j
            elif c == "'" or c == '"':
                i = self._plain_string(i, i)
            elif c.isalnum() or c == "_":
                j = i
                while j < n and (s[j].isalnum() or s[j] == "_"):
                    j += 1
                word = s[i:j].lower()
                if j < n and s[j] in "'\"" and word in _PREFIXES and not word[0].isdigit():
                    if "f" in word:
                        out.append(s[last:i])
                        i, txt = self._fstring(i, j)
                        out.append(txt)
                        last = i
                    else:
                        i = self._plain_string(i, j)
                else:
                    i = j
            elif c == "\\":
                i += 2
            else:
                i += 1
        out.append(s[last:])
        return "".join(out)

    def _quote_at(self, q: int) -> str:
        s = self.s
        return s[q:q + 3] if s[q:q + 3] in ("'''", '"""') else s[q]

    def _plain_string(self, start: int, q: int) -> int:
        """End (exclusive) of the non-f string whose quote is at ``q``."""
        s, n = self.s, self.n
        quote = self._quote_at(q)
        i = q + len(quote)
        while i < n:
            c = s[i]
            if c == "\\":
                i += 2
                continue
            if s.startswith(quote, i):
                return i + len(quote)
            if c == "\n" and len(quote) == 1:
                raise _Unsure("newline in a one-line string")
            i += 1
        raise _Unsure("unterminated string")

    # --- f-strings -----------------------------------------------------------------------------
    def _fstring(self, start: int, q: int) -> tuple[int, str]:
        """(end, rewritten text) of the f-string whose prefix starts at ``start``, quote at ``q``."""
        s, n = self.s, self.n
        prefix = s[start:q]
        raw = "r" in prefix.lower()
        quote = self._quote_at(q)
        i = q + len(quote)
        body: list[str] = []
        fields: list[str] = []
        last = i
        while True:
            if i >= n:
                raise _Unsure("unterminated f-string")
            c = s[i]
            if s.startswith(quote, i):
                break
            if c == "\\":
                if not raw and s.startswith("N{", i + 1):  # \N{NAME}: an escape, not a field
                    i = s.index("}", i) + 1
                elif s.startswith("{", i + 1):  # a backslash does not escape a field's brace
                    i += 1
                else:
                    i += 2
            elif c == "{":
                if s.startswith("{{", i):
                    i += 2
                    continue
                body.append(s[last:i])
                i, field = self._field(i)
                body.append(field)
                fields.append(field)
                last = i
            elif c == "\n" and len(quote) == 1:
                raise _Unsure("newline in a one-line f-string")
            else:
                i += 1
        body.append(s[last:i])
        end = i + len(quote)
        inner = "".join(body)
        exprs = "".join(fields)
        if quote not in exprs:
            return end, prefix + quote + inner + quote
        for alt in _QUOTES:
            if alt[0] in exprs or alt in inner.replace("\\" + alt[0], ""):
                continue
            cand = f"{prefix.lower()}{alt}{inner}{alt}"  # libcst's FormattedString.prefix is lower case
            try:
                ast.parse(cand, mode="eval")
            except SyntaxError:
                continue
            except Exception as exc:  # libcst's rewrite gave up on the whole file here
                raise _Unsure(str(exc)) from exc
            return end, cand
        return end, prefix + quote + inner + quote

    def _field(self, i: int) -> tuple[int, str]:
        """(end, rewritten text) of the replacement field ``{…}`` opening at ``i``."""
        s, n = self.s, self.n
        out: list[str] = []
        last = i
        i += 1
        depth = 0
        while True:
            if i >= n:
                raise _Unsure("unterminated replacement field")
            c = s[i]
            if c == "'" or c == '"':
                i = self._plain_string(i, i)
            elif c.isalnum() or c == "_":
                j = i
                while j < n and (s[j].isalnum() or s[j] == "_"):
                    j += 1
                word = s[i:j].lower()
                if j < n and s[j] in "'\"" and word in _PREFIXES:
                    if "f" in word:
                        out.append(s[last:i])
                        i, txt = self._fstring(i, j)
                        out.append(txt)
                        last = i
                    else:
                        i = self._plain_string(i, j)
                else:
                    i = j
            elif c in _OPEN:
                depth += 1
                i += 1
            elif c in _CLOSE:
                if depth == 0:
                    if c != "}":
                        raise _Unsure("unbalanced brackets in a replacement field")
                    i += 1
                    out.append(s[last:i])
                    return i, "".join(out)
                depth -= 1
                i += 1
            elif c == ":" and depth == 0:
                out.append(s[last:i])
                i, spec = self._spec(i)
                out.append(spec)
                return i, "".join(out)
            elif c == "#" or c == "\\":
                raise _Unsure("comment or backslash in a replacement field")
            else:
                i += 1

    def _spec(self, i: int) -> tuple[int, str]:
        """(end, rewritten text) from a format spec's ``:`` through the field's closing ``}``."""
        s, n = self.s, self.n
        out: list[str] = []
        last = i
        i += 1
        while True:
            if i >= n:
                raise _Unsure("unterminated format spec")
            c = s[i]
            if c == "{":
                out.append(s[last:i])
                i, field = self._field(i)
                out.append(field)
                last = i
            elif c == "}":
                i += 1
                out.append(s[last:i])
                return i, "".join(out)
            elif c == "\\" or c == "'" or c == '"' or c == "\n":
                raise _Unsure("quote, newline or backslash in a format spec")
            else:
                i += 1
