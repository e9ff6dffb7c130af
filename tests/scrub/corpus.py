"""
Test-time corpus for the scrubber: planted secrets and PII, and hard negatives.

Nothing live-looking is committed: every token is built when the tests run, from a
prefix, random characters and (where the format has one) its checksum, and token
prefixes are written split (``"AK" + "IA"``) so that secret scanners do not flag this
file. ``make_corpus(seed)`` returns the same values for the same seed.

Used by ``tests/scrub/test_detectors.py`` and ``benchmarks/bench_scrub.py``.
"""

from __future__ import annotations

import base64
import hashlib
import json
import random
import string
import zlib
from dataclasses import dataclass
from urllib.parse import quote

ALNUM = string.ascii_letters + string.digits
URLSAFE = ALNUM + "-_"
BASE32ISH = string.ascii_uppercase + "234567"
PER_KIND = 24
SEP = "_"  # joined into token prefixes at run time (see the module docstring)


@dataclass(frozen=True)
class Planted:
    """One planted finding: the sentence, the secret that must vanish, what must stay."""

    kind: str
    text: str
    secret: str
    keep: str = ""


@dataclass(frozen=True)
class Negative:
    """A hard negative: a sentence that must come back byte for byte."""

    kind: str
    text: str
    value: str


# -- sentences ---------------------------------------------------------------------------

MODELS = (
    "gpt-4-turbo", "gpt-4o", "gpt-4o-mini", "gpt-3.5-turbo-0125", "claude-3-5-sonnet-20241022",
    "claude-3-opus-20240229", "claude-3-haiku-20240307", "gemini-1.5-pro-002",
    "gemini-1.5-flash", "llama-3.1-70b-instruct", "mistral-large-2407", "o1-preview",
    "command-r-plus", "text-embedding-3-small", "claude-3-7-sonnet-20250219",
    "gpt-4.1-nano", "qwen2.5-72b-instruct", "deepseek-v3", "phi-3-mini-4k-instruct",
    "mixtral-8x7b-instruct-v0.1", "gemma-2-27b-it", "llama-3.2-3b-instruct",
)
TEMPLATES = (
    ("User {user} asked {model} to summarise the refund policy; the retrieved context "
     "included {value} and the assistant answered in {ms} ms using {tin} prompt tokens and "
     "{tout} completion tokens (trace {trace}, finished at {ts})."),
    ("Tool call order_lookup returned a record for session {session}: {value} was attached to "
     "the ticket, so {model} drafted a two-paragraph reply that the guardrail passed after "
     "{ms} ms; {tin} tokens in, {tout} tokens out, logged at {ts}."),
    ("RAG query from {user} matched 4 chunks in the policy index (top score 0.87); the "
     "assistant quoted the document, which mentions {value}, and {model} streamed the answer "
     "back to the web client at {ts} after {ms} ms."),
    ("Guardrail review at {ts}: the prompt sent by {user} to {model} contained {value}; the "
     "request was allowed because the policy only blocks profanity, and the completion used "
     "{tout} tokens (trace {trace})."),
    ('Agent step 3 for session {session} called the CRM tool with {{"note": "{value}", '
     '"priority": "normal"}}; {model} then summarised the result in {tout} tokens, '
     "latency {ms} ms, at {ts}."),
)


def _sentence(rng: random.Random, value: str, template: int | None = None) -> str:
    chosen = TEMPLATES[rng.randrange(len(TEMPLATES)) if template is None else template]
    return chosen.format(
        value=value,
        user=f"u-{rng.randrange(1000, 9999)}",
        session=f"s-{rng.randrange(16**4):04x}",
        model=rng.choice(MODELS),
        ms=rng.randrange(120, 4000),
        tin=rng.randrange(50, 4000),
        tout=rng.randrange(10, 900),
        trace=f"{rng.getrandbits(128):032x}",
        ts=_timestamp(rng),
    )


def clean_sentence(rng: random.Random) -> str:
    """A realistic LLM-app sentence with nothing to redact."""
    filler = rng.choice((
        "the refund window of 30 days", "section 4.2 of the shipping terms",
        "the escalation checklist", "doc_4821 and doc_0932", "order ord_55120",
        "a 2-step troubleshooting guide", "the premium plan limits",
    ))
    return _sentence(rng, filler)


def _timestamp(rng: random.Random) -> str:
    return (f"2024-{rng.randrange(1, 13):02d}-{rng.randrange(1, 29):02d}T"
            f"{rng.randrange(24):02d}:{rng.randrange(60):02d}:{rng.randrange(60):02d}."
            f"{rng.randrange(1000):03d}Z")


def _chars(rng: random.Random, alphabet: str, count: int) -> str:
    return "".join(rng.choice(alphabet) for _ in range(count))


# -- generators per kind ----------------------------------------------------------------

def _base62(value: int) -> str:
    alphabet = string.digits + string.ascii_uppercase + string.ascii_lowercase
    out = ""
    while value:
        value, rest = divmod(value, 62)
        out = alphabet[rest] + out
    return out.rjust(6, "0")


def github_classic(rng: random.Random) -> str:
    entropy = _chars(rng, ALNUM, 30)
    return "gh" + rng.choice("pousr") + SEP + entropy + _base62(zlib.crc32(entropy.encode()))


def luhn_complete(rng: random.Random, prefix: str, length: int) -> str:
    body = prefix + "".join(rng.choice(string.digits) for _ in range(length - len(prefix) - 1))
    for check in string.digits:
        if _luhn(body + check):
            return body + check
    raise AssertionError("unreachable")


def _luhn(number: str) -> bool:
    total = 0
    for index, char in enumerate(reversed(number)):
        value = int(char) * (2 if index % 2 else 1)
        total += value - 9 if value > 9 else value
    return total % 10 == 0


IBAN_SHAPES = {  # country: BBAN as (alphabet, count) pieces
    "GB": (("A", 4), ("9", 14)), "DE": (("9", 18),), "FR": (("9", 23),),
    "NL": (("A", 4), ("9", 10)), "ES": (("9", 20),), "IT": (("A", 1), ("9", 22)),
    "CH": (("9", 17),), "BE": (("9", 12),),
}


def iban(rng: random.Random) -> str:
    country = rng.choice(sorted(IBAN_SHAPES))
    bban = "".join(
        _chars(rng, string.ascii_uppercase if kind == "A" else string.digits, count)
        for kind, count in IBAN_SHAPES[country])
    numeric = "".join(str(int(char, 36)) for char in bban + country + "00")
    check = f"{98 - int(numeric) % 97:02d}"
    compact = country + check + bban
    if rng.random() < 0.5:
        return " ".join(compact[i:i + 4] for i in range(0, len(compact), 4))
    return compact


def card(rng: random.Random) -> str:
    issuer = rng.choice(("visa", "visa13", "mc", "mc2", "amex", "discover", "jcb"))
    prefix, length = {
        "visa": ("4", 16), "visa13": ("4", 13), "mc": (str(rng.randrange(51, 56)), 16),
        "mc2": (str(rng.randrange(2221, 2721)), 16), "amex": (rng.choice(("34", "37")), 15),
        "discover": ("6011", 16), "jcb": (str(rng.randrange(3528, 3590)), 16),
    }[issuer]
    number = luhn_complete(rng, prefix, length)
    style = rng.choice(("plain", "space", "dash"))
    if style == "plain" or length == 13:
        return number
    sizes = (4, 6, 5) if length == 15 else (4, 4, 4, 4)
    groups, start = [], 0
    for size in sizes:
        groups.append(number[start:start + size])
        start += size
    return (" " if style == "space" else "-").join(groups)


def ssn(rng: random.Random) -> str:
    while True:
        area = rng.randrange(1, 900)
        if area != 666:
            break
    sep = rng.choice("- ")
    return f"{area:03d}{sep}{rng.randrange(1, 100):02d}{sep}{rng.randrange(1, 10000):04d}"


def phone(rng: random.Random) -> str:
    line = f"{rng.randrange(100, 200):04d}"  # 555-0100..0199 are fictional
    area = rng.choice(("212", "415", "617", "312", "206", "303"))
    return rng.choice((
        f"({area}) 555-{line}", f"{area}-555-{line}", f"{area}.555.{line}",
        f"+1 {area} 555 {line}", f"+1{area}555{line}", f"+1 ({area}) 555-{line}",
        f"+44 20 7946 0{rng.randrange(100, 1000)}", f"020 7946 0{rng.randrange(100, 1000)}",
        (f"+33 1 {rng.randrange(10, 100)} {rng.randrange(10, 100)} {rng.randrange(10, 100)} "
        f"{rng.randrange(10, 100)}"),
        (f"01 {rng.randrange(10, 100)} {rng.randrange(10, 100)} {rng.randrange(10, 100)} "
        f"{rng.randrange(10, 100)}"),
        f"+49 30 {rng.randrange(1000000, 10000000)}",
    ))


def email(rng: random.Random) -> str:
    first = rng.choice(("maria", "li", "ahmed", "olga", "sam", "jean-luc", "priya", "tom"))
    last = rng.choice(("lopez", "wang", "khan", "ivanova", "o'neil", "dupont", "rao", "smith"))
    local = rng.choice((f"{first}.{last}", f"{first}{rng.randrange(100)}", f"{first}+support",
                        f"{first}_{last}")).replace("'", "")
    domain = rng.choice(("example.com", "example.org", "mail.example.co.uk", "example.net",
                         "corp.example.io"))
    return f"{local}@{domain}"


def jwt(rng: random.Random) -> str:
    def segment(data: object) -> str:
        raw = json.dumps(data, separators=(",", ":")).encode()
        return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()

    header = segment({"alg": rng.choice(("HS256", "RS256", "ES256")), "typ": "JWT"})
    payload = segment({"sub": f"user-{rng.randrange(10**6)}", "iat": rng.randrange(1_700_000_000, 1_800_000_000),
                       "scope": "chat:write"})
    return f"{header}.{payload}.{_chars(rng, URLSAFE, 43)}"


def pem(rng: random.Random, *, with_end: bool = True) -> tuple[str, str]:
    label = rng.choice(("RSA ", "EC ", "", "OPENSSH ", "ENCRYPTED "))
    dashes = "-" * 5
    body = "\n".join(_chars(rng, string.ascii_letters + string.digits + "+/", 64)
                     for _ in range(rng.randrange(3, 7)))
    begin = f"{dashes}BEGIN {label}PRIV" + f"ATE KEY{dashes}"
    end = f"{dashes}END {label}PRIV" + f"ATE KEY{dashes}"
    return (f"{begin}\n{body}\n{end}" if with_end else f"{begin}\n{body}"), body


def _b64(rng: random.Random, size: int) -> str:
    return base64.b64encode(rng.randbytes(size)).decode()


# Each generator returns (snippet to plant, secret that must vanish, text that must stay).
def _planted(kind: str, rng: random.Random) -> tuple[str, str, str]:
    if kind == "AWS_ACCESS_KEY_ID":
        value = rng.choice(("AK" + "IA", "AS" + "IA", "AB" + "IA", "AC" + "CA")) + _chars(
            rng, BASE32ISH, 16)
        return value, value, ""
    if kind == "AWS_SECRET_KEY":
        while True:
            value = _chars(rng, ALNUM + "/+", 40)
            if any(c.isupper() for c in value) and any(c.islower() for c in value):
                break
        form = rng.choice(("aws_secret_access_key = {v}", "AWS secret key: {v}",
                           '"SecretAccessKey": "{v}"', "AWS_SECRET_ACCESS_KEY={v}"))
        return form.format(v=value), value, ""
    if kind == "GITHUB_TOKEN":
        if rng.random() < 0.7:
            value = github_classic(rng)
        else:
            value = "github" + SEP + "pat" + SEP + _chars(rng, ALNUM, 22) + SEP + _chars(rng, ALNUM, 59)
        return value, value, ""
    if kind == "OPENAI_KEY":
        marker = "T3Blbk" + "FJ"
        prefix = rng.choice(("sk-proj-", "sk-svcacct-", "sk-admin-", "sk-"))
        if prefix == "sk-":
            value = prefix + _chars(rng, ALNUM, 20) + marker + _chars(rng, ALNUM, 20)
        else:
            value = prefix + _chars(rng, URLSAFE, 74) + marker + _chars(rng, URLSAFE, 74)
        return value, value, ""
    if kind == "ANTHROPIC_KEY":
        value = "sk-" + "ant-" + rng.choice(("api03-", "admin01-")) + _chars(rng, URLSAFE, 93) + "AA"
        return value, value, ""
    if kind == "GOOGLE_API_KEY":
        value = "AI" + "za" + _chars(rng, URLSAFE, 35)
        return value, value, ""
    if kind == "SLACK_TOKEN":
        digits = string.digits
        if rng.random() < 0.7:
            value = ("xox" + rng.choice("bpars") + "-" + _chars(rng, digits, 11) + "-"
                     + _chars(rng, digits, 13) + "-" + _chars(rng, ALNUM, 24))
        else:
            value = ("xapp-1-A" + _chars(rng, BASE32ISH, 10) + "-" + _chars(rng, digits, 13) + "-"
                     + _chars(rng, "0123456789abcdef", 64))
        return value, value, ""
    if kind == "SLACK_WEBHOOK":
        value = ("https://hooks.slack.com/services/T" + _chars(rng, BASE32ISH, 9) + "/B"
                 + _chars(rng, BASE32ISH, 10) + "/" + _chars(rng, ALNUM, 24))
        return value, value.rsplit("/", 1)[1], ""
    if kind == "STRIPE_KEY":
        value = rng.choice(("sk", "rk")) + SEP + rng.choice(("live", "test")) + SEP + _chars(
            rng, ALNUM, rng.randrange(24, 100))
        return value, value, ""
    if kind == "AZURE_KEY":
        form = rng.randrange(3)
        if form == 0:
            key = _b64(rng, 64)
            return ((f"DefaultEndpointsProtocol=https;AccountName=acct{rng.randrange(100)};"
                    f"AccountKey={key};EndpointSuffix=core.windows.net"), key, "AccountName=")
        if form == 1:
            sig = quote(_b64(rng, 32), safe="")
            return ((f"https://acct.blob.core.windows.net/c/report.pdf?sv=2022-11-02&ss=b&srt=o"
                    f"&sp=r&se=2026-01-01T00:00:00Z&sig={sig}"), sig, "sv=2022-11-02")
        key = _b64(rng, 32)
        return ((f"Endpoint=sb://bus{rng.randrange(100)}.servicebus.windows.net/;"
                f"SharedAccessKeyName=RootManageSharedAccessKey;SharedAccessKey={key}"), key,
                "SharedAccessKeyName=")
    if kind == "JWT":
        value = jwt(rng)
        return value, value, ""
    if kind == "PRIVATE_KEY":
        snippet, body = pem(rng, with_end=rng.random() < 0.7)
        return snippet, body, ""
    if kind == "URL_PASSWORD":
        user = rng.choice(("app", "svc_reader", "admin", "etl"))
        password = _chars(rng, ALNUM + "-._~!$*", rng.randrange(8, 24))
        scheme, host = rng.choice((("postgres", "db.example.com:5432/app"),
                                   ("redis", "cache.internal:6379/0"),
                                   ("https", "api.example.com/v1"),
                                   ("amqp", "mq.example.net/vhost")))
        return f"{scheme}://{user}:{password}@{host}", password, f"{scheme}://{user}:"
    if kind == "AUTH_HEADER":
        token = _chars(rng, ALNUM, 12) + str(rng.randrange(10)) + _chars(rng, ALNUM + "-._~", 20)
        form = rng.randrange(4)
        if form == 0:
            return f"Authorization: Bearer {token}", token, "Authorization: Bearer "
        if form == 1:
            basic = base64.b64encode(f"user{rng.randrange(99)}:{token}".encode()).decode()
            return f"Authorization: Basic {basic}", basic, "Authorization: Basic "
        if form == 2:
            return f"X-Api-Key: {token}", token, "X-Api-Key: "
        return f"curl -H 'Authorization: Bearer {token}' https://api.example.com", token, "curl"
    if kind == "SECRET_FIELD":
        value = rng.choice((_chars(rng, string.ascii_lowercase, 7) + str(rng.randrange(10)),
                            "correct horse " + _chars(rng, string.ascii_lowercase, 5),
                            _chars(rng, ALNUM, 16)))
        key = rng.choice(("password", "client_secret", "apiKey", "refresh_token", "passwd",
                          "API-KEY", "db_password", "private_key", "access_token"))
        if " " in value or rng.random() < 0.4:
            return f'"{key}": "{value}"', value, f'"{key}"'
        return f"{key}={value}", value, f"{key}="
    if kind == "EMAIL":
        value = email(rng)
        return value, value, ""
    if kind == "US_SSN":
        value = ssn(rng)
        return value, value, ""
    if kind == "CARD_NUMBER":
        value = card(rng)
        return value, value, ""
    if kind == "IBAN":
        value = iban(rng)
        return value, value, ""
    if kind == "PHONE":
        value = phone(rng)
        return value, value, ""
    if kind == "IP_ADDRESS":
        value = rng.choice((f"192.0.2.{rng.randrange(1, 255)}", f"198.51.100.{rng.randrange(1, 255)}",
                            f"203.0.113.{rng.randrange(1, 255)}", f"2001:db8::{rng.randrange(1, 65535):x}"))
        return value, value, ""
    raise ValueError(kind)


PLANTED_KINDS = (
    "AWS_ACCESS_KEY_ID", "AWS_SECRET_KEY", "GITHUB_TOKEN", "OPENAI_KEY", "ANTHROPIC_KEY",
    "GOOGLE_API_KEY", "SLACK_TOKEN", "SLACK_WEBHOOK", "STRIPE_KEY", "AZURE_KEY", "JWT",
    "PRIVATE_KEY", "URL_PASSWORD", "AUTH_HEADER", "SECRET_FIELD", "EMAIL", "US_SSN",
    "CARD_NUMBER", "IBAN", "PHONE", "IP_ADDRESS",
)


def planted(seed: int = 3, per_kind: int = PER_KIND) -> list[Planted]:
    """``per_kind`` planted values of every kind, each in its own sentence."""
    rng = random.Random(seed)
    out = []
    for kind in PLANTED_KINDS:
        for _ in range(per_kind):
            snippet, secret, keep = _planted(kind, rng)
            template = 4 if kind == "SECRET_FIELD" and snippet.startswith('"') else None
            if template is None and ('"' in snippet or kind == "PRIVATE_KEY"):
                template = rng.choice((0, 1, 2, 3))
            out.append(Planted(kind, _sentence(rng, snippet, template), secret, keep))
    return out


# -- hard negatives ---------------------------------------------------------------------

def _failing_luhn(rng: random.Random) -> str:
    while True:
        number = str(rng.randrange(10**15, 10**16))
        if not _luhn(number):
            return number


NEGATIVE_KINDS = (
    "uuid", "sha256", "sha1", "sha256_prefixed", "doc_id", "model_name", "iso_timestamp",
    "version", "order_number", "epoch_ms", "token_counts", "trace_id", "pod_name",
    "plain_url", "file_path", "tokens_input", "span_id", "price", "date", "request_id",
)


def _negative(kind: str, rng: random.Random) -> str:
    if kind == "uuid":
        return str(__import__("uuid").UUID(int=rng.getrandbits(128), version=4))
    if kind == "sha256":
        return hashlib.sha256(rng.randbytes(16)).hexdigest()
    if kind == "sha1":
        return hashlib.sha1(rng.randbytes(16)).hexdigest()
    if kind == "sha256_prefixed":
        return "sha256:" + hashlib.sha256(rng.randbytes(16)).hexdigest()
    if kind == "doc_id":
        return f"doc_{rng.randrange(1, 100000)}"
    if kind == "model_name":
        return rng.choice(MODELS)
    if kind == "iso_timestamp":
        return rng.choice((_timestamp(rng), _timestamp(rng).replace("T", " ")[:19],
                           _timestamp(rng)[:19] + "+00:00"))
    if kind == "version":
        return rng.choice((f"{rng.randrange(10)}.{rng.randrange(20)}.{rng.randrange(30)}",
                           (f"{rng.randrange(1, 20)}.{rng.randrange(10)}.{rng.randrange(10)}."
                           f"{rng.randrange(10)}"), f"v{rng.randrange(1, 4)}.{rng.randrange(30)}.0"))
    if kind == "order_number":
        return _failing_luhn(rng)
    if kind == "epoch_ms":
        return str(rng.randrange(1_600_000_000_000, 1_800_000_000_000))
    if kind == "token_counts":
        return f"{rng.randrange(100, 99999)}/{rng.randrange(100, 99999)}"
    if kind == "trace_id":
        return f"{rng.getrandbits(128):032x}"
    if kind == "pod_name":
        return (f"{rng.choice(('api', 'worker', 'rag-indexer'))}-"
                f"{_chars(rng, '0123456789abcdef', 10)}-{_chars(rng, 'bcdfghjklmnpqrstvwxz2456789', 5)}")
    if kind == "plain_url":
        return rng.choice((f"https://docs.example.com/guides/{rng.randrange(1000)}?lang=en",
                           f"https://api.example.com/v1/chat/completions#{rng.randrange(99)}",
                           f"s3://bucket-{rng.randrange(99)}/exports/2024/07/data.parquet"))
    if kind == "file_path":
        return rng.choice((f"/var/log/app/2024-07-{rng.randrange(1, 29):02d}.log",
                           f"C:\\Users\\svc\\AppData\\cache_{rng.randrange(999)}.db",
                           f"./data/chunks/part-{rng.randrange(10**5):05d}.jsonl"))
    if kind == "tokens_input":
        return rng.choice((f"tokens_input={rng.randrange(9999)}", f"token_count: {rng.randrange(999)}",
                           f"max_tokens={rng.randrange(4096)}", f'"tokens_output": {rng.randrange(999)}'))
    if kind == "span_id":
        return f"{rng.getrandbits(64):016x}"
    if kind == "price":
        return f"${rng.randrange(1, 99999):,}.{rng.randrange(100):02d}"
    if kind == "date":
        return f"{rng.randrange(1, 29):02d}/{rng.randrange(1, 13):02d}/{rng.randrange(2000, 2030)}"
    if kind == "request_id":
        return f"req_{_chars(rng, ALNUM, 24)}"
    raise ValueError(kind)


def negatives(seed: int = 5, per_kind: int = PER_KIND) -> list[Negative]:
    """``per_kind`` hard negatives of every kind, each in its own sentence."""
    rng = random.Random(seed)
    return [Negative(kind, _sentence(rng, value), value)
            for kind in NEGATIVE_KINDS for value in (_negative(kind, rng) for _ in range(per_kind))]


def mixed_strings(count: int, seed: int = 11, dirty_share: float = 0.2) -> list[str]:
    """Benchmark input: mostly clean sentences, some with planted values (IP excluded)."""
    rng = random.Random(seed)
    pool = [p for p in planted(seed) if p.kind != "IP_ADDRESS"]
    return [rng.choice(pool).text if rng.random() < dirty_share else clean_sentence(rng)
            for _ in range(count)]
