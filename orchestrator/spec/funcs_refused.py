"""sprig/helm functions orch refuses on purpose, with the reason a template author gets instead of
Go's bare `function "now" not defined`.

Renders are cached by their inputs, so a function whose output depends on anything else (the
clock, randomness, the environment, DNS) would make a cached render silently wrong. `semver`
returns a Go object with methods, which orch's plain-data values cannot represent.
"""
from __future__ import annotations

_VALUES = "pass the value in with --values instead"
_CLOCK = f"it depends on the clock or the local time zone, so renders would not be reproducible; {_VALUES}"
_RANDOM = f"its output is random, so renders would not be reproducible; {_VALUES}"
_ENV = f"it reads the environment orch runs in, so renders would not be reproducible; {_VALUES}"
_NET = f"it queries DNS, so renders would not be reproducible; {_VALUES}"
_SECRET = f"it computes secrets at render time, which would end up in cached build specs; {_VALUES}"

REFUSED: dict[str, str] = {
    **dict.fromkeys(("now", "date", "dateInZone", "date_in_zone", "dateModify", "date_modify", "mustDateModify",
                     "must_date_modify", "htmlDate", "htmlDateInZone", "ago", "duration", "durationRound",
                     "toDate", "mustToDate", "unixEpoch"), _CLOCK),
    **dict.fromkeys(("randAlphaNum", "randAlpha", "randAscii", "randNumeric", "randBytes", "randInt",
                     "randSeededNumeric", "shuffle", "uuidv4", "genPrivateKey", "genCA", "genCAWithKey",
                     "genSelfSignedCert", "genSelfSignedCertWithKey", "genSignedCert", "genSignedCertWithKey",
                     "buildCustomCert", "bcrypt", "htpasswd", "encryptAES"), _RANDOM),
    **dict.fromkeys(("env", "expandenv"), _ENV),
    "getHostByName": _NET,
    **dict.fromkeys(("derivePassword", "decryptAES"), _SECRET),
    "semver": "it returns a Go object (fields and methods such as .Major or .Compare) that orch's plain "
              "data cannot represent; compare versions with semverCompare",
}


def refusal(name: str) -> str | None:
    """The error for a call of refused function `name`, or None if orch does not refuse it."""
    why = REFUSED.get(name)
    return None if why is None else f'function "{name}" is not supported: {why}'


__all__ = ["REFUSED", "refusal"]
