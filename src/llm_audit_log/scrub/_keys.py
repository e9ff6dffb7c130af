"""
Credential-like key names: the key decides, whatever the value looks like.

A key is compared after normalising: lower case, separators (``-``, ``_``, ``.``, space)
removed, so ``apiKey``, ``API-KEY`` and ``x_api_key`` all end in ``apikey``. A key is a
secret key when its normal form ends with one of :data:`SECRET_KEY_SUFFIXES` or contains
one of :data:`SECRET_KEY_PARTS`. Counters such as ``tokens_input``, ``token_count`` and
``max_tokens`` end otherwise and stay visible.
"""

from __future__ import annotations

from typing import Final

__all__ = ["NOT_SECRET_KEYS", "SECRET_KEY_NAMES", "SECRET_KEY_PARTS", "SECRET_KEY_SUFFIXES",
           "builtin_secret_key", "normalise_key"]

#: A normalised key ending with one of these is a secret key.
SECRET_KEY_SUFFIXES: Final = (
    "password", "passwd", "pwd", "passphrase", "secret", "secrets", "token", "apikey",
    "accesskey", "secretkey", "privatekey", "signingkey", "encryptionkey", "masterkey",
    "accountkey", "sharedaccesskey", "subscriptionkey", "authorization", "auth",
    "credential", "credentials", "cookie", "cookies", "passcode", "privkey", "cvv", "cvc",
    "socialsecuritynumber",
)
#: Short names that are credentials only on their own (``pin``, not ``spin``).
SECRET_KEY_NAMES: Final = frozenset({"pin", "pincode", "pw", "otp", "otpcode", "totp",
                                     "mfacode", "cvv2", "cvc2", "ssn", "userssn",
                                     "customerssn", "patientssn"})
#: Names ending like a credential that are not one: a tokenizer's special tokens, paging
#: cursors and limits. Their values are still scanned like any other.
NOT_SECRET_KEYS: Final = frozenset({
    "bostoken", "eostoken", "padtoken", "unktoken", "septoken", "clstoken", "masktoken",
    "specialtoken", "nextpagetoken", "pagetoken", "prevpagetoken", "previouspagetoken",
    "nexttoken", "continuationtoken", "maxtoken", "mintoken", "startingtoken",
    "paginationtoken", "changetoken", "locktoken", "idempotencytoken", "synctoken",
})
#: A normalised key containing one of these is a secret key (``password_confirmation``).
SECRET_KEY_PARTS: Final = ("password", "passwd", "passphrase", "privatekey", "clientsecret")

#: The last letters of the suffixes, as they appear in the gate's translated text, where
#: separators are spaces; the scrubber's cheap gate looks for them before ``:`` or ``=``.
KEY_TAILS: Final = (
    "word", "swd", "pwd", "hrase", "cret", "rets", "oken", "key", "rization", "auth",
    "ntial", "tials", "ookie", "okies", "scode", "acode", "pcode", "ncode", "a:code",
    "p:code", "n:code", "cvv", "ssn", "pin", "otp",
)

_SEPARATORS: Final = str.maketrans("", "", "-_. ")


#: Names (normalised) under which applications put raw LLM text: the schemas hash these at
#: the top of a payload; anywhere else the whole value becomes one keyed-hash marker.
RAW_TEXT_KEYS: Final = frozenset({
    "prompt", "prompts", "response", "responses", "completion", "completions", "messages",
    "systemprompt", "userprompt", "query", "content",
})


def normalise_key(key: str) -> str:
    """Lower case without separators: ``X-Api-Key`` -> ``xapikey``."""
    return key.lower().translate(_SEPARATORS)


def builtin_secret_key(normal: str) -> bool:
    """Whether a normalised key names a credential."""
    if normal in NOT_SECRET_KEYS:
        return False
    return normal.endswith(SECRET_KEY_SUFFIXES) or normal in SECRET_KEY_NAMES or any(
        part in normal for part in SECRET_KEY_PARTS)
