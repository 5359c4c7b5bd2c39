"""SAML Response verification throughput on one thread: hubgate's ``verify_response``
against python3-saml, signxml, and a bare lxml parse + xmlsec verify, all on the same
realistic signed response (Entra ID's shape, RSA-2048, about 6 KB).

Run::

    .venv/bin/python bench/saml.py              # full run, about 40 seconds
    .venv/bin/python bench/saml.py --quick      # a few-second smoke run
    .venv/bin/python bench/saml.py --profile    # also: where verify_response spends its time

The response is issued at the real current time (python3-saml reads the system
clock) and hubgate is handed that same instant. Every verifier must accept it and
reject a tampered copy before anything is timed. Figures are printed next to the
targets; nothing is asserted (benchmarks print, tests never time).
"""

from __future__ import annotations

import argparse
import base64
import cProfile
import io
import os
import pstats
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from importlib.metadata import version

import xmlsec
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from lxml import etree
from onelogin.saml2.response import OneLogin_Saml2_Response
from onelogin.saml2.settings import OneLogin_Saml2_Settings
from signxml.verifier import XMLVerifier

import _saml_fixture as fx
from hubgate.sso.saml.config import SamlConfig
from hubgate.sso.saml.response import ResponseContext, verify_response

RATIO_TARGET = 10.0
RATE_TARGET = 1_500
HUBGATE = "hubgate verify_response (full pipeline)"
ONELOGIN = "python3-saml is_valid (strict)"
FLOOR = "lxml parse + xmlsec verify (floor)"

_DS = "http://www.w3.org/2000/09/xmldsig#"
_POST = "urn:oasis:names:tc:SAML:2.0:bindings:HTTP-POST"
_REDIRECT = "urn:oasis:names:tc:SAML:2.0:bindings:HTTP-Redirect"


@dataclass(frozen=True, slots=True)
class Plan:
    """How long to measure each verifier: ``rounds`` runs of about ``seconds`` each."""

    seconds: float
    rounds: int
    profile_calls: int


def plan_from(args: argparse.Namespace) -> Plan:
    quick = bool(args.quick)
    return Plan(
        seconds=0.3 if quick else args.seconds,
        rounds=3,
        profile_calls=300 if quick else 3_000,
    )


# -- the verifiers ------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class World:
    """One identity provider, one signed response, and each library's settings for it."""

    idp: fx.Idp
    fixture: fx.Fixture
    config: SamlConfig
    onelogin: OneLogin_Saml2_Settings


class AlwaysFirst:
    """A replay cache that has never seen anything, so one response verifies forever."""

    def first_use(self, key: str, expires_at: datetime) -> bool:
        return True


def build_world() -> World:
    idp = fx.make_idp()
    fixture = fx.signed_response(idp, issued_at=datetime.now(UTC).replace(microsecond=0))
    config = SamlConfig(
        connection_id=7,
        idp_entity_id=fx.IDP_ENTITY_ID,
        idp_sso_url=fx.IDP_SSO_URL,
        idp_certificates=(idp.cert_pem,),
        sp_entity_id=fx.SP_ENTITY_ID,
        acs_url=fx.ACS_URL,
    )
    onelogin = OneLogin_Saml2_Settings(
        {
            "strict": True,
            "debug": False,
            "sp": {
                "entityId": fx.SP_ENTITY_ID,
                "assertionConsumerService": {"url": fx.ACS_URL, "binding": _POST},
                "NameIDFormat": "urn:oasis:names:tc:SAML:1.1:nameid-format:emailAddress",
            },
            "idp": {
                "entityId": fx.IDP_ENTITY_ID,
                "singleSignOnService": {"url": fx.IDP_SSO_URL, "binding": _REDIRECT},
                "x509cert": idp.cert_pem,
            },
            "security": {"wantAssertionsSigned": True, "wantMessagesSigned": False},
        }
    )
    return World(idp=idp, fixture=fixture, config=config, onelogin=onelogin)


Verifier = Callable[[bytes], object]
"""Takes the base64 form value; returns something truthy when it accepted it."""


def hubgate_verifier(world: World) -> Verifier:
    config, now, replay = world.config, world.fixture.issued_at, AlwaysFirst()

    def verify(encoded: bytes) -> object:
        return verify_response(encoded, config, ResponseContext(now, fx.REQUEST_ID), replay)

    return verify


def _request_data(encoded: str) -> dict[str, object]:
    return {
        "https": "on",
        "http_host": fx.ACS_HOST,
        "script_name": fx.ACS_PATH,
        "get_data": {},
        "post_data": {"SAMLResponse": encoded},
    }


def onelogin_verifier(world: World, *, extract: bool = False) -> Verifier:
    settings = world.onelogin

    def verify(encoded: bytes) -> object:
        text = encoded.decode()
        response = OneLogin_Saml2_Response(settings, text)
        valid = response.is_valid(_request_data(text), fx.REQUEST_ID)
        if valid and extract:
            return (response.get_nameid(), response.get_attributes())
        return valid

    return verify


def signxml_verifier(world: World) -> Verifier:
    cert = world.idp.cert_pem

    def verify(encoded: bytes) -> object:
        return XMLVerifier().verify(base64.b64decode(encoded), x509_cert=cert)

    return verify


def floor_verifier(world: World) -> Verifier:
    """Decode, parse, find the Assertion's signature, verify it: nothing else. The key
    is the certificate's bare public key, loaded once (a key loaded with its
    certificate costs a certificate copy each time a context takes it)."""
    certificate = x509.load_pem_x509_certificate(world.idp.cert_pem.encode())
    public_pem = certificate.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    key = xmlsec.Key.from_memory(public_pem, xmlsec.constants.KeyDataFormatPem)
    parser = etree.XMLParser(resolve_entities=False, no_network=True)
    assertion_tag, signature_tag = f"{{{fx.SAML_NS}}}Assertion", f"{{{_DS}}}Signature"

    def verify(encoded: bytes) -> object:
        root = etree.fromstring(base64.b64decode(encoded), parser)
        assertion = root.find(assertion_tag)
        signature = assertion.find(signature_tag) if assertion is not None else None
        if assertion is None or signature is None:
            return False
        context = xmlsec.SignatureContext()
        context.key = key
        context.register_id(assertion, "ID")
        context.verify(signature)
        return True

    return verify


@dataclass(frozen=True, slots=True)
class Candidate:
    label: str
    verify: Verifier


def candidates(world: World) -> list[Candidate]:
    return [
        Candidate(HUBGATE, hubgate_verifier(world)),
        Candidate(ONELOGIN, onelogin_verifier(world)),
        Candidate(
            "python3-saml is_valid + nameid/attributes", onelogin_verifier(world, extract=True)
        ),
        Candidate("signxml XMLVerifier.verify (signature)", signxml_verifier(world)),
        Candidate(FLOOR, floor_verifier(world)),
    ]


# -- refuse to measure anything that does not verify ----------------------------


def tampered(encoded: bytes) -> bytes:
    """The same response with one group id changed inside the signed Assertion."""
    xml = base64.b64decode(encoded)
    changed = xml.replace(fx.GROUPS[3].encode(), fx.GROUPS[3][:-1].encode() + b"f", 1)
    assert changed != xml
    return base64.b64encode(changed)


def _accepts(verify: Verifier, encoded: bytes) -> bool:
    """Each library says no its own way: an exception, ``False``, or a hubgate error."""
    try:
        return bool(verify(encoded))
    except Exception:
        return False


def check(world: World, cases: Sequence[Candidate]) -> None:
    """python3-saml's verdict is printed as asked; every verifier must accept the
    response and reject a tampered copy, or nothing is measured."""
    text = world.fixture.encoded.decode()
    response = OneLogin_Saml2_Response(world.onelogin, text)
    valid = response.is_valid(_request_data(text), fx.REQUEST_ID)
    print(f"python3-saml is_valid: {valid}, get_error(): {response.get_error()!r}")
    identity = hubgate_verifier(world)(world.fixture.encoded)
    print(f"hubgate: {identity!r:.160}...")
    bad = tampered(world.fixture.encoded)
    for case in cases:
        if not _accepts(case.verify, world.fixture.encoded):
            raise SystemExit(f"{case.label}: rejected the genuine response; refusing to measure")
        if _accepts(case.verify, bad):
            raise SystemExit(f"{case.label}: accepted a tampered response; refusing to measure")
    print(f"all {len(cases)} verifiers accept the response and reject a tampered copy")


# -- timing ---------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Rate:
    calls: int
    per_second: float
    cpu_per_second: float


def measure(cases: Sequence[Candidate], encoded: bytes, plan: Plan) -> dict[str, Rate]:
    """Best of ``plan.rounds`` runs of enough calls for about ``plan.seconds`` each, by
    the wall clock (``perf_counter``) and by this thread's CPU time. The rounds take
    turns (every verifier once, then again), so a busy spell on a shared host lands on
    all of them rather than on one."""
    calls = {case.label: _calibrate(case.verify, encoded, plan.seconds) for case in cases}
    timings: dict[str, list[tuple[float, float]]] = {case.label: [] for case in cases}
    for _ in range(plan.rounds):
        for case in cases:
            timings[case.label].append(_time(case.verify, encoded, calls[case.label]))
    return {
        label: Rate(
            calls=calls[label],
            per_second=calls[label] / min(wall for wall, _ in runs),
            cpu_per_second=calls[label] / min(cpu for _, cpu in runs),
        )
        for label, runs in timings.items()
    }


def _calibrate(verify: Verifier, encoded: bytes, seconds: float) -> int:
    calls, started = 0, time.perf_counter()
    while (elapsed := time.perf_counter() - started) < min(0.2, seconds):
        verify(encoded)
        calls += 1
    return max(1, round(calls * seconds / elapsed))


def _time(verify: Verifier, encoded: bytes, calls: int) -> tuple[float, float]:
    wall, cpu = time.perf_counter(), time.thread_time()
    for _ in range(calls):
        verify(encoded)
    return time.perf_counter() - wall, time.thread_time() - cpu


# -- profile --------------------------------------------------------------------

# verify_response's steps in order (src/hubgate/sso/saml/), each with what it calls
# that is worth a line of its own: (file, function, depth); ``~`` is a C function.
_XMLSEC_VERIFY = "<method 'verify' of 'xmlsec.SignatureContext' objects>"
_STAGES = (
    ("xml.py", "decode", 0),
    ("xml.py", "parse", 0),
    ("response.py", "_verify_structure_and_signatures", 0),
    ("response.py", "_verify_unique_ids", 1),
    ("response.py", "_verify_signatures_placed", 1),
    ("response.py", "_the_assertion", 1),
    ("signature.py", "verify_enveloped", 1),
    ("signature.py", "_check_shape", 2),
    ("~", _XMLSEC_VERIFY, 2),
    ("response.py", "_verify_status", 0),
    ("response.py", "_verify_issuer", 0),
    ("response.py", "_verify_destination", 0),
    ("response.py", "_verify_in_response_to", 0),
    ("response.py", "_verify_subject_confirmation", 0),
    ("response.py", "_verify_conditions", 0),
    ("response.py", "_verify_not_replayed", 0),
    ("response.py", "_identity", 0),
    ("response.py", "_attributes", 1),
    ("response.py", "_named_values", 2),
)
_StatsTable = dict[tuple[str, int, str], tuple[int, int, float, float, object]]


def profile(world: World, plan: Plan) -> None:
    """cProfile ``verify_response``: time per step (cumulative), then the top functions
    by own time. cProfile's overhead inflates the many small Python calls far more
    than the one long C call, so read the shares as an upper bound for Python code."""
    verify, encoded, calls = hubgate_verifier(world), world.fixture.encoded, plan.profile_calls
    profiler = cProfile.Profile()
    profiler.enable()
    for _ in range(calls):
        verify(encoded)
    profiler.disable()
    table: _StatsTable = pstats.Stats(profiler).stats  # type: ignore[attr-defined]
    total = _cumulative(table, f"bench{os.sep}saml.py", "verify")
    print(
        f"\nprofile: {calls:,} x verify_response under cProfile, {total / calls * 1e6:.0f} us each"
    )
    print(f"{'step (cumulative time)':<52} {'us/call':>8} {'share':>6}")
    for filename, function, depth in _STAGES:
        spent = _cumulative(
            table, filename if filename == "~" else f"saml{os.sep}{filename}", function
        )
        where = "(xmlsec, C)" if filename == "~" else f"({filename})"
        label = f"{'  ' * depth}{'xmlsec verify' if function == _XMLSEC_VERIFY else function}"
        print(f"{label + ' ' + where:<52} {spent / calls * 1e6:>8.1f} {spent / total:>6.1%}")
    out = io.StringIO()
    pstats.Stats(profiler, stream=out).sort_stats("tottime").print_stats(12)
    lines = out.getvalue().splitlines()
    start = next(i for i, line in enumerate(lines) if line.lstrip().startswith("ncalls"))
    print("\ntop functions by own time:")
    print("\n".join(line.rstrip() for line in lines[start:] if line.strip()))


def _cumulative(table: _StatsTable, file_suffix: str, function: str) -> float:
    """Seconds spent in ``function`` and below, over every entry whose file ends with
    ``file_suffix`` (cProfile files C functions under ``~``)."""
    return sum(
        cumulative
        for (file, _, name), (_, _, _, cumulative, _) in table.items()
        if name == function and file.endswith(file_suffix)
    )


# -- report ---------------------------------------------------------------------


def print_rates(rates: dict[str, Rate], plan: Plan) -> None:
    reference = rates[ONELOGIN].per_second
    print(
        f"\n{'verifier (same response, one thread)':<44} {'per s':>8} {'us/call':>8} "
        f"{'CPU/s':>8} {'vs p3-saml':>10}"
    )
    for label, rate in rates.items():
        print(
            f"{label:<44} {rate.per_second:>8,.0f} {1e6 / rate.per_second:>8.0f} "
            f"{rate.cpu_per_second:>8,.0f} {rate.per_second / reference:>9.2f}x"
        )
    print(f"(best of {plan.rounds} runs of about {plan.seconds:g}s each; CPU/s by thread time)")


def print_targets(rates: dict[str, Rate]) -> None:
    """The ratios to python3-saml, hubgate's and the floor's, all from this run: the
    host's speed drifts, so only figures measured side by side compare."""
    hubgate, onelogin, floor = rates[HUBGATE], rates[ONELOGIN], rates[FLOOR]
    ratio = hubgate.per_second / onelogin.per_second
    cpu_ratio = hubgate.cpu_per_second / onelogin.cpu_per_second
    print(f"\n{'figure':<44} {'measured':>12}  {'target':<12} met")
    _row("hubgate / python3-saml", f"{ratio:.2f}x", f">= {RATIO_TARGET:g}x", ratio >= RATIO_TARGET)
    _row("  the same by CPU time", f"{cpu_ratio:.2f}x", f">= {RATIO_TARGET:g}x",
         cpu_ratio >= RATIO_TARGET)  # fmt: skip
    print(f"{'  floor / python3-saml (the ceiling)':<44} "
          f"{floor.per_second / onelogin.per_second:>11.2f}x")  # fmt: skip
    print(f"{'    the same by CPU time':<44} "
          f"{floor.cpu_per_second / onelogin.cpu_per_second:>11.2f}x")  # fmt: skip
    print(f"{'  hubgate / floor':<44} {hubgate.per_second / floor.per_second:>11.2f}x")
    print(f"{f'  {RATIO_TARGET:g}x python3-saml here, per s':<44} "
          f"{onelogin.per_second * RATIO_TARGET:>12,.0f}")  # fmt: skip
    _row("hubgate verified responses/s", f"{hubgate.per_second:,.0f}", f">= {RATE_TARGET:,}",
         hubgate.per_second >= RATE_TARGET)  # fmt: skip


def _row(label: str, measured: str, target: str, met: bool) -> None:
    print(f"{label:<44} {measured:>12}  {target:<12} {'yes' if met else 'NO'}")


def _versions() -> str:
    linked = xmlsec.get_libxmlsec_version()  # type: ignore[attr-defined]  # not in its stubs
    libxmlsec = ".".join(map(str, linked))
    names = ("xmlsec", "python3-saml", "signxml", "lxml")
    return ", ".join(f"{name} {version(name)}" for name in names) + f", libxmlsec1 {libxmlsec}"


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="a few-second smoke run")
    parser.add_argument("--seconds", type=float, default=2.5, help="length of one timed run")
    parser.add_argument("--profile", action="store_true", help="cProfile verify_response too")
    args = parser.parse_args(argv)
    plan = plan_from(args)
    world = build_world()
    fixture = world.fixture
    print(
        f"response: {len(fixture.xml):,} bytes of XML ({len(fixture.encoded):,} base64), "
        f"{len(fx.GROUPS)} groups, issued {fixture.issued_at:%H:%M:%S} UTC, valid until "
        f"{fixture.not_on_or_after:%H:%M:%S}; {_versions()}; "
        f"load average {os.getloadavg()[0]:.1f}"
    )
    cases = candidates(world)
    check(world, cases)
    print(f"measuring: {plan.rounds} rounds x {len(cases)} verifiers x about {plan.seconds:g}s")
    rates = measure(cases, fixture.encoded, plan)
    if datetime.now(UTC) >= fixture.not_on_or_after:
        raise SystemExit("the response expired while measuring; run again")
    print_rates(rates, plan)
    print_targets(rates)
    if args.profile:
        profile(world, plan)


if __name__ == "__main__":
    main()
