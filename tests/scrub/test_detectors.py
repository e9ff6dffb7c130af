"""
Detectors against a generated corpus: 100 % recall on planted values, no false positives.

The corpus (``corpus.py``) is built at test time: realistic ~300-character LLM-app
sentences with one planted value each, and hard negatives that must survive byte for
byte. The per-kind table is printed (``pytest -rA`` shows it) and asserted on.
"""

from __future__ import annotations

import hashlib
import hmac
import random
import re
from collections import Counter

import corpus
import pytest

from llm_audit_log.scrub import DETECTOR_KINDS, Scrubber

MARKER = re.compile(r"\[REDACTED:([A-Z_]+):([0-9a-f]{12})\]")


def keyed(key: bytes):
    def digest(value: str) -> str:
        return hmac.new(key, value.encode(), hashlib.sha256).hexdigest()

    return digest


@pytest.fixture(scope="module")
def scrubber() -> Scrubber:
    return Scrubber(digest=keyed(b"k1" * 16), ip_addresses=True)


@pytest.fixture(scope="module")
def default_scrubber() -> Scrubber:
    return Scrubber(digest=keyed(b"k1" * 16))


@pytest.fixture(scope="module")
def planted() -> list[corpus.Planted]:
    return corpus.planted()


@pytest.fixture(scope="module")
def negatives() -> list[corpus.Negative]:
    return corpus.negatives()


def _found(scrubber: Scrubber, item: corpus.Planted) -> bool:
    out = scrubber.scrub_text(item.text, {})
    kinds = {m.group(1) for m in MARKER.finditer(out)}
    return item.secret not in out and item.kind in kinds and item.keep in out


class TestCorpus:
    def test_every_kind_is_planted(self, planted):
        """The corpus covers every text kind, at least 20 values each (RAW_TEXT: below)."""
        per_kind = Counter(item.kind for item in planted)
        assert set(DETECTOR_KINDS) - {"RAW_TEXT"} == set(per_kind)
        assert min(per_kind.values()) >= 20

    def test_sentences_look_like_llm_app_logs(self, planted, negatives):
        """Planted and negative sentences are roughly 300 characters long."""
        lengths = [len(item.text) for item in [*planted, *negatives]
                   if item.kind != "PRIVATE_KEY"]
        assert 200 <= sum(lengths) / len(lengths) <= 420

    def test_clean_sentences_are_clean(self, scrubber):
        """The filler sentences around planted values never trigger a detector."""
        rng = random.Random(1)
        for _ in range(200):
            text = corpus.clean_sentence(rng)
            assert text is scrubber.scrub_text(text, {})


class TestRecall:
    def test_recall_is_total_per_kind(self, scrubber, planted):
        """Every planted value is gone, a marker of its kind is there, context is kept."""
        hits: Counter[str] = Counter()
        totals: Counter[str] = Counter()
        misses = []
        for item in planted:
            totals[item.kind] += 1
            if _found(scrubber, item):
                hits[item.kind] += 1
            else:
                misses.append(item)
        print("\nkind                 planted  found  recall")
        for kind in sorted(totals):
            print(f"{kind:20s} {totals[kind]:7d} {hits[kind]:6d} {hits[kind] / totals[kind]:7.0%}")
        assert [] == [(m.kind, m.text) for m in misses]

    def test_default_scrubber_leaves_ip_addresses(self, default_scrubber, planted):
        """IP detection in free text is opt-in (four-part versions look like IPv4)."""
        for item in planted:
            if item.kind == "IP_ADDRESS":
                assert item.text == default_scrubber.scrub_text(item.text, {})

    def test_equal_values_give_equal_markers(self, scrubber, planted):
        """The same value planted in two sentences gets the same marker."""
        for item in planted[::7]:
            first = scrubber.scrub_text(item.text, {})
            second = scrubber.scrub_text(f"again: {item.text}", {})
            assert MARKER.findall(first) == MARKER.findall(second)

    def test_other_key_gives_other_markers(self, scrubber, planted):
        """A different digest key changes every hash, so markers do not link across keys."""
        other = Scrubber(digest=keyed(b"k2" * 16), ip_addresses=True)
        for item in planted[::5]:
            mine = MARKER.findall(scrubber.scrub_text(item.text, {}))
            theirs = MARKER.findall(other.scrub_text(item.text, {}))
            assert [k for k, _ in mine] == [k for k, _ in theirs]
            assert not {h for _, h in mine} & {h for _, h in theirs}

    def test_counts_name_kinds_never_values(self, scrubber, planted):
        """The counts dict maps kind names to integers."""
        counts: dict[str, int] = {}
        for item in planted:
            scrubber.scrub_text(item.text, counts)
        assert set(counts) <= DETECTOR_KINDS
        assert all(isinstance(n, int) and n > 0 for n in counts.values())
        assert sum(counts.values()) >= len(planted)


class TestHardNegatives:
    def test_no_false_positives_per_kind(self, default_scrubber, negatives):
        """Every hard negative sentence comes back as the same object."""
        changed: Counter[str] = Counter()
        totals: Counter[str] = Counter()
        for item in negatives:
            totals[item.kind] += 1
            if default_scrubber.scrub_text(item.text, {}) is not item.text:
                changed[item.kind] += 1
        print("\nhard negative        sentences  changed")
        for kind in corpus.NEGATIVE_KINDS:
            print(f"{kind:20s} {totals[kind]:9d} {changed[kind]:8d}")
        assert min(totals.values()) >= 20
        assert {} == dict(changed)

    def test_negatives_survive_in_payloads(self, default_scrubber, negatives):
        """As payload values and under ``tokens_input``-style keys, negatives are untouched."""
        payload = {f"{item.kind}_{i}": item.value for i, item in enumerate(negatives)}
        payload.update({"tokens_input": 512, "tokens_output": 64, "token_count": 9,
                        "max_tokens": 4096})
        assert payload is default_scrubber.scrub_value(payload, {})


class TestValidators:
    @pytest.mark.parametrize("text", [
        "card 4111 1111 1111 1112 declined",  # Luhn fails
        "order 1234567812345678 shipped",  # no issuer prefix fits
        "ssn 000-12-3456 is not assigned",
        "ssn 666-12-3456 is not assigned",
        "ssn 912-12-3456 is not assigned",
        "ssn 123-00-3456 is not assigned",
        "ssn 123-45-0000 is not assigned",
        "iban GB82 WEST 1234 5698 7654 33 has a bad check",
        "call 115-555-0132 (no NPA starts with 1)",
        "call 415-155-0132 (no NXX starts with 1)",
        "jwt eyJub3QiOiJqc29uIn0.eyJzdWIiOiIxIn0.sig has no alg",
        "ticket 2024-07-18 10:22:01 build 10.2.3.4 ratio 31033/21465",
        "+100 tokens and UTC+02:00",
    ])
    def test_invalid_candidates_stay(self, default_scrubber, text):
        """Shape alone is not enough: the validator has the last word."""
        assert text == default_scrubber.scrub_text(text, {})

    def test_github_checksum_decides(self, default_scrubber):
        """A classic GitHub token with a wrong checksum is not a GitHub token."""
        rng = random.Random(7)
        good = corpus.github_classic(rng)
        bad = good[:-1] + ("A" if good[-1] != "A" else "B")
        assert "GITHUB_TOKEN" in default_scrubber.scrub_text(f"t {good} x", {})
        assert f"t {bad} x" == default_scrubber.scrub_text(f"t {bad} x", {})

    def test_openai_key_needs_its_marker(self, default_scrubber):
        """``sk-`` keys without the T3BlbkFJ marker are someone else's."""
        text = "key sk-" + "a1B2" * 12 + " end"
        assert text == default_scrubber.scrub_text(text, {})

    def test_aws_secret_needs_context(self, default_scrubber):
        """A bare 40-character base64 word is not an AWS secret; SHA-1 hex never is."""
        bare = "value wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY here"
        assert bare == default_scrubber.scrub_text(bare, {})
        sha1 = "aws_secret_access_key=" + hashlib.sha1(b"x").hexdigest()
        assert "AWS_SECRET_KEY" not in default_scrubber.scrub_text(sha1, {})

    @pytest.mark.parametrize("text", [
        "pay 4111-1111-1111-1111 now", "pay 4111111111111111 now", "amex 3782 822463 10005",
        "ssn 123 45 6789", "+1 (415) 555-0132", "tel 020 7946 0958", "01 23 45 67 89",
        "+33 1 23 45 67 89", "DE89370400440532013000", "mailto:ops@example.com",
    ])
    def test_formats(self, default_scrubber, text):
        """Spaced, dashed, grouped and compact forms are all found."""
        assert "[REDACTED:" in default_scrubber.scrub_text(text, {})


class TestShapesSeenInTheWild:
    """Shapes an adversarial fuzz found leaking: each value must go, its context stay."""

    @pytest.mark.parametrize(("text", "value", "kind"), [
        # A token glued to non-ASCII text (the boundary is ASCII-only).
        ("密钥{stripe}", "{stripe}", "STRIPE_KEY"),
        ("clé{stripe}", "{stripe}", "STRIPE_KEY"),
        ("令牌Bearer 9f8e7d6c5b4a39281706", "9f8e7d6c5b4a39281706", "AUTH_HEADER"),
        # Numbers in URL paths.
        ("GET /v1/cards/4111111111111111/charge 402", "4111111111111111", "CARD_NUMBER"),
        ("GET /api/people/123-45-6789/records", "123-45-6789", "US_SSN"),
        # Credentials inside a JSON string that is itself JSON (an API gateway body).
        ('event {"body": "{\\"user\\": \\"a\\", \\"password\\": \\"Pw9xQ2mZ7\\"}"}',
         "Pw9xQ2mZ7", "SECRET_FIELD"),
        ('{"headers": "{\\"Authorization\\": \\"Basic dXNlcjpQdzl4UTJtWjc=\\"}"}',
         "dXNlcjpQdzl4UTJtWjc=", "AUTH_HEADER"),
        # A JSON value holding an escaped quote, and values aligned with spaces.
        ('login {"password": "ab\\"XYZsecret"}', 'ab\\"XYZsecret', "SECRET_FIELD"),
        ("password =        Pw9xQ2mZ7", "Pw9xQ2mZ7", "SECRET_FIELD"),
        # A URL-encoded e-mail, a phone with an extension, an e-mail before a dash.
        ("GET /users?email=alice.smith%40example.com&x=1", "alice.smith%40example.com",
         "EMAIL"),
        ("call (415) 555-0132x123", "(415) 555-0132", "PHONE"),
        ("notify ops@example.com- now", "ops@example.com", "EMAIL"),
        # A space before the colon (Jackson's pretty printer), padded Bearer, more extensions.
        ('{"password" : "Pw9xQ2mZ7"}', "Pw9xQ2mZ7", "SECRET_FIELD"),
        ("Bearer          9f8e7d6c5b4a39281706", "9f8e7d6c5b4a39281706", "AUTH_HEADER"),
        ("call (415) 555-0132X12", "(415) 555-0132", "PHONE"),
        ("call (415) 555-0132ext5", "(415) 555-0132", "PHONE"),
        # A token after "_" (Markdown italics, an env-style prefix).
        ("_{stripe}_", "{stripe}", "STRIPE_KEY"),
        ("STRIPE_{stripe}", "{stripe}", "STRIPE_KEY"),
        # Ruby's and PHP's "=>" (a hash printed by a tool, a print_r dump).
        ('{"password"=>"Pw9xQ2mZ7"}', "Pw9xQ2mZ7", "SECRET_FIELD"),
        ("{:api_key => 'Pw9xQ2mZ7'}", "Pw9xQ2mZ7", "SECRET_FIELD"),
        (":password => Pw9xQ2mZ7", "Pw9xQ2mZ7", "SECRET_FIELD"),
        # A marker must never cover a prefix and leave the value after it: Go's ":=",
        # string prefixes and wrappers, Markdown labels, every pair of a Cookie header.
        ('apiKey := "Pw9xQ2mZ7"', "Pw9xQ2mZ7", "SECRET_FIELD"),
        ('password = b"Pw9xQ2mZ7"', 'b"Pw9xQ2mZ7"', "SECRET_FIELD"),
        ("secret = f'Pw9xQ2mZ7'", "f'Pw9xQ2mZ7'", "SECRET_FIELD"),
        ('password = @"Pw9xQ2mZ7";', '@"Pw9xQ2mZ7"', "SECRET_FIELD"),
        ('api_key = SecretStr("Pw9xQ2mZ7")', 'SecretStr("Pw9xQ2mZ7"', "SECRET_FIELD"),
        ("**Password:** Pw9xQ2mZ7", "Pw9xQ2mZ7", "SECRET_FIELD"),
        ("Cookie: theme=dark; sid=Pw9xQ2mZ7", "theme=dark; sid=Pw9xQ2mZ7", "SECRET_FIELD"),
        # No known scheme: the whole value goes, not all but its first word.
        ("authorization=Pw9xQ2mZ7 user=bob", "Pw9xQ2mZ7 user=bob", "AUTH_HEADER"),
        # Aligned assignments, subscripts, print_r, two-word labels.
        ("password          = Pw9xQ2mZ7", "Pw9xQ2mZ7", "SECRET_FIELD"),
        ('os.environ["OPENAI_API_KEY"] = "Pw9xQ2mZ7"', "Pw9xQ2mZ7", "SECRET_FIELD"),
        ("app.config['SECRET_KEY']='Pw9xQ2mZ7'", "Pw9xQ2mZ7", "SECRET_FIELD"),
        ("[password] => Pw9xQ2mZ7", "Pw9xQ2mZ7", "SECRET_FIELD"),
        ("API Key: Pw9xQ2mZ7", "Pw9xQ2mZ7", "SECRET_FIELD"),
        # PINs, one-time codes, card codes and SSNs under their names.
        ("PIN: 4821", "4821", "SECRET_FIELD"),
        ('{"otp": "604312"}', "604312", "SECRET_FIELD"),
        ("cvv=123", "123", "SECRET_FIELD"),
        ("SSN: 123456789", "123456789", "SECRET_FIELD"),
        # Markdown around a key.
        ("**password**: Pw9xQ2mZ7", "Pw9xQ2mZ7", "SECRET_FIELD"),
        ("- `api_key`: Pw9xQ2mZ7", "Pw9xQ2mZ7", "SECRET_FIELD"),
        # A password holding "#", "?" or "/" unescaped; an e-mail as a URL's user name.
        ("dsn postgres://bob:Pw9x#Q2mZ7@db.example.com/app", "Pw9x#Q2mZ7", "URL_PASSWORD"),
        ("redis://:Pw9x?Q2mZ7@cache:6379/0", "Pw9x?Q2mZ7", "URL_PASSWORD"),
        ("smtp://maria@example.com@smtp.example.com:587", "maria@example.com", "EMAIL"),
        # A word glued by "_" or "." keeps only its own token from being a phone.
        ("user_42 415-555-2671", "415-555-2671", "PHONE"),
        ("emp_12 123-45-6789", "123-45-6789", "US_SSN"),
        # Perl's bare "=>", Cookie values with quotes or escapes, an index-free subscript.
        ("password=>Pw9xQ2mZ7", "Pw9xQ2mZ7", "SECRET_FIELD"),
        ("cookie=>sid=Pw9xQ2mZ7", "sid=Pw9xQ2mZ7", "SECRET_FIELD"),
        ('{"cookie": "theme=\\"dark\\"; sid=Pw9xQ2mZ7"}', 'theme=\\"dark\\"; sid=Pw9xQ2mZ7',
         "SECRET_FIELD"),
        ('Set-Cookie: sid="Pw9xQ2mZ7"; Path=/', 'sid="Pw9xQ2mZ7"; Path=/', "SECRET_FIELD"),
        ("otp_code=604312", "604312", "SECRET_FIELD"),
        ("[db](postgres://bob:Pw9x#Q2mZ7@db)", "Pw9x#Q2mZ7", "URL_PASSWORD"),
        # Command lines, as an agent's shell tool logs them.
        ("curl -u bob:Pw9xQ2mZ7 https://api.example.com", "Pw9xQ2mZ7", "SECRET_FIELD"),
        ("mysql -u root -pPw9xQ2mZ7 shop", "Pw9xQ2mZ7", "SECRET_FIELD"),
        ("psql --password 'Pw9xQ2mZ7' -h db", "Pw9xQ2mZ7", "SECRET_FIELD"),
        ("sshpass -p Pw9xQ2mZ7 ssh deploy@host", "Pw9xQ2mZ7", "SECRET_FIELD"),
        ("redis-cli -h cache -a Pw9xQ2mZ7 ping", "Pw9xQ2mZ7", "SECRET_FIELD"),
        # ... and as a tool call's JSON arguments carry them, quoted, in Markdown, in brackets.
        ('{"command": "./deploy --token \\"Pw9xQ2mZ7\\""}', "Pw9xQ2mZ7", "SECRET_FIELD"),
        ("./run --password $'Pw9xQ2mZ7'", "Pw9xQ2mZ7", "SECRET_FIELD"),
        ("Run `--token Pw9xQ2mZ7` to log in.", "Pw9xQ2mZ7", "SECRET_FIELD"),
        ("(--password Pw9xQ2mZ7)", "Pw9xQ2mZ7", "SECRET_FIELD"),
        ('curl -u admin:"Pw9xQ2mZ7" https://x', "Pw9xQ2mZ7", "SECRET_FIELD"),
        ("sshpass -pPw9xQ2mZ7 ssh deploy@host", "Pw9xQ2mZ7", "SECRET_FIELD"),
        ("mysql -p'Pw9xQ2mZ7' shop", "Pw9xQ2mZ7", "SECRET_FIELD"),
        ("redis-server --requirepass Pw9xQ2mZ7", "Pw9xQ2mZ7", "SECRET_FIELD"),
        # Subscripts assigned a literal without quotes; a lowercase "API key" label.
        ('creds["db_password"]=Pw9xQ2mZ7', "Pw9xQ2mZ7", "SECRET_FIELD"),
        ("ENV['API_KEY'] = Pw9xQ2mZ7", "Pw9xQ2mZ7", "SECRET_FIELD"),
        ("Your API key: Pw9xQ2mZ7", "Pw9xQ2mZ7", "SECRET_FIELD"),
        # National numbers with a trunk 0 (NL, NZ) and the "(0)" of e-mail signatures.
        ("tel 010 123 4567", "010 123 4567", "PHONE"),
        ("call +44 (0)20 7946 0958 now", "+44 (0)20 7946 0958", "PHONE"),
        ("call +33 (0)6 12 34 56 78 now", "+33 (0)6 12 34 56 78", "PHONE"),
        # European names in e-mail addresses and IDN domains (precomposed and combining).
        ("from françois.müller@bücher.de today", "françois.müller@bücher.de", "EMAIL"),
        ("from jose\u0301@example.com today", "jose\u0301@example.com", "EMAIL"),
        ("请联系alice@example.com获取", "alice@example.com", "EMAIL"),
        # The "@" as an HTML character reference, or URL-encoded twice.
        ("mail alice&#64;example.com now", "alice&#64;example.com", "EMAIL"),
        ("mail bob&#X40;example.org now", "bob&#X40;example.org", "EMAIL"),
        ("next alice%2540example.com done", "alice%2540example.com", "EMAIL"),
        # A number glued to a name by "_" or ".".
        ("ssn_123-45-6789", "123-45-6789", "US_SSN"),
        ("card.4111111111111111.", "4111111111111111", "CARD_NUMBER"),
    ])
    def test_found(self, default_scrubber, text, value, kind):
        stripe = "sk" + "_live_" + "4eC39HqLyjWDarjtT1zdp7dc"
        text, value = text.replace("{stripe}", stripe), value.replace("{stripe}", stripe)
        out = default_scrubber.scrub_text(text, {})
        assert value not in out
        assert {kind} == {m.group(1) for m in MARKER.finditer(out)}
        assert text.replace(value, "") == MARKER.sub("", out)

    @pytest.mark.parametrize("text", ['{"password": "None"}', '{"password": "TRUE"}',
                                      "password=NULL", "db_password='None'"])
    def test_a_password_spelled_like_a_literal_is_still_a_password(self, default_scrubber,
                                                                   text):
        """Quoted, or in another case, it is a string: redacted like any other value."""
        assert "[REDACTED:SECRET_FIELD:" in default_scrubber.scrub_text(text, {})

    def test_literals_under_credential_names_are_not_credentials(self, default_scrubber):
        """true/false/null/None in JSON or Python text stay, and so do the braces after them."""
        for text in ('{"api_token": null}', '{"require_password": false}',
                     "{'use_auth': True}", "{'api_key': None}",
                     '{"body": "{\\"remember_password\\": false}"}'):
            assert text == default_scrubber.scrub_text(text, {}), text

    @pytest.mark.parametrize("text", [
        "pi 3.1415926535897932", "build 2024.06.26-4111", "mixtral-8x7b at 1920x1080",
        "X12 and ext5 alone", "mail local%40part", "ratio 31033/21465 tokens",
        "see /srv/data/2024-06-26/report-0001.json", "x123 and 0x1234567890ab",
        "score 0.4111111111111111", "p=12.4111111111111111", "v1.4111111111111111",
        # Arrow functions are not hashes; dates, times and sizes glued to a name by "_".
        "tokens.map(token => token.length)", "cookies.map(cookie => cookie.trim())",
        "password => ''", "backup_2024-01-05-10-30-00.tar.gz", "dims_384 768 1536",
        "Screenshot_2024-06-15-12-34-56-789_com.android.chrome.jpg", "page_123 45 6789",
        # A tokenizer's special tokens and paging cursors are not credentials.
        '{"eos_token": "</s>", "pad_token": "[PAD]"}', "next_page_token=CAIQAA",
        "spin: 3", "[INFO]: started", "name      = my-app", "The Key: value",
        "**Note**: fine", "http://host:8080/path?q=1#top", "https://user@host.example.com/x",
        "server -p 8080", "mysql -u root -p shop", 'git commit -m "fix password reset"',
        "train --max-tokens 512 --token-limit 9", "curl -u bob https://x", "a - b",
        "self._sessions[token] = session", "tokens: List[Token] = []", "cookie: null",
        "result['Secret'] == ''", "@article{x, issn = {1234-5678}}", "id 000-000-0000",
        "tokens.map(token=>token.length)",
        # Code assigning an expression to a subscript, prose about options, lowercase
        # labels, and AWS CLI paging tokens.
        'r.headers["Authorization"] = _digest_auth', "$this->headers['Cookie'] = $value;",
        "Unsupported curve for ssh private key: {name}", "the --password option is gone",
        "aws s3api list-objects --starting-token abc123",
        # Option values that are not credentials: uid:gid, help text, prose, redirections,
        # options of other commands than the tool's, references to where a secret is.
        "docker run --user 1000:1000 alpine id", "docker exec -u root:root c sh",
        "  --password PASSWORD   Database password", "--token <value>",
        "pass --token as an env var", "gcc -pthread x.c -lmysqlclient",
        "sshpass -e ssh -p 2222 host", "docker login r && docker run -p 8080:80 nginx",
        "docker login --password-stdin ghcr.io", "psql --no-password mydb",
        "gh auth login --with-token < token.txt", "items.map(token => token)",
        "{cookie => $sid}", 'creds["password"] = password', "ssh private key: {name}",
    ])
    def test_still_left_alone(self, default_scrubber, text):
        assert text == default_scrubber.scrub_text(text, {})


class TestRawTextUnderItsNames:
    """RAW_TEXT is decided by the key, in payloads and extras: raw LLM text is never kept."""

    @pytest.mark.parametrize("key", ["prompt", "response", "completion", "messages",
                                     "system_prompt", "query", "content", "Prompt"])
    def test_twenty_values_under_each_name_become_one_marker_each(self, default_scrubber,
                                                                  planted, key):
        sentences = [p.text for p in planted[:20]]
        payload = {"metadata": {key: None, "nested": [{key: text} for text in sentences]},
                   "model": "gpt-4o-mini"}
        counts: dict[str, int] = {}
        out = default_scrubber.scrub_value(payload, counts)
        shown = repr(out)
        assert [] == [text for text in sentences if text in shown]
        assert {"RAW_TEXT": 20} == counts
        assert out["metadata"][key] is None and "gpt-4o-mini" == out["model"]

    def test_a_chat_is_one_linkable_marker(self, default_scrubber):
        """A message list is hashed as a whole: the same chat gives the same marker."""
        chat = [{"role": "user", "content": "My card is on file, call me at home."}]
        first = default_scrubber.scrub_value({"messages": chat}, {})["messages"]
        again = default_scrubber.scrub_value({"messages": [dict(chat[0])]}, {})["messages"]
        assert first == again
        assert MARKER.fullmatch(first).group(1) == "RAW_TEXT"

    def test_names_that_only_contain_the_words_are_left(self, default_scrubber):
        payload = {"metadata": {"prompt_template": "v3", "response_ms": 830,
                                "content_type": "text/plain", "query_count": 2}}
        assert payload is default_scrubber.scrub_value(payload, {})

    def test_a_card_given_as_a_number_under_such_a_name_is_still_a_card(self,
                                                                      default_scrubber):
        out = default_scrubber.scrub_value({"content": 4111111111111111, "query": 7}, {})
        assert "CARD_NUMBER" == MARKER.fullmatch(out["content"]).group(1)
        assert 7 == out["query"]

    def test_it_can_be_switched_off(self):
        scrubber = Scrubber(digest=keyed(b"k1" * 16), disable=["RAW_TEXT"])
        payload = {"metadata": {"prompt": "Summarise the refund policy."}}
        assert payload is scrubber.scrub_value(payload, {})
