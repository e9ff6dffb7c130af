"""
Validators that turn a shape match into a finding: checksums, prefix tables, decoders.

Every function takes the candidate text and returns a bool; none raises on odd input
(the scrubber fails closed if one ever does). Tables are the public rules, trimmed to
what a log line needs.
"""

from __future__ import annotations

import base64
import binascii
import json
import zlib
from typing import Final
from urllib.parse import unquote

__all__ = [
    "card_ok",
    "github_checksum_ok",
    "iban_ok",
    "jwt_ok",
    "luhn_ok",
    "nanp_ok",
    "phone_e164_ok",
    "sas_signature_ok",
    "ssn_ok",
]

#: Characters of one IBAN per country (ISO 13616 registry).
IBAN_LENGTHS: Final[dict[str, int]] = {
    "AD": 24, "AE": 23, "AL": 28, "AT": 20, "AZ": 28, "BA": 20, "BE": 16, "BG": 22,
    "BH": 22, "BR": 29, "BY": 28, "CH": 21, "CR": 22, "CY": 28, "CZ": 24, "DE": 22,
    "DK": 18, "DO": 28, "EE": 20, "EG": 29, "ES": 24, "FI": 18, "FO": 18, "FR": 27,
    "GB": 22, "GE": 22, "GI": 23, "GL": 18, "GR": 27, "GT": 28, "HR": 21, "HU": 28,
    "IE": 22, "IL": 23, "IQ": 23, "IS": 26, "IT": 27, "JO": 30, "KW": 30, "KZ": 20,
    "LB": 28, "LC": 32, "LI": 21, "LT": 20, "LU": 20, "LV": 21, "LY": 25, "MC": 27,
    "MD": 24, "ME": 22, "MK": 19, "MR": 27, "MT": 31, "MU": 30, "NL": 18, "NO": 15,
    "PK": 24, "PL": 28, "PS": 29, "PT": 25, "QA": 29, "RO": 24, "RS": 22, "SA": 24,
    "SC": 31, "SD": 18, "SE": 24, "SI": 19, "SK": 24, "SM": 27, "ST": 25, "SV": 28,
    "TL": 23, "TN": 24, "TR": 26, "UA": 29, "VA": 22, "VG": 24, "XK": 20,
}

#: Digits of the national significant number per E.164 country code (ITU-T E.164 plans).
#: Codes missing here are accepted at E.164's own 8-15 total digits.
PHONE_NATIONAL_LENGTHS: Final[dict[str, frozenset[int]]] = {
    "1": frozenset({10}), "7": frozenset({10}), "20": frozenset({9, 10}),
    "27": frozenset({9}), "30": frozenset({10}), "31": frozenset({9}),
    "32": frozenset({8, 9}), "33": frozenset({9}), "34": frozenset({9}),
    "36": frozenset({8, 9}), "39": frozenset(range(6, 12)), "40": frozenset({9}),
    "41": frozenset({9}), "43": frozenset(range(7, 14)), "44": frozenset({9, 10}),
    "45": frozenset({8}), "46": frozenset(range(7, 14)), "47": frozenset({8}),
    "48": frozenset({9}), "49": frozenset(range(6, 14)), "52": frozenset({10}),
    "55": frozenset({10, 11}), "61": frozenset({9}), "62": frozenset(range(8, 13)),
    "63": frozenset({10}), "64": frozenset({8, 9, 10}), "65": frozenset({8}),
    "81": frozenset({9, 10}), "82": frozenset({8, 9, 10}), "86": frozenset({10, 11}),
    "90": frozenset({10}), "91": frozenset({10}), "351": frozenset({9}),
    "353": frozenset({7, 8, 9}), "358": frozenset(range(5, 13)), "971": frozenset({8, 9}),
    "972": frozenset({8, 9}),
}

_BASE62_GITHUB: Final = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
#: The same digits with the cases swapped (Go's math/big order); accepted as well, since
#: published descriptions of GitHub's checksum disagree on the order.
_BASE62_SWAPPED: Final = "0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
_GITHUB_CHECKSUM_LEN: Final = 6
_SAS_SIGNATURE_BYTES: Final = 32  # HMAC-SHA256
_DIGITS: Final = frozenset("0123456789")


def luhn_ok(digits: str) -> bool:
    """Luhn (mod 10) check over a string of ASCII digits."""
    total = 0
    for index, char in enumerate(reversed(digits)):
        value = ord(char) - 48
        if index & 1:
            value *= 2
            if value > 9:
                value -= 9
        total += value
    return total % 10 == 0


def card_ok(digits: str) -> bool:
    """Issuer prefix, length for that issuer, and Luhn (Luhn alone passes 1 number in 10)."""
    length = len(digits)
    if not 13 <= length <= 19 or not _DIGITS.issuperset(digits):
        return False
    first = digits[0]
    two = int(digits[:2])
    four = int(digits[:4])
    if first == "4":
        fits = length in (13, 16, 19)  # Visa
    elif 51 <= two <= 55 or 2221 <= four <= 2720:
        fits = length == 16  # Mastercard
    elif two in (34, 37):
        fits = length == 15  # American Express
    elif four == 6011 or two == 65 or 644 <= int(digits[:3]) <= 649 or 3528 <= four <= 3589:
        fits = 16 <= length <= 19  # Discover, JCB
    else:
        fits = False
    return fits and luhn_ok(digits)


def ssn_ok(area: str, group: str, serial: str) -> bool:
    """US SSN rules: area not 000, 666 or 900-999; group not 00; serial not 0000."""
    return area not in {"000", "666"} and area[0] != "9" and group != "00" and serial != "0000"


def nanp_ok(national: str) -> bool:
    """NANP number (10 digits): NPA and NXX start 2-9 and the NPA is not an N11 code."""
    return (len(national) == 10 and national[0] in "23456789" and national[3] in "23456789"
            and national[1:3] != "11")


def phone_e164_ok(digits: str) -> bool:
    """E.164 digits (country code + national number) checked against the length table."""
    if not 8 <= len(digits) <= 15:
        return False
    if digits[0] == "1":
        return nanp_ok(digits[1:])
    if digits[0] == "0":
        return False
    for size in (1, 2, 3):
        lengths = PHONE_NATIONAL_LENGTHS.get(digits[:size])
        if lengths is not None:
            return len(digits) - size in lengths
    return True


def iban_ok(compact: str) -> bool:
    """Length for the country and ISO 7064 mod 97 == 1 (spaces already removed)."""
    if IBAN_LENGTHS.get(compact[:2]) != len(compact) or not compact.isascii():
        return False
    rearranged = compact[4:] + compact[:4]
    number = "".join(str(int(char, 36)) for char in rearranged)
    return int(number) % 97 == 1


def _base62(value: int, alphabet: str) -> str:
    chars = []
    while value:
        value, rest = divmod(value, 62)
        chars.append(alphabet[rest])
    return "".join(reversed(chars)).rjust(_GITHUB_CHECKSUM_LEN, "0")


def github_checksum_ok(body: str) -> bool:
    """Classic GitHub token body (36 chars): last 6 are base62(CRC32 of the 30 before)."""
    entropy, checksum = body[:-_GITHUB_CHECKSUM_LEN], body[-_GITHUB_CHECKSUM_LEN:]
    crc = zlib.crc32(entropy.encode("ascii"))
    return checksum in (_base62(crc, _BASE62_GITHUB), _base62(crc, _BASE62_SWAPPED))


def _b64url_json(segment: str) -> object:
    raw = base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4))
    return json.loads(raw)


def jwt_ok(token: str) -> bool:
    """Header and payload base64url-decode to JSON objects and the header names ``alg``."""
    parts = token.split(".")
    if len(parts) != 3:
        return False
    try:
        header = _b64url_json(parts[0])
        payload = _b64url_json(parts[1])
    except (ValueError, binascii.Error):
        return False
    return isinstance(header, dict) and "alg" in header and isinstance(payload, dict)


def sas_signature_ok(value: str) -> bool:
    """Azure SAS ``sig=``: URL-encoded base64 of an HMAC-SHA256 (32 bytes)."""
    try:
        raw = base64.b64decode(unquote(value), validate=True)
    except (ValueError, binascii.Error):
        return False
    return len(raw) == _SAS_SIGNATURE_BYTES
