"""
Built-in detectors, grouped by the cheap check that lets them run.

A finder is ``find(text, tl, out)``: *tl* is the gate's translated view of *text* (same
positions), and each finding is appended to *out* as ``(start, end, kind)``. Finders
are grouped into families keyed by one gate check each (:data:`FAMILIES`); the scrubber
evaluates each family's check once and runs only the finders behind the checks that
fired, so a finder never repeats the test that admitted it. A finder's own literal test
only separates the members of a family.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable
from typing import Final
from urllib.parse import urlsplit

from llm_audit_log.scrub import _patterns as p
from llm_audit_log.scrub._keys import normalise_key
from llm_audit_log.scrub._numbers import find_numeric
from llm_audit_log.scrub._validators import (
    github_checksum_ok,
    jwt_ok,
    sas_signature_ok,
)

__all__ = ["FAMILIES", "KEY_VALUE_KINDS", "Finder", "Span", "key_value_finder"]

Span = tuple[int, int, str]
Finder = Callable[[str, str, list[Span]], None]
#: Decides whether a key name is credential-like (the scrubber adds configured names).
KeyPredicate = Callable[[str], bool]


def _aws_access_key_id(text: str, _tl: str, out: list[Span]) -> None:
    out.extend((m.start(), m.end(), "AWS_ACCESS_KEY_ID")
               for m in p.AWS_ACCESS_KEY_ID.finditer(text))


def _google(text: str, _tl: str, out: list[Span]) -> None:
    if "AIza" in text:
        out.extend((m.start(), m.end(), "GOOGLE_API_KEY") for m in p.GOOGLE_API_KEY.finditer(text))


def _azure_account_key(text: str, _tl: str, out: list[Span]) -> None:
    if "AccountKey=" in text:
        out.extend((m.start(1), m.end(1), "AZURE_KEY") for m in p.AZURE_ACCOUNT_KEY.finditer(text))


def _azure_shared(text: str, tl: str, out: list[Span]) -> None:
    if "accesskey:" in tl:
        out.extend((m.start(1), m.end(1), "AZURE_KEY") for m in p.AZURE_SHARED_KEY.finditer(text))
    if "sig=" in text:
        out.extend((m.start(1), m.end(1), "AZURE_KEY") for m in p.AZURE_SAS_SIG.finditer(text)
                   if sas_signature_ok(m.group(1)))


def _github(text: str, _tl: str, out: list[Span]) -> None:
    out.extend((m.start(), m.end(), "GITHUB_TOKEN") for m in p.GITHUB_CLASSIC.finditer(text)
               if github_checksum_ok(m.group(1)))
    if "github_pat_" in text:
        out.extend((m.start(), m.end(), "GITHUB_TOKEN") for m in p.GITHUB_FINE.finditer(text))


def _openai(text: str, _tl: str, out: list[Span]) -> None:
    if p.OPENAI_MARKER in text:
        out.extend((m.start(), m.end(), "OPENAI_KEY") for m in p.OPENAI_KEY.finditer(text)
                   if p.OPENAI_MARKER in m.group() and not m.group().startswith("sk-ant-"))


def _anthropic(text: str, _tl: str, out: list[Span]) -> None:
    if "sk-ant-" in text:
        out.extend((m.start(), m.end(), "ANTHROPIC_KEY") for m in p.ANTHROPIC_KEY.finditer(text))


def _stripe(text: str, tl: str, out: list[Span]) -> None:
    for literal in ("k:live:", "k:test:"):
        index = tl.find(literal)
        while index > 0:
            start = index - 1
            match = p.STRIPE_KEY.match(text, start)
            if match is not None and (start == 0 or not _ascii_word(text[start - 1])):
                out.append((start, match.end(), "STRIPE_KEY"))
            index = tl.find(literal, index + 1)


def _slack_token(text: str, _tl: str, out: list[Span]) -> None:
    out.extend((m.start(), m.end(), "SLACK_TOKEN") for m in p.SLACK_TOKEN.finditer(text)
               if any(char.isdigit() for char in m.group()))


def _slack_webhook(text: str, _tl: str, out: list[Span]) -> None:
    for m in p.SLACK_WEBHOOK.finditer(text):
        start = m.start()
        for scheme in ("https://", "http://"):
            if text.startswith(scheme, start - len(scheme)):
                start -= len(scheme)
                break
        out.append((start, m.end(), "SLACK_WEBHOOK"))


def _jwt(text: str, _tl: str, out: list[Span]) -> None:
    if "eyJ" in text:
        out.extend((m.start(), m.end(), "JWT") for m in p.JWT.finditer(text) if jwt_ok(m.group()))


def _private_key(text: str, _tl: str, out: list[Span]) -> None:
    position = 0
    while True:
        match = p.PEM_BEGIN.search(text, position)
        if match is None:
            return
        end_marker = f"-----END {match.group(1)}-----"
        end = text.find(end_marker, match.end())
        if end == -1:  # no END: the rest of the field is key material
            out.append((match.start(), len(text), "PRIVATE_KEY"))
            return
        position = end + len(end_marker)
        out.append((match.start(), position, "PRIVATE_KEY"))


def _url_password(text: str, _tl: str, out: list[Span]) -> None:
    index = text.find("://")
    while index != -1:
        authority = p.URL_AUTHORITY.match(text, index + 3)
        if authority is not None and "@" in authority.group():
            _url_password_in(text, index, authority.group(), out)
        elif authority is not None and text[authority.end():authority.end() + 1] in _URL_CUTS:
            _unescaped_password(text, index, authority.group(), out)
        index = text.find("://", index + 3)


_URL_CUTS: Final = frozenset("#?/")


def _unescaped_password(text: str, index: int, authority: str, out: list[Span]) -> None:
    """
    ``postgres://bob:pa#ss@db/app``: a password holding ``#``, ``?`` or ``/`` unescaped.

    A URL parser ends the authority there and the rest of the password would show; when
    an ``@`` and a host follow before the URL ends, everything between ``user:`` and that
    ``@`` is the password. ``host:8080/...`` is a port, not a password.
    """
    user, colon, start_of_password = authority.partition(":")
    if not colon or not start_of_password or start_of_password.isdigit():
        return
    wide = p.URL_WIDE.match(text, index + 3)
    if wide is None:
        return
    at = wide.group().find("@", len(authority))  # the first: a later one is in the query
    userinfo, rest = wide.group()[:at], wide.group()[at + 1:]
    if at != -1 and p.URL_HOST.match(rest):
        start = index + 3 + len(user) + 1
        out.append((start, index + 3 + len(userinfo), "URL_PASSWORD"))


def _url_password_in(text: str, index: int, authority: str, out: list[Span]) -> None:
    scheme = p.URL_SCHEME_REVERSED.match(text[max(0, index - 32):index][::-1])
    url = (scheme.group()[::-1] if scheme else "x") + "://" + authority
    try:
        password = urlsplit(url).password
    except ValueError:  # malformed port or host: fall back to the same split by hand
        password = authority.rpartition("@")[0].partition(":")[2]
    if not password:
        return
    userinfo = authority.rpartition("@")[0]
    start = index + 3 + userinfo.find(":") + 1
    out.append((start, start + len(password), "URL_PASSWORD"))


def _email(text: str, _tl: str, out: list[Span]) -> None:
    passwords = [(low, high) for low, high, kind in out if kind == "URL_PASSWORD"]
    for sign in p.EMAIL_SIGNS:
        at = text.find(sign)
        while at != -1:
            local = p.EMAIL_LOCAL_REVERSED.match(text[max(0, at - 65):at][::-1])
            domain = p.EMAIL_DOMAIN.match(text, at + len(sign)) if local is not None else None
            if local is not None and domain is not None:
                # A local part longer than 64 characters is cut to its last 64: fail closed.
                start = at - local.end()
                if (not _in_url_userinfo(text, start) or _user_is_email(text, domain.end())) \
                        and not any(low <= start < high for low, high in passwords):
                    out.append((start, domain.end(), "EMAIL"))  # bob:pa#ss@host: host stays
            at = text.find(sign, at + 1)


#: Unquoted values that are literals, not credentials (JSON's and Python's spellings,
#: exactly): a quoted "None" or "TRUE" is a string, and may be a password.
_LITERALS: Final = frozenset({"null", "true", "false", "None", "True", "False"})


def _ascii_word(char: str) -> bool:
    """
    An ASCII letter or digit: a token glued to ``clé`` or ``密钥`` still counts.

    ``_`` is no part of the word here: ``_sk_live_..._`` (Markdown italics) and
    ``STRIPE_sk_live_...`` are tokens too.
    """
    return char.isascii() and char.isalnum()


def _user_is_email(text: str, end: int) -> bool:
    """In ``smtp://maria@example.com:pw@host``, the user name itself is an e-mail address."""
    rest = p.URL_AUTHORITY.match(text, end)
    return rest is not None and "@" in rest.group()


def _in_url_userinfo(text: str, start: int) -> bool:
    """Inside ``scheme://user:pw@host``: the userinfo belongs to URL_PASSWORD."""
    scheme = text.rfind("://", max(0, start - 1100), start)
    if scheme == -1:
        return False
    authority = text[scheme + 3:start]
    return not any(char in authority for char in _AUTHORITY_ENDS)


_AUTHORITY_ENDS: Final = frozenset("/?# \t\r\n\"'<>`")


def _bearer(text: str, tl: str, out: list[Span]) -> None:
    index = tl.find("bearer")
    while index != -1:
        match = p.BEARER.match(text, index)
        if match is not None and (index == 0 or not _ascii_word(text[index - 1])):
            token = match.group(1)
            if any(c.isdigit() for c in token) and len(token) >= 12:
                out.append((match.start(1), match.end(1), "AUTH_HEADER"))
        index = tl.find("bearer", index + 6)


def _ip_address(text: str, _tl: str, out: list[Span]) -> None:
    if "." in text:
        for m in p.IPV4.finditer(text):
            if p.IP_VERSION_CONTEXT.search(text, max(0, m.start() - 12), m.start()):
                continue
            if _valid_ip(m.group()):
                out.append((m.start(), m.end(), "IP_ADDRESS"))
    if ":" in text:
        out.extend((m.start(), m.end(), "IP_ADDRESS") for m in p.IPV6.finditer(text)
                   if m.group().strip(":") and _valid_ip(m.group()))


def _valid_ip(candidate: str) -> bool:
    try:
        ipaddress.ip_address(candidate)
    except ValueError:
        return False
    return True


def key_value_finder(is_secret_key: KeyPredicate, enabled: frozenset[str]) -> Finder:
    """
    ``key=value`` / ``"key": "value"`` in free text, the key deciding (SECRET_FIELD).

    Authorization and ``X-Api-Key`` values are AUTH_HEADER and a 40-character value in
    an AWS context is AWS_SECRET_KEY; with those kinds disabled they fall back to
    SECRET_FIELD, so switching a kind off never lets a credential through.
    """

    def kind_for(kind: str) -> str:
        return kind if kind in enabled else "SECRET_FIELD"

    auth, aws = kind_for("AUTH_HEADER"), kind_for("AWS_SECRET_KEY")

    def find(text: str, tl: str, out: list[Span]) -> None:
        for separator in p.KEY_SEPARATOR.finditer(tl):
            _key_value_at(text, separator.start(), is_secret_key, out, (auth, aws))

    return find


def command_line_finder(is_secret_key: KeyPredicate) -> Finder:
    """
    Credentials given as command-line options, as an agent's shell tool logs them.

    ``--password x`` and any long option named like a credential; the password of
    ``-u``/``--user user:pass`` (curl); a password glued to ``-p`` in a mysql or sshpass
    command; ``-p x`` in a sshpass or docker login command and ``-a x`` in a redis-cli one.
    Other short options are too ambiguous (``-p 8080`` is a port). Help text
    (``--password PASSWORD``), prose (``the --password option``), redirections and uid:gid
    pairs are not values.
    """

    def find(text: str, tl: str, out: list[Span]) -> None:
        for option in p.CLI_OPTION.finditer(text):
            name = option.group("name")
            start, end = _unquoted(text, *option.span("value"))
            if text[start] not in "\"'":  # a bare value ends where its group or call does
                end = start + len(text[start:end].rstrip(")]}"))
            value = text[start:end]
            if name in ("u", "user"):
                user, colon, password = value.partition(":")
                if colon and not password and (quoted := p.QUOTED.match(text, end)):
                    end, password = quoted.end() - 1, quoted.group()[1:-1]  # admin:"pw"
                if colon and password and not password.isdigit() and password != user:
                    out.append((end - len(password), end, "SECRET_FIELD"))
                continue
            if _not_a_value(value):
                continue
            normal = normalise_key(name)
            if (len(name) > 1 and (normal in _OPTION_SECRETS or (
                    is_secret_key(name) and not normal.startswith("no")
                    and not normal.endswith(_REFERENCE_SUFFIXES)))) or (
                    name in _SHORT_PASSWORD_FLAGS
                    and _in_command(text, tl, start, _SHORT_PASSWORD_FLAGS[name])):
                out.append((start, end, "SECRET_FIELD"))
        if "mysql" in tl or "sshpass" in tl:
            for glued in p.GLUED_PASSWORD.finditer(text):
                start, end = _unquoted(text, *glued.span(1))
                if _in_command(text, tl, start, ("mysql", "sshpass")):
                    out.append((start, end, "SECRET_FIELD"))

    return find


def _unquoted(text: str, start: int, end: int) -> tuple[int, int]:
    """A value's span without its quotes (plain, backslash-escaped or ``$'...'``): they stay."""
    if text[start] in "\"'":
        return start + 1, end - 1
    if text[start] in "\\$" and start + 1 < end and text[start + 1] in "\"'":
        return start + 2, end - (2 if text[start] == "\\" else 1)
    return start, end


def _not_a_value(value: str) -> bool:
    """Help text's metavariables, prose, a redirection: ``PASSWORD``, ``<token>``, ``as``."""
    return (not value or value.lower() in _PROSE_WORDS or value[0] in "<{[("
            or (value.isupper() and value.replace("_", "").isalpha()))


def _in_command(text: str, tl: str, position: int, tools: tuple[str, ...]) -> bool:
    """
    Whether the option at *position* belongs to one of *tools*' commands.

    For sshpass, to sshpass itself: ``sshpass -e ssh -p 2222`` gives ssh its port.
    """
    begin = max(text.rfind(separator, 0, position) for separator in ("|", ";", "&", "\n"))
    command = tl[begin + 1:position]
    for tool in tools:
        at = command.rfind(tool)
        if at != -1:
            between = text[begin + 1 + at + len(tool):position].split()
            return tool != "sshpass" or all(word.startswith("-") for word in between)
    return False


#: Words that follow an option's name in prose (``the --password option``), not values.
_PROSE_WORDS: Final = frozenset({
    "option", "options", "flag", "flags", "argument", "arguments", "parameter", "and", "or",
    "is", "are", "to", "with", "instead", "if", "when", "as", "for", "from", "in", "on",
    "the", "a", "an", "of", "by", "value"})
#: Options that name where a credential is, not the credential (``--password-file``).
_REFERENCE_SUFFIXES: Final = ("stdin", "file", "path", "env", "var", "prompt", "dir")
#: Long options that take a password under a name no key would have.
_OPTION_SECRETS: Final = frozenset({"pass", "requirepass", "masterauth"})
#: Short options that take a password, and the tools (as the translated text shows their
#: names) whose commands they belong to.
_SHORT_PASSWORD_FLAGS: Final = {"p": ("sshpass", "docker login"), "a": ("redis cli",)}


def _key_value_at(text: str, sep: int, is_secret_key: KeyPredicate, out: list[Span],
                  kinds: tuple[str, str]) -> None:
    auth, aws = kinds
    before = text[max(0, sep - 96):sep][::-1]
    back = p.KEY_REVERSED.match(before)
    if back is None:
        return
    key = back.group(1)[::-1]
    normal = normalise_key(key)
    if normal == "key":  # a label: ``API Key: ...``, ``Your API key: ...``, ``Secret Key =``
        word = p.LABEL_WORD_REVERSED.match(before, back.end())
        first = word.group(1)[::-1] if word is not None else ""
        # ``ssh private key: {name}`` is prose: a lowercase key after a lowercase word
        if (key != "key" or first[:1].isupper() or first.lower() == "api") \
                and is_secret_key(label := f"{first} {key}"):
            key, normal = label, normalise_key(label)
    closer = back.group(0)  # what stands between the key and the separator
    fat_arrow = text.startswith("=>", sep)
    if "]" in closer and not fat_arrow and (
            ("'" not in closer and '"' not in closer) or _assigns_expression(text, sep)):
        # ``sessions[token] = s``, ``x: List[Token] = []``: an index, not a key; and
        # ``headers["Authorization"] = header``: code assigns an expression, not a literal.
        return
    # ``token => token.length`` is an arrow function; a hash's key is quoted or a symbol.
    arrow = fat_arrow and not _quoted_or_symbol(text, sep - back.end(), closer)
    if normal in ("authorization", "proxyauthorization") and not arrow:
        value = p.AUTH_VALUE.match(text, sep)
        if value is not None:
            scheme = value.group("scheme")
            # Only a known scheme stays visible: ``authorization=abc123 user=bob`` has none.
            keep = scheme is not None and scheme.lower() in _AUTH_SCHEMES
            start = value.start("value") if keep or scheme is None else value.start("scheme")
            out.append((start, value.end("value"), auth))
        return
    # A hit on ``_`` inside a name (``ghp_``, ``sk_live_``) has no separator: no match.
    match = p.KEY_VALUE.match(text, sep)
    if match is None:
        return
    group = match.lastgroup or "bare"
    found = match.group(group)
    start, end = match.span(group)
    # An arrow function's body (``token => token.length``), not a hash's value.
    code = arrow and group == "bare" and (
        found.rstrip("}])") == key or any(char in found for char in _CODE_CHARS))
    if group == "bare" and normal in ("cookie", "setcookie") and found not in _LITERALS:
        rest = p.LINE_REST.match(text, start)  # every pair of the header, quotes and all
        if rest is not None and not code:
            out.append((start, rest.end(), "SECRET_FIELD"))
        return
    if group == "bare":
        quoted = p.QUOTED.match(text, end) if p.STRING_OPENER.fullmatch(found) else None
        if quoted is not None:  # b"...", @"...", SecretStr("..."): the string is the value
            end = quoted.end()
            found = text[start:end]
        else:  # an unquoted value ends where its object, list or call does
            found = found.rstrip("}])")
            end = start + len(found)
            if found in _LITERALS or code:
                return
    if not found:
        return
    if p.AWS_SECRET_SHAPE.fullmatch(found) and p.HEX_ONLY.fullmatch(found) is None and (
            "secret" in normal or "aws" in text[max(0, sep - 48):sep].lower()):
        out.append((start, end, aws))
    elif normal == "xapikey":
        out.append((start, end, auth))
    elif is_secret_key(key):
        out.append((start, end, "SECRET_FIELD"))


#: Authorization schemes (IANA's registry and common vendor ones), left readable.
_AUTH_SCHEMES: Final = frozenset({
    "basic", "bearer", "digest", "dpop", "hoba", "mutual", "negotiate", "ntlm", "oauth",
    "privatetoken", "scram-sha-1", "scram-sha-256", "vapid", "concealed", "token", "apikey",
    "api-key", "key", "jwt", "mac", "sharedkey", "sharedkeylite", "sharedaccesssignature",
    "aws4-hmac-sha256", "gsso", "kerberos", "ssws", "splunk", "signature", "googlelogin",
})


def _assigns_expression(text: str, sep: int) -> bool:
    """
    ``= header``, ``= token.key``, ``= $value``, ``= f(x)``: code, not a literal.

    A string literal is no expression, nor is a value with capitals or digits that names
    nothing (``= S3cretPass``, ``= Basic dXNlcjpwdw==``).
    """
    if p.QUOTE_AFTER_SEPARATOR.match(text, sep) is not None:
        return False
    value = p.ASSIGNED_WORD.match(text, sep)
    if value is None:
        return True
    word = value.group(1)
    return any(char in word for char in _CODE_CHARS) or word.islower() or word.isupper() \
        or word.startswith("_")


#: Characters that make an unquoted value an expression (or an arrow function's body).
_CODE_CHARS: Final = ".([{$`"


def _quoted_or_symbol(text: str, key_start: int, closer: str) -> bool:
    """Whether the key before ``=>`` is quoted (``"password"``, ``[password]``) or a symbol."""
    return any(char in closer for char in "'\"]") or (
        key_start > 0 and text[key_start - 1] == ":")


#: Family name -> (kinds, finder) pairs; each family runs behind one gate check (see
#: ``Scrubber._detect``): ``at`` ``@``; ``j`` ``J``; ``pem`` ``-----BEGIN``; ``hook``
#: ``hooks.slack.com``; ``a`` the CAPITAL_A regex; ``x`` the Slack prefix regex;
#: ``digits`` ``+`` or a digit run; ``bearer`` ``bearer``; ``separator`` KEY_SEPARATOR.
FAMILIES: Final[dict[str, tuple[tuple[frozenset[str], Finder], ...]]] = {
    "at": ((frozenset({"URL_PASSWORD"}), _url_password), (frozenset({"EMAIL"}), _email)),
    "j": ((frozenset({"JWT"}), _jwt), (frozenset({"OPENAI_KEY"}), _openai)),
    "pem": ((frozenset({"PRIVATE_KEY"}), _private_key),),
    "hook": ((frozenset({"SLACK_WEBHOOK"}), _slack_webhook),),
    "a": (
        (frozenset({"AWS_ACCESS_KEY_ID"}), _aws_access_key_id),
        (frozenset({"GOOGLE_API_KEY"}), _google),
        (frozenset({"AZURE_KEY"}), _azure_account_key),
        (frozenset({"ANTHROPIC_KEY"}), _anthropic),
    ),
    "x": ((frozenset({"SLACK_TOKEN"}), _slack_token),),
    "digits": ((frozenset({"US_SSN", "CARD_NUMBER", "PHONE", "IBAN"}), find_numeric),),
    "bearer": ((frozenset({"AUTH_HEADER"}), _bearer),),
    "separator": (
        (frozenset({"GITHUB_TOKEN"}), _github),
        (frozenset({"STRIPE_KEY"}), _stripe),
        (frozenset({"AZURE_KEY"}), _azure_shared),
    ),
    "ip": ((frozenset({"IP_ADDRESS"}), _ip_address),),
}
#: Kinds the key/value finder reports; it joins the ``separator`` family per scrubber
#: (configured key names).
KEY_VALUE_KINDS: Final = frozenset({"SECRET_FIELD", "AUTH_HEADER", "AWS_SECRET_KEY"})
