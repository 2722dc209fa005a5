"""Compliance checks for marketing copy, read from the brand guide's machine-readable rules.

The rules live in one place: the fenced ```yaml block (`# northstar-compliance`) at the end of
knowledge/docs/brand-guide.md. This module's public API is small on purpose; content generation and the
agent's output guard both use it:

* `check(text, channel) -> list[Violation]`: everything wrong with a text for a channel (empty = compliant).
* `fix(text, channel) -> tuple[str, list[Violation]]`: the text with every repairable problem repaired
  (words to avoid replaced, ALL CAPS and "!!!" toned down, extra emoji removed, required disclaimers added,
  over-long copy shortened by whole sentences) and the violations that remain (banned claims, personal data,
  spam phrases, copy that cannot be shortened). Remaining violations mean: do not use this text.
* `check_request(text) -> Violation | None`: a goal or offer that itself demands a banned claim.
* `redact_pii(text) -> str`: personal data replaced by "[redacted]" (for answers, not for copy).

Channels: email_subject, email_body, push, sms, ad_headline, ad_description, social, and "text" (no
channel: only the rules that hold everywhere: banned claims, personal data, spam, words to avoid).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import yaml

BRAND_GUIDE = Path(__file__).resolve().parents[1] / "knowledge" / "docs" / "brand-guide.md"
CHANNELS = ("email_subject", "email_body", "push", "sms", "ad_headline", "ad_description", "social")
EMOJI = re.compile("[\U0001F000-\U0001FAFF\u2600-\u27BF\u2B00-\u2BFF\uFE0F]")
PHONE_MIN_DIGITS = 9  # fewer digits are dates, prices or order sizes, not phone numbers
SENTENCE = re.compile(r"(?<=[.!?])(\s+)")


@dataclass(frozen=True)
class Violation:
    """One broken rule: `rule` is a stable id (e.g. "banned_claim:guarantee", "length", "required:sms_opt_out")."""

    rule: str
    message: str
    fixable: bool

    def __str__(self) -> str:
        return f"{self.rule}: {self.message}"


@dataclass(frozen=True)
class Rules:
    brand: str
    channels: dict
    required: list
    banned: list
    avoid: dict
    spam: dict
    pii: dict


def rules(path: Path | str = BRAND_GUIDE) -> Rules:
    """The compliance rules from the brand guide (re-read when the file changes)."""
    path = Path(path)
    return _rules(str(path), path.stat().st_mtime_ns)


@lru_cache(maxsize=4)
def _rules(path: str, _mtime: int) -> Rules:
    text = Path(path).read_text(encoding="utf-8")
    blocks = re.findall(r"```ya?ml\s*\n(.*?)```", text, re.S)
    block = next((b for b in blocks if "northstar-compliance" in b), None)
    if block is None:
        raise ValueError(f"{path}: no ```yaml block marked '# northstar-compliance' with the compliance rules")
    raw = yaml.safe_load(block)
    return Rules(brand=raw.get("brand", ""), channels=raw["channels"], required=raw.get("required", []),
                 banned=raw.get("banned_claims", []), avoid=raw.get("avoid_words", {}), spam=raw.get("spam", {}),
                 pii=raw.get("pii", {}))


def _channel(channel: str, r: Rules) -> dict:
    if channel == "text":
        return {}
    if channel not in r.channels:
        raise ValueError(f"unknown channel {channel!r}; use one of {', '.join(r.channels)} or 'text'")
    return r.channels[channel]


def _pii_hits(text: str, r: Rules) -> list[tuple[str, str]]:
    hits = []
    for kind, pattern in r.pii.items():
        for m in re.finditer(pattern, text):
            if kind == "phone" and sum(ch.isdigit() for ch in m.group()) < PHONE_MIN_DIGITS:
                continue
            hits.append((kind, m.group()))
    return hits


def _caps_words(text: str, r: Rules) -> list[str]:
    allowed = {w.upper() for w in r.spam.get("allowed_caps", [])}
    n = r.spam.get("caps_min_letters", 3)
    words = re.findall(r"[^\s{}]+", re.sub(r"\{[^}]*\}", " ", text))
    out = []
    for w in words:
        letters = "".join(ch for ch in w if ch.isalpha())
        if len(letters) >= n and letters.isupper() and w.strip(".,:;!?()\"'").upper() not in allowed and not any(
                ch.isdigit() for ch in w):  # a code (BACK10) is not shouting
            out.append(w)
    return out


def _applies(req: dict, channel: str, text: str) -> bool:
    if channel not in req.get("channels", []):
        return False
    return not req.get("when") or re.search(req["when"], text, re.I) is not None


def check(text: str, channel: str, path: Path | str = BRAND_GUIDE) -> list[Violation]:
    """Every rule the text breaks for this channel; an empty list means it may be used."""
    r = rules(path)
    ch = _channel(channel, r)
    out: list[Violation] = []
    if ch.get("max_chars") and len(text) > ch["max_chars"]:
        out.append(Violation("length", f"{len(text)} characters; {channel} allows {ch['max_chars']}", True))
    for claim in r.banned:
        m = re.search(claim["pattern"], text, re.I)
        if m:
            out.append(Violation(f"banned_claim:{claim['id']}", f"{m.group()!r}: {claim['reason']}", False))
    for req in r.required:
        if _applies(req, channel, text) and not re.search(req["pattern"], text, re.I | re.M):
            out.append(Violation(f"required:{req['id']}", f"must include {req['text']!r} ({req['position']})", True))
    for kind, value in _pii_hits(text, r):
        out.append(Violation(f"pii:{kind}", f"personal data ({kind}) in copy: {value!r}; use a merge tag", False))
    for word, instead in r.avoid.items():
        if re.search(rf"\b{re.escape(word)}\b", text, re.I):
            out.append(Violation("avoid_word", f"{word!r} is on the words-to-avoid list; use {instead!r}", True))
    caps = _caps_words(text, r)
    if caps:
        out.append(Violation("spam:caps", f"ALL CAPS: {', '.join(caps[:5])}", True))
    if re.search(r.spam.get("repeated_punctuation", r"!{2,}"), text):
        out.append(Violation("spam:punctuation", "repeated punctuation (!!, ??, $$)", True))
    if text.count("!") > r.spam.get("max_exclamations", 1):
        out.append(Violation("spam:exclamations",
                             f"{text.count('!')} exclamation marks; at most {r.spam.get('max_exclamations', 1)}",
                             True))
    for pattern in r.spam.get("phrases", []):
        m = re.search(pattern, text, re.I)
        if m:
            out.append(Violation("spam:phrase", f"{m.group()!r} reads as spam", False))
    emoji = EMOJI.findall(text)
    if ch and len(emoji) > ch.get("max_emoji", 1):
        out.append(Violation("emoji", f"{len(emoji)} emoji; {channel} allows {ch.get('max_emoji', 1)}", True))
    return out


def check_request(text: str, path: Path | str = BRAND_GUIDE) -> Violation | None:
    """The banned claim a request (goal, offer) demands, if any: such requests are refused, not fixed."""
    for claim in rules(path).banned:
        m = re.search(claim["pattern"], text or "", re.I)
        if m:
            return Violation(f"banned_claim:{claim['id']}",
                             f"{m.group()!r}, a banned claim ({claim['id']}): {claim['reason']} "
                             "(brand guide › Banned claims)", False)
    return None


def redact_pii(text: str, path: Path | str = BRAND_GUIDE) -> str:
    """Replace e-mail addresses, phone and card numbers and postcodes with "[redacted]"."""
    for _, value in _pii_hits(text, rules(path)):
        text = text.replace(value, "[redacted]")
    return text


def _match_case(src: str, repl: str) -> str:
    return repl[:1].upper() + repl[1:] if src[:1].isupper() else repl


def fix(text: str, channel: str, path: Path | str = BRAND_GUIDE) -> tuple[str, list[Violation]]:
    """Repair what can be repaired; returns (text, violations that remain). Remaining = do not use."""
    r = rules(path)
    ch = _channel(channel, r)
    out = text
    for word, instead in r.avoid.items():
        out = re.sub(rf"\b{re.escape(word)}\b", lambda m, i=instead: _match_case(m.group(), i), out, flags=re.I)
    for w in _caps_words(out, r):
        repl = w.capitalize() if out.startswith(w) else w.lower()
        out = re.sub(rf"(?<![\w{{]){re.escape(w)}(?![\w}}])", lambda _m, s=repl: s, out)
    out = re.sub(r"!{2,}", "!", out)
    out = re.sub(r"\?{2,}", "?", out)
    out = re.sub(r"([$€£]){2,}", r"\1", out)
    limit = r.spam.get("max_exclamations", 1)
    if out.count("!") > limit:
        keep = out.rfind("!") if limit else -1
        out = "".join("." if c == "!" and i != keep else c for i, c in enumerate(out))
    if ch:
        emoji = list(EMOJI.finditer(out))
        for m in reversed(emoji[ch.get("max_emoji", 1):]):
            out = out[:m.start()] + out[m.end():]
    out = re.sub(r"[ \t]{2,}", " ", out).strip()
    if ch:
        out = _fit(out, channel, ch, r)
    return out, check(out, channel, path)


def completed(text: str, channel: str, path: Path | str = BRAND_GUIDE) -> str | None:
    """The text with only the brand guide's required parts added (an SMS's sender at the start, its opt-out at the
    end), when those are all it lacks and the words the user wrote stay as written; else None."""
    broken = check(text, channel, path)
    if not broken or not all(v.rule.startswith("required:") for v in broken):
        return None
    fixed, remaining = fix(text, channel, path)
    return fixed if not remaining and text.strip().rstrip(".") in fixed else None


def _fit(text: str, channel: str, ch: dict, r: Rules) -> str:
    """Add missing disclaimers (start ones first, end ones last; the first end rule listed ends the text) and,
    when the result is too long, drop middle sentences (the hook and the last sentence, usually the offer or
    call to action, stay). Line breaks between sentences are kept."""
    parts = SENTENCE.split(text)  # [sentence, separator, sentence, …]
    while True:
        body = "".join(parts)
        missing = [q for q in r.required if _applies(q, channel, body) and not re.search(q["pattern"], body,
                                                                                         re.I | re.M)]
        head = "".join(q["text"] + " " for q in missing if q["position"] == "start")
        end = [q["text"] for q in reversed(missing) if q["position"] == "end"]
        if end and body and body[-1] not in ".!?}" and not body.split()[-1].startswith("#"):  # links, hashtags
            body += "."
        sep = "\n\n" if channel == "email_body" else " "
        out = head + body + "".join(sep + t for t in end)
        if not ch.get("max_chars") or len(out) <= ch["max_chars"] or len(parts) < 5:
            return out
        i = len(parts) - 3 if len(parts) > 5 else 2  # the second-to-last sentence, with the break before it
        del parts[i - 1:i + 1]
