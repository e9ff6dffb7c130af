"""
Precompiled patterns, the gate's translation table and the cheap gate itself.

Speed comes from CPython's fast paths: ``in`` on a str (memchr for one character, a
skip search for longer needles) and regexes that begin with a literal, which ``re``
scans for before trying a match. A pattern that starts with a character class or a
lookaround is tried at every position (~20 ns a character), so exact patterns here
start with their literal prefix and check word boundaries with a lookbehind *after* it,
or run only inside small windows the gate pointed at.

Every repetition is bounded and no two adjacent pieces can match the same run of
characters in more than a bounded number of ways, so matching time stays linear.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Final

from llm_audit_log.scrub._keys import KEY_TAILS

__all__ = ["EMAIL_SIGNS", "TRANSLATION", "email_sign_in", "gate", "option_in", "translate"]

#: An e-mail's ``@`` as logs write it: plain, URL-encoded (once or twice, as in a logged
#: redirect URL) and as an HTML character reference (scraped pages, escaped LLM output).
EMAIL_SIGNS: Final = ("@", "%40", "%2540", "&#64;", "&#x40;", "&#X40;")


def email_sign_in(text: str) -> bool:
    """Whether *text* holds any of :data:`EMAIL_SIGNS` (one-character checks guard the rest)."""
    return "@" in text or ("%" in text and ("%40" in text or "%2540" in text)) or (
        "&" in text and ("&#64;" in text or "&#x40;" in text or "&#X40;" in text))


#: A ``-`` starting a word: a command-line option may follow (the start CLI_OPTION
#: takes). One regex call that skips to each ``-``.
_OPTION_START: Final = re.compile(r"-(?<![\w-]-)", re.ASCII)


def option_in(text: str, _search: Callable[[str], object] = _OPTION_START.search) -> bool:
    """
    Whether *text* may hold a command-line option.

    A ``-`` that starts a word (not one inside ``gpt-4o`` or ``--``), as
    :data:`CLI_OPTION` takes it; :func:`gate` makes the same check inline.
    """
    return _search(text) is not None


def _translation_table() -> bytes:
    table = bytearray(range(256))
    for code in range(ord("A"), ord("Z") + 1):
        table[code] = code + 32
    for char in b"0123456789":
        table[char] = ord("0")
    for char in b"-.()\t\"'":
        table[char] = ord(" ")
    table[ord("=")] = ord(":")
    table[ord("_")] = ord(":")
    return bytes(table)


#: ASCII bytes -> the gate's view: lower case, every digit ``0``, digit separators and
#: quotes a space, ``=`` and ``_`` a ``:``. One character in, one out, so positions carry
#: over.
TRANSLATION: Final = _translation_table()


def translate(text: str) -> str:
    """The gate's view of *text*, position for position (non-ASCII becomes ``?``)."""
    return text.encode("ascii", "replace").translate(TRANSLATION).decode("ascii")


#: Token prefixes ending in ``_`` as the translated text shows them (GitHub, Stripe).
_PREFIX_TAILS: Final = ("ghp", "gho", "ghu", "ghs", "ghr", "github:pat", "k:live", "k:test")


def _separator_pattern() -> str:
    tails = (*KEY_TAILS, "sig")
    alternatives = []
    # ``\ :`` is ``\":`` translated: a key inside a JSON string that is itself JSON.
    # "  :" is ``"key" :`` translated (Jackson's pretty printer puts a space before ':').
    for separator, names in ((":", tails), (":", _PREFIX_TAILS), (" :", tails), ("  :", tails),
                             ("\\ :", tails)):
        last = re.escape("".join(sorted({name[-1] for name in names})))
        by_width: dict[int, list[str]] = {}
        for name in names:
            by_width.setdefault(len(name) + len(separator), []).append(
                re.escape(name + separator))
        groups = "|".join("(?<=" + "|".join(forms) + ")" for _, forms in sorted(by_width.items()))
        # One character class first: most separators follow a digit or another letter.
        alternatives.append(f"(?<=[{last}]{re.escape(separator)})(?:{groups})")
    # Where the key is read from further back: after three or more spaces (an aligned
    # ``password      = ...``), after ``]`` (``os.environ["API_KEY"] =``, print_r) or
    # after Markdown (``**password**:``, ```api_key`:``).
    alternatives.append(r"(?<=[ \]*`]:)(?:(?<=   :)|(?<=\]:)|(?<=\] :)|(?<=\]  :)"
                        r"|(?<=\*\*:)|(?<=`:)|(?<=\*\* :)|(?<=` :))")
    return ":(?:" + "|".join(alternatives) + ")"


#: In the translated text, a separator (``:``, ``=``, ``_``) right after the tail of a
#: credential key name (or after ``]`` or three spaces, where the key is further back),
#: or the ``_`` ending a GitHub or Stripe token prefix. One regex
#: that starts with a literal: ``re`` skips to each ``:`` and tests the lookbehinds there.
KEY_SEPARATOR: Final = re.compile(_separator_pattern())
#: AWS key ids, Google keys, Azure account keys and Anthropic keys (which end in ``AA``).
CAPITAL_A: Final = re.compile(r"A(?:KIA|SIA|BIA|CCA|Iza|ccountKey=|A)")
SLACK_PREFIX: Final = re.compile(r"x(?:ox[abeoprs]|app)-")
#: In the translated text, digit runs worth a look: 9+ digits, or digits around a
#: separator (SSN, phone, grouped card, spaced IBAN), or five pairs (French phones).
DIGIT_NEEDLES: Final = ("000000000", "00 0000", "0 00 00 00 00")


def gate(
    text: str,
    tl: str,
    _capital_a: Callable[[str], object] = CAPITAL_A.search,
    _key_separator: Callable[[str], object] = KEY_SEPARATOR.search,
    _slack: Callable[[str], object] = SLACK_PREFIX.search,
    _option: Callable[[str], object] = _OPTION_START.search,
) -> bool:
    """
    Cheap over-approximation: False means no built-in detector can fire on *text*.

    Each check is a necessary condition of one or more detectors: an ``@`` in any of its
    :data:`EMAIL_SIGNS` spellings (email, URL credentials), ``J`` (JWT ``eyJ``, OpenAI's
    ``T3BlbkFJ``), ``+`` (E.164 phones), the literal prefixes of keys and tokens, digit
    runs, ``bearer``, and key names or token prefixes before a separator. The search
    functions are bound as defaults: locals are the fastest lookup. A regex call costs ~0.1
    us, an ``in`` ~0.05-0.15 us, a one character ``in`` ~0.015 us, so rare single characters
    guard the rest.
    """
    return (
        "@" in text or "J" in text or "+" in text
        or ("%" in text and ("%40" in text or "%2540" in text))
        or ("&" in text and ("&#64;" in text or "&#x40;" in text or "&#X40;" in text))
        or "-----BEGIN" in text or "hooks.slack.com" in text
        or ("A" in text and _capital_a(text) is not None)
        or ("x" in text and _slack(text) is not None)
        or "000000000" in tl or "00 0000" in tl or "0 00 00 00 00" in tl
        or "bearer" in tl
        or _key_separator(tl) is not None
        or _option(text) is not None  # option_in, inline
    )


# Exact patterns. Word boundaries are checked after the literal prefix (see module doc).
AWS_ACCESS_KEY_ID: Final = re.compile(
    r"A(?<![A-Za-z0-9]A)(?:KIA|SIA|BIA|CCA)[A-Z2-7]{16}(?![A-Za-z0-9])")
GOOGLE_API_KEY: Final = re.compile(r"AIza(?<![\w-]AIza)[\w-]{35}(?![\w-])", re.ASCII)
AZURE_ACCOUNT_KEY: Final = re.compile(r"AccountKey=([A-Za-z0-9+/]{86}==)")
AZURE_SHARED_KEY: Final = re.compile(r"(?i:SharedAccessKey)=([A-Za-z0-9+/]{42,43}=)")
AZURE_SAS_SIG: Final = re.compile(r"sig=(?<=[?&;\s\"']sig=)([A-Za-z0-9%+/=]{16,200})")
GITHUB_CLASSIC: Final = re.compile(r"gh[pousr]_(?<!\wgh[pousr]_)([A-Za-z0-9]{36})(?!\w)",
                                   re.ASCII)
GITHUB_FINE: Final = re.compile(
    r"github_pat_(?<!\wgithub_pat_)[A-Za-z0-9]{22}_[A-Za-z0-9]{59}(?!\w)", re.ASCII)
OPENAI_KEY: Final = re.compile(r"sk-(?<![\w-]sk-)[\w-]{20,300}(?![\w-])", re.ASCII)
OPENAI_MARKER: Final = "T3BlbkFJ"
ANTHROPIC_KEY: Final = re.compile(
    r"sk-ant-(?<![\w-]sk-ant-)(?:api03|admin01)-[\w-]{93}AA(?![\w-])", re.ASCII)
STRIPE_KEY: Final = re.compile(r"[rs]k_(?:live|test)_[A-Za-z0-9]{24,99}(?![A-Za-z0-9])")
SLACK_TOKEN: Final = re.compile(
    r"x(?<![A-Za-z0-9]x)(?:ox[abeoprs]|app)-[A-Za-z0-9-]{10,250}(?![A-Za-z0-9-])")
SLACK_WEBHOOK: Final = re.compile(
    r"hooks\.slack\.com/(?:services|workflows|triggers)/[A-Za-z0-9_/-]{8,300}")
JWT: Final = re.compile(
    r"eyJ(?<![\w-]eyJ)[\w-]{2,4000}\.eyJ[\w-]{2,8000}\.[\w-]{0,2000}(?![\w-])", re.ASCII)
PEM_BEGIN: Final = re.compile(
    r"-----BEGIN ((?:[A-Z0-9]{1,16} ){0,3}PRIVATE KEY(?: BLOCK)?)-----")
#: After ``scheme://``: the authority, which ends at the path, query, fragment or a space.
URL_AUTHORITY: Final = re.compile(r"[^/?#\s\"'<>`]{1,1024}")
#: After ``scheme://``: up to the end of the URL (a space or a quote).
URL_WIDE: Final = re.compile(r"[^\s\"'<>`]{1,1024}")
#: A host and optional port, then the end of the authority.
URL_HOST: Final = re.compile(r"[A-Za-z0-9.-]{1,253}(?::[0-9]{1,5})?(?![\w.@-])", re.ASCII)
URL_SCHEME_REVERSED: Final = re.compile(r"[A-Za-z0-9+.-]{0,30}[A-Za-z]")
BEARER: Final = re.compile(r"bearer[ \t]{1,16}([\w~+/.-]{8,4096}=*)", re.ASCII | re.IGNORECASE)
#: Letters of Latin scripts beyond ASCII (``é``, ``ü``, ``ø``, ``ł``; not the signs for
#: times and divide) and combining accents: European names in e-mail addresses (RFC 6531)
#: and IDN domains. Other scripts are left out on purpose: CJK text runs on without
#: spaces, and would be taken in.
_LATIN: Final = "\u00c0-\u00d6\u00d8-\u00f6\u00f8-\u024f\u0300-\u036f"
EMAIL_LOCAL_REVERSED: Final = re.compile(f"[A-Za-z0-9._%+{_LATIN}-]{{1,64}}")
EMAIL_DOMAIN: Final = re.compile(
    f"(?:[A-Za-z0-9{_LATIN}](?:[A-Za-z0-9{_LATIN}-]{{0,61}}[A-Za-z0-9{_LATIN}])?\\.){{1,8}}"
    f"[A-Za-z]{{2,24}}(?![A-Za-z0-9{_LATIN}])")

#: A run of digits and phone/card separators, not inside a word or a hex id. After a
#: letter and ``_`` or ``.`` it may start (``ssn_123-45-6789``), not after a digit and one.
NUMERIC: Final = re.compile(
    r"(?:(?<![A-Za-z0-9_+.])|(?<=[A-Za-z][._]))(?<![0-9A-Fa-f]{4}-)"
    r"\+?\(?[0-9][0-9 ().-]{0,46}(?<=[0-9])"
    r"(?!(?!(?:x|X|ext)[0-9])\w)",  # a phone's extension (x123, X12, ext5) may follow
    re.ASCII)
DIGIT_GROUP: Final = re.compile(r"[0-9]+")
#: After a candidate: the digit run goes on, so the length cap cut it.
RUN_GOES_ON: Final = re.compile(r"[ ().-]{1,2}\(?[0-9]")
IBAN: Final = re.compile(
    r"(?<![A-Za-z0-9])[A-Z]{2}[0-9]{2}(?: ?[A-Z0-9]{4}){2,7}(?: ?[A-Z0-9]{1,3})?(?![A-Za-z0-9])")

#: Key name before a separator, read backwards from the separator.
#: Up to 16 spaces (aligned ``key      = value``), and ``]`` closing a subscript
#: (``os.environ["API_KEY"] =``, ``$cfg['password'] =``, print_r's ``[password] =>``) or
#: Markdown closing a key (``**password**:``, ```api_key`:``).
KEY_REVERSED: Final = re.compile(
    r"[ \t]{0,16}(?:\][ \t]{0,3}|\*\*|`)?(?:[\"']\\?)?([\w.-]{1,64})", re.ASCII)
#: The word before a label's last word, read backwards: ``API Key:``, ``Secret Key:``.
LABEL_WORD_REVERSED: Final = re.compile(r"[ \t]([A-Za-z][A-Za-z0-9-]{0,30})", re.ASCII)
#: A key/value separator in its spellings: ``=``, ``:``, Ruby's ``=>``, Go's ``:=``; not
#: a comparison (``==``).
_SEPARATOR: Final = r"(?:=>|:=|[:=](?![>=]))"
#: Separator and value after a key name.
KEY_VALUE: Final = re.compile(
    r"""\\?["']?[ \t]{0,3}(?P<sep>""" + _SEPARATOR + r""")[ \t]{0,16}
    (?:(?:\*\*|__|`)[ \t]{0,4})?  # Markdown closing a label: **Password:** value
    (?:
        "(?P<dq>(?:[^"\\\r\n]|\\[^\r\n]){1,4096})"
      | \\"(?P<dqe>[^"\\\r\n]{1,4096})\\"
      | '(?P<sq>(?:[^'\\\r\n]|\\[^\r\n]){1,4096})'
      | (?P<bare>[^\s"'\\,;&]{1,4096})
    )""",
    re.VERBOSE,
)
#: An unquoted start that opens a string: a prefix (``b"``, ``rb'``, ``@"``, ``$'``) or a
#: call (``SecretStr("``, ``String::from("``, ``("``).
STRING_OPENER: Final = re.compile(r"[bBrRfFuU]{1,2}|[@$]|[\w.:]{0,40}\(")
#: The quoted string after a :data:`STRING_OPENER`: it is part of the value.
QUOTED: Final = re.compile(
    r"""(?:"(?:[^"\\\r\n]|\\[^\r\n]){0,4096}"|'(?:[^'\\\r\n]|\\[^\r\n]){0,4096}')""")
#: A command-line option and its value, as agents' shell tools log them: ``--password x``,
#: ``-u user:pass``. Starts with its literal ``-`` (see the module doc); the ``=`` form is
#: the key/value finder's.
CLI_OPTION: Final = re.compile(
    r"""-(?<![\w-]-)-?(?P<name>[A-Za-z][\w-]{0,40})[ \t]{1,4}
        (?P<value>"(?:[^"\\\r\n]|\\[^\r\n]){1,4096}"|'[^'\r\n]{1,4096}'
        |\\"[^"\\\r\n]{1,4096}\\"|\\'[^'\\\r\n]{1,4096}\\'|\$'[^'\r\n]{1,4096}'
        |(?!-)[^\s"'`;|&\\]{1,4096})""",
    re.VERBOSE | re.ASCII,
)
#: A password glued to its flag (mysql, sshpass): ``mysql -u root -pS3cret``, ``-p'S3cret'``.
GLUED_PASSWORD: Final = re.compile(
    r"""-p(?<![\w-]-p)("[^"\r\n]{1,4096}"|'[^'\r\n]{1,4096}'|[^\s"'`;|&\\]{1,4096})""",
    re.ASCII)
#: A separator and an opening quote: a subscript assigned a string literal.
QUOTE_AFTER_SEPARATOR: Final = re.compile(_SEPARATOR + r"""[ \t]{0,16}[@$bBrRfFuU]{0,2}\\?["'`]""")
#: The first word of an unquoted value after a separator.
ASSIGNED_WORD: Final = re.compile(_SEPARATOR + r"[ \t]{0,16}([^\s;,]{1,200})")
#: The rest of a line (an unquoted Cookie header's every pair).
LINE_REST: Final = re.compile(r"[^\r\n]{1,4096}")
#: Authorization header value: optional scheme word, then the rest of the value.
AUTH_VALUE: Final = re.compile(
    r"""\\?["']?[ \t]{0,3}""" + _SEPARATOR + r"""[ \t]{0,16}(?P<q>[bBrRfFuU@$]{0,2}\\?["'])?
        (?:(?P<scheme>[A-Za-z][\w-]{0,30})[ \t]{1,4})?
        (?P<value>[^\r\n"'\\]{1,4096})""",
    re.VERBOSE | re.ASCII,
)
AWS_SECRET_SHAPE: Final = re.compile(r"[A-Za-z0-9/+]{40}")
HEX_ONLY: Final = re.compile(r"[0-9a-fA-F]+")

#: IP addresses do not touch ``[`` or ``]`` either: a marker next to one must not change
#: the match (scrubbing twice changes nothing).
IPV4: Final = re.compile(
    r"(?<![\w.\]])(?:[0-9]{1,3}\.){3}[0-9]{1,3}(?![\w.\[])", re.ASCII)
IPV6: Final = re.compile(
    r"(?<![\w:.\]])[0-9A-Fa-f]{0,4}(?::[0-9A-Fa-f]{0,4}){2,7}(?![\w:.\[])", re.ASCII)
IP_VERSION_CONTEXT: Final = re.compile(r"(?:\bv|version[ :=]{1,3})$", re.IGNORECASE)
