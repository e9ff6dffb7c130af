"""
Number-shaped PII: US SSNs, payment cards, phone numbers and IBANs.

Digits are everywhere in log lines (timestamps, counts, ids), so a pattern scanning the
whole string would be slow and noisy. The gate's translated view (every digit ``0``,
every separator a space) says where a long digit run is; only a small window around
each such place is matched, and every candidate is validated (SSN rules, issuer prefix
and Luhn, NANP or E.164 length table, IBAN mod 97) before it counts.
"""

from __future__ import annotations

from typing import Final

from llm_audit_log.scrub import _patterns as p
from llm_audit_log.scrub._validators import (
    card_ok,
    iban_ok,
    nanp_ok,
    phone_e164_ok,
    ssn_ok,
)

__all__ = ["find_numeric"]

Span = tuple[int, int, str]
#: A window reaches this far on either side of a gate hit (the hit lies inside the
#: candidate, near its start).
_REACH: Final = 24
#: Longest candidate: 49 characters for a number, 42 for a spaced IBAN.
_LONGEST: Final = 50
#: Most digit groups one phone number or card is written in (``+33 (0)1 23 45 67 89``).
_MAX_GROUPS: Final = 7
_CARD_SEPARATORS: Final = frozenset({" ", "-"})


def find_numeric(text: str, tl: str, out: list[Span]) -> None:
    """Append SSN, card, phone and IBAN spans found around the digit runs in *text*."""
    hits = _Hits(text, tl)
    position = 0
    length = len(text)
    while True:
        hit = hits.next(position)
        if hit == -1:
            return
        low = max(position, hit - _REACH)
        high = min(length, hit + _REACH)
        end = min(length, high + _LONGEST)
        last = high
        start = low
        while True:
            match = p.NUMERIC.search(text, start, end)
            if match is None or match.start() >= high:
                break
            begin = match.start()
            start = _classify(match.group(), begin, out,
                              cut=p.RUN_GOES_ON.match(text, match.end()) is not None,
                              glued=begin > 0 and text[begin - 1] in "._")
            last = max(last, start)
        if not text[low:end].islower():  # an IBAN needs capitals
            for match in p.IBAN.finditer(text, low, end):
                if match.start() >= high:
                    break
                if iban_ok(match.group().replace(" ", "")):
                    out.append((match.start(), match.end(), "IBAN"))
                last = max(last, match.end())
        position = last


class _Hits:
    """Next gate hit at or after a position; each needle is searched forward only once."""

    __slots__ = ("next_at", "text", "tl")

    def __init__(self, text: str, tl: str) -> None:
        self.text = text
        self.tl = tl
        #: Needle (or "+") -> its next occurrence at or after the last position asked;
        #: -1 once exhausted, -2 before the first search.
        self.next_at = dict.fromkeys((*p.DIGIT_NEEDLES, "+"), -2)

    def next(self, position: int) -> int:
        best = -1
        for needle, known in self.next_at.items():
            index = known
            if index == -1:
                continue
            if index < position:
                index = self._find(needle, position)
                self.next_at[needle] = index
            if index != -1 and (best == -1 or index < best):
                best = index
        return best

    def _find(self, needle: str, position: int) -> int:
        if needle != "+":
            return self.tl.find(needle, position)
        plus = self.text.find("+", position)
        while plus != -1 and not self.tl.startswith(("0", " 0", "  0"), plus + 1):
            plus = self.text.find("+", plus + 1)
        return plus


def _classify(candidate: str, offset: int, out: list[Span], *, cut: bool,
              glued: bool = False) -> int:
    """
    Find SSNs, cards and phones among the digit groups of one candidate.

    Windows of up to six consecutive groups are tried, longest first, from each group
    on. Returns where to look next: the candidate's end, or, when the length cap *cut*
    the run short, the group from which windows may reach past the cut. A candidate
    *glued* to a word by ``_`` or ``.`` (``ssn_123-45-6789``) may be a dashed SSN or a
    card, never a phone: ``backup_2024-01-05-10-30-00`` is a date and time.
    """
    groups = [(m.start(), m.end()) for m in p.DIGIT_GROUP.finditer(candidate)]
    count = len(groups)
    first = 0
    resume = 1
    while first < count:
        for last in range(min(count, first + _MAX_GROUPS), first, -1):
            # Glued to the word is the token the candidate starts in: up to its first space.
            kind = _kind(candidate, groups[first:last], plus=first == 0 and candidate[0] == "+",
                         glued=glued and " " not in candidate[:groups[first][0]])
            if kind is not None:
                start = groups[first][0]
                if kind == "PHONE" and start and candidate[start - 1] in "(+":
                    start -= 1
                    if start and candidate[start - 1] == "+":
                        start -= 1
                out.append((offset + start, offset + groups[last - 1][1], kind))
                first = resume = last
                break
        else:
            first += 1
    if not cut:
        return offset + len(candidate)
    resume = max(resume, count - _MAX_GROUPS + 1)
    return offset + (groups[resume][0] if resume < count else len(candidate))


def _kind(candidate: str, groups: list[tuple[int, int]], *, plus: bool,
          glued: bool) -> str | None:
    sizes = [end - start for start, end in groups]
    total = sum(sizes)
    count = len(sizes)
    ssn_shape = sizes == [3, 2, 4] and not (glued and " " in candidate)
    # Digits after a decimal point are a fraction (a score printed as 0.4111111111111111).
    card_shape = 13 <= total <= 19 and not plus and (
        count == 1 or (min(sizes) >= 3 and max(sizes) <= 6)) and not (
        groups[0][0] and candidate[groups[0][0] - 1] == ".")
    phone_shape = not glued and ((plus and 8 <= total <= 15) or (count > 1 and (
        sizes in ([3, 3, 4], [1, 3, 3, 4])
        or (candidate[groups[0][0]] == "0" and 2 <= sizes[0] <= 5 and 10 <= total <= 11
        and min(sizes) >= 2))))
    if not (ssn_shape or card_shape or phone_shape):  # most windows stop here, cheaply
        return None
    parts = [candidate[start:end] for start, end in groups]
    digits = "".join(parts)
    separators = [candidate[groups[i][1]:groups[i + 1][0]] for i in range(count - 1)]
    if (ssn_shape and separators[0] == separators[1] and separators[0] in ("-", " ")
            and ssn_ok(parts[0], parts[1], parts[2])):
        return "US_SSN"
    if (card_shape and all(sep in _CARD_SEPARATORS for sep in separators)
            and card_ok(digits)):
        return "CARD_NUMBER"
    if phone_shape and all(len(sep) <= 2 for sep in separators) and _phone_ok(
            _without_trunk_zero(candidate, groups, digits) if plus else digits, sizes,
            plus=plus):
        return "PHONE"
    return None


def _without_trunk_zero(candidate: str, groups: list[tuple[int, int]], digits: str) -> str:
    """``+44 (0)20 7946 0958``: the ``(0)`` is the national trunk prefix, not E.164."""
    for start, end in groups[1:3]:
        if candidate[start - 1:end + 1] == "(0)":
            skipped = sum(e - s for s, e in groups if s < start)
            return digits[:skipped] + digits[skipped + 1:]
    return digits


def _phone_ok(digits: str, sizes: list[int], *, plus: bool) -> bool:
    if plus:
        return phone_e164_ok(digits)
    if sizes == [3, 3, 4] and digits[0] == "0":
        # A trunk prefix, not NANP: 010 123 4567 (NL), 021 123 4567 (NZ); an area code
        # follows it, never another 0.
        return digits[1] != "0"
    if sizes in ([3, 3, 4], [1, 3, 3, 4]):
        national = digits if len(digits) == 10 else digits[1:]
        return (len(digits) == 10 or digits[0] == "1") and nanp_ok(national)
    # Trunk-prefix national numbers: 020 7946 0958, 01 23 45 67 89, 030 1234567.
    return True
