"""A corpus of generated credentials in their real formats (none is a live credential), and of
look-alikes that are not credentials and must pass redaction untouched.

Each credential comes with its *needles*: the parts that must appear nowhere once redacted (the
secret itself; for a multi-line key, each of its base64 lines). Needles are plain ASCII without
characters JSON or a terminal would escape, so they can be searched for in raw database bytes.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import random
import re
import string
from dataclasses import dataclass

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa

_rng = random.Random(12)
UPPER_DIGITS = string.ascii_uppercase + string.digits
ALNUM = string.ascii_letters + string.digits
B64 = ALNUM + "+/"


def _pick(alphabet: str, n: int) -> str:
    return "".join(_rng.choice(alphabet) for _ in range(n))


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def _jwt(alg: str, claims: dict) -> str:
    head = _b64url(json.dumps({"alg": alg, "typ": "JWT"}).encode())
    body = _b64url(json.dumps(claims).encode())
    sig = _b64url(hmac.new(_pick(ALNUM, 32).encode(), f"{head}.{body}".encode(), hashlib.sha256).digest())
    return f"{head}.{body}.{sig}"


def _pem(key, fmt, encryption=None) -> str:
    return key.private_bytes(serialization.Encoding.PEM, fmt,
                             encryption or serialization.NoEncryption()).decode()


@dataclass(frozen=True)
class Credential:
    kind: str
    text: str  # the credential in the context it is usually found in
    needles: tuple[str, ...]


def _cred(kind: str, text: str, *needles: str) -> Credential:
    return Credential(kind, text, needles or (text,))


def _pem_cred(kind: str, pem: str) -> Credential:
    body = [line for line in pem.splitlines() if line and not line.startswith("-----")]
    return Credential(kind, f"key file:\n{pem}", tuple(line for line in body if len(line) >= 16)[:4])


def _corpus() -> list[Credential]:
    aws_id, aws_tmp, aws_secret = "AKIA" + _pick(UPPER_DIGITS, 16), "ASIA" + _pick(UPPER_DIGITS, 16), _pick(B64, 40)
    gh = {p: f"{p}_" + _pick(ALNUM, 36) for p in ("ghp", "gho", "ghs")}
    slack_bot = f"xoxb-{_pick(string.digits, 12)}-{_pick(string.digits, 13)}-{_pick(ALNUM, 24)}"
    slack_user = f"xoxp-{_pick(string.digits, 12)}-{_pick(string.digits, 12)}-{_pick(string.digits, 13)}-{_pick('abcdef0123456789', 32)}"
    hook = f"https://hooks.slack.com/services/T{_pick(UPPER_DIGITS, 8)}/B{_pick(UPPER_DIGITS, 10)}/{_pick(ALNUM, 24)}"
    openai_legacy = "sk-" + _pick(ALNUM, 20) + "T3BlbkFJ" + _pick(ALNUM, 20)
    openai_project = "sk-proj-" + _pick(ALNUM + "_-", 124)
    anthropic = "sk-ant-api03-" + _pick(ALNUM + "_-", 93) + "AA"
    anthropic_admin = "sk-ant-admin01-" + _pick(ALNUM + "_-", 93) + "AA"
    gcp_key, gcp_oauth = "AIza" + _pick(ALNUM + "_-", 35), "ya29.a0" + _pick(ALNUM + "_-", 150)
    azure_key = _pick(B64, 86) + "=="
    azure_sig = _pick(ALNUM, 40) + "%3D"
    azure_ad = _pick(ALNUM, 3) + "8Q~" + _pick(ALNUM + "_-", 34)
    bearer_b64 = base64.b64encode(bytes(_rng.randrange(256) for _ in range(45))).decode()
    while "+" not in bearer_b64 and "/" not in bearer_b64:
        bearer_b64 = base64.b64encode(bytes(_rng.randrange(256) for _ in range(45))).decode()
    opaque = _pick(ALNUM, 40)
    basic_pw = _pick(ALNUM, 14)
    basic = base64.b64encode(f"svc-reporting:{basic_pw}".encode()).decode()
    db_pw, git_pw = _pick(ALNUM, 16), _pick(ALNUM, 20)
    stripe, sendgrid = "sk_live_" + _pick(ALNUM, 24), f"SG.{_pick(ALNUM + '_-', 22)}.{_pick(ALNUM + '_-', 43)}"
    gitlab, npm = "glpat-" + _pick(ALNUM + "_-", 20), "npm_" + _pick(ALNUM, 36)
    pypi = "pypi-AgEIcHlwaS5vcmc" + _pick(ALNUM + "_-", 80)
    fine_grained = "github_pat_" + _pick(ALNUM, 22) + "_" + _pick(ALNUM, 59)
    api_value, pw_value, client_secret = _pick(ALNUM, 32), _pick(ALNUM + "!#%", 18), _pick(ALNUM, 40)
    jwt_hs, jwt_rs = _jwt("HS256", {"sub": "1234567890", "name": "Dana"}), _jwt("RS256", {"iss": "https://id.example.com",
                                                                                         "aud": "chainproof", "exp": 1900000000})
    acme = f"ACME-{_pick(string.digits, 6)}"
    rsa_key = rsa.generate_private_key(public_exponent=65537, key_size=1024)
    return [
        _cred("AWS access key id", f"aws_access_key_id = {aws_id}", aws_id),
        _cred("AWS temporary key id", f"AccessKeyId: {aws_tmp}", aws_tmp),
        _cred("AWS secret access key", f'aws_secret_access_key = "{aws_secret}"', aws_secret.replace("+", "").replace("/", "")[:16]),
        *[_cred(f"GitHub {p} token", f"GITHUB_TOKEN={t}", t) for p, t in gh.items()],
        _cred("GitHub fine-grained token", f"token {fine_grained}", fine_grained),
        _cred("Slack bot token", f"slack: {slack_bot}", slack_bot),
        _cred("Slack user token", slack_user, slack_user),
        _cred("Slack webhook", f"post to {hook}", hook.rsplit("/", 1)[1]),
        _cred("OpenAI legacy key", f"OPENAI_API_KEY={openai_legacy}", openai_legacy),
        _cred("OpenAI project key", f"using {openai_project} for the batch", openai_project),
        _cred("Anthropic API key", f"x-api-key: {anthropic}", anthropic[:60]),
        _cred("Anthropic admin key", f"admin key {anthropic_admin}", anthropic_admin[:60]),
        _cred("GCP API key", f"https://maps.googleapis.com/maps/api?key={gcp_key}", gcp_key),
        _cred("GCP OAuth token", f"access token {gcp_oauth}", gcp_oauth[:60]),
        _pem_cred("GCP service account key", _pem(rsa_key, serialization.PrivateFormat.PKCS8)),
        _pem_cred("RSA private key", _pem(rsa_key, serialization.PrivateFormat.TraditionalOpenSSL)),
        _pem_cred("EC private key", _pem(ec.generate_private_key(ec.SECP256R1()), serialization.PrivateFormat.TraditionalOpenSSL)),
        _pem_cred("OpenSSH private key", _pem(ed25519.Ed25519PrivateKey.generate(), serialization.PrivateFormat.OpenSSH)),
        _pem_cred("encrypted PKCS8 key", _pem(ec.generate_private_key(ec.SECP384R1()), serialization.PrivateFormat.PKCS8,
                                             serialization.BestAvailableEncryption(b"correct horse"))),
        _cred("Azure storage key", f"DefaultEndpointsProtocol=https;AccountName=acme;AccountKey={azure_key};"
                                   f"EndpointSuffix=core.windows.net", azure_key[:40].replace("+", "").replace("/", "")),
        _cred("Azure SAS token", f"https://acme.blob.core.windows.net/c?sv=2022-11-02&ss=b&sp=r&sig={azure_sig}",
              azure_sig[:40]),
        _cred("Azure AD client secret", f"client credential {azure_ad} expires 2027", azure_ad),
        _cred("JWT (HS256)", f"id_token={jwt_hs}", *jwt_hs.split(".")),
        _cred("JWT (RS256) in a Bearer header", f"Authorization: Bearer {jwt_rs}", *jwt_rs.split(".")),
        _cred("Bearer token, base64", f"curl -H 'Authorization: Bearer {bearer_b64}'",
              *[p for p in re.split(r"[+/=]", bearer_b64) if len(p) >= 6]),
        _cred("Bearer token, opaque", f"bearer {opaque}", opaque),
        _cred("Basic authorization header", f"Authorization: Basic {basic}", basic[:20], basic_pw),
        _cred("Basic credentials, no header name", f"sent basic {basic} to the proxy", basic[:20]),
        _cred("user:pass@ database URL", f"postgres://admin:{db_pw}@db.internal.example:5432/prod", db_pw),
        _cred("user:pass@ git URL", f"git clone https://deploy:{git_pw}@git.example.com/acme/repo.git", git_pw),
        _cred("user:pass@ MySQL URL, '!' in the password", "mysql://root:Passw0rd!x@10.0.0.1/db", "Passw0rd", "0rd!x"),
        _cred("password-only Redis URL", "redis://:s3cretpw@host", "s3cretpw"),
        _cred("user:pass@ AMQP URL, '!' in the password", "amqp://guest:gu3st!pw@host", "gu3st", "!pw"),
        _cred("user:pass@ FTP URL, '$' in the password", "ftp://bob:b0b$pw@host", "b0b$", "$pw"),
        _cred("user:pass@ HTTPS URL, '#' in the password", "https://user:pa#ss@host", "pa#", "#ss"),
        _cred("Stripe live key", f"stripe.api_key = '{stripe}'", stripe),
        _cred("SendGrid key", sendgrid, sendgrid.split(".")[2]),
        _cred("GitLab token", f"PRIVATE-TOKEN: {gitlab}", gitlab),
        _cred("npm token", f"//registry.npmjs.org/:_authToken={npm}", npm),
        _cred("PyPI token", f"password = {pypi}", pypi[:60]),
        _cred("api_key assignment", f'{{"api_key": "{api_value}"}}', api_value),
        _cred("password assignment", f"db password: {pw_value}", pw_value.replace("!", "").replace("#", "").replace("%", "")[:8]),
        _cred("client_secret assignment", f"client_secret={client_secret}", client_secret),
        _cred("configured pattern", f"ticket {acme} for the vendor", acme),
    ]


CREDENTIALS: list[Credential] = _corpus()
"""At least 30 generated credentials in real formats."""

SECRET_PATTERNS = [r"ACME-\d{6}"]
"""The configured pattern the corpus's last credential needs (``secret_patterns``)."""

_PUBLIC = ed25519.Ed25519PrivateKey.generate().public_key().public_bytes(
    serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo).decode()

LOOKALIKES: list[str] = [
    hashlib.sha256(b"record").hexdigest(),  # a record hash
    "a3f1c2d4e5b60718293a4b5c6d7e8f9012345678",  # a git commit id
    "4f1b2c3d-9e8f-4a7b-8c6d-5e4f3a2b1c0d",  # a run id
    "task-force-2018-assessment-report",
    "risk-free rate of 2.41% and risk-adjusted return",
    "Bearer bonds and bearer securities are negotiable instruments",
    "Basic earnings per share rose to 8.13; basic and diluted",
    "https://www.sec.gov/Archives/edgar/data/66740/000006674018000010/0000066740-18-000010-index.htm",
    "contact investor.relations@example.com for the filing",
    "https://example.com:8443/reports?year=2017&page=2",
    "ssh deploy@build-01 uptime",
    "git clone git@github.com:org/repo.git",
    "user@host and admin@10.0.0.1:22",
    "https://host.example.com/path/to@file?x=1",
    "mysql://10.0.0.1:3306/db and redis://cache:6379/0",
    "mailto:dana@example.com",
    "accession number 0000066740-18-000010",
    "2018-02-08T00:00:00+00:00",
    "password policy: rotate every 90 days",
    "token usage: 1,234 input tokens and 56 reasoning tokens",
    "the api key rotation procedure is documented",
    "Authorization required before the board meets",
    "The secret to margins is scale.",
    "Corporate Secretary and General Counsel",
    "Asia-Pacific revenue grew 7%",
    "laws and regulations, including draws on the credit facility",
    "private placement of notes due 2027",
    "xoxo from the investor relations team",
    "AKIA is an abbreviation, AKIA123 too short",
    "ghp_short and gho_ and glpat-",
    "eyJustice is not a token; eyJ alone is no JWT",
    "sk-12 and the sk- prefix",
    "NYSE:MMM closed at 245.13 USD; EUR-USD 1.24",
    "version v2.1.3-rc.1 of the sig=1 parameter",
    "phone +1 (651) 733-1110, IP 10.0.0.1",
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNkYPhfDwAChwGA60e6kgAAAABJRU5ErkJggg",
    f"public key for auditors:\n{_PUBLIC}",
    "-----BEGIN CERTIFICATE-----\nMIIBszCCAVmgAwIBAgIUQ\n-----END CERTIFICATE-----",
]
"""At least 30 texts that look like credentials, or hold their markers, and are not."""

assert len(CREDENTIALS) >= 30 and len(LOOKALIKES) >= 30
