"""Guardrails: refuse hostile input, keep personal data out of the model's view (grounding: agent/grounding.py)."""

from __future__ import annotations

import re
from dataclasses import dataclass

# Requests for one person's contact or identity details (knowledge/docs/consent-privacy-policy.md: "Analysis
# uses customer ids, not names or contact details … never pasted into … chat").
PERSONAL_REASON = ("our privacy policy says analysis uses customer ids, not names or contact details, and personal "
                   "data is never pasted into chat; an approved audience export carries what a destination needs")
PERSONAL_DETAIL = (r"(home |postal |street |mailing )?address(es)?|phone( number)?s?|mobile( number)?|"
                   r"e-?mail address(es)?|date of birth|birthday|dob|full name|surname|last name|first name|"
                   r"contact (details|info)|where (she|he|they) lives?|everything personal|(his|her) name|"
                   r"cell( phone| number)?|courriel|adresse|num[ée]ro( de (t[ée]l[ée]phone|cell|portable))?|"
                   r"t[ée]l[ée]phone")  # French and Canadian colleagues ask in their words too
_NOT_ONE = r"(?!\s+(?:segments?|clusters?|base|lists?|groups?|cohorts?|journeys?|tables?|data|types?|tiers?|bands?)\b)"
_SAID_NUMBER = (r"(?:zero|oh|one|two|three|four|five|six|seven|eight|nine|ten|eleven|twelve|thirteen|fourteen|"
                r"fifteen|sixteen|seventeen|eighteen|nineteen|twenty|thirty|forty|fifty|sixty|seventy|eighty|ninety|"
                r"hundred|thousand)")  # "customer twelve thirty four", as dictated
ONE_PERSON = (rf"(customer|client|user|member|shopper|buyer|lead|prospect|contact|donor|supporter|subscriber|"
              rf"attendee|guest|patient)\s*(?:with (?:the )?|having )?"
              rf"(id\s*|#|no\.?\s*|number\s*)?(?:\d+|{_SAID_NUMBER}(?:[\s-]+{_SAID_NUMBER})*)\b{_NOT_ONE}|"
              rf"(this|that|one|a single|the|particular|specific) (customer|client|person|shopper|buyer)\b{_NOT_ONE}|"
              r"\b(?:mr|mrs|ms|miss|dr)\.? (?-i:[A-Z])\w+|(?-i:[A-Z][a-z]+ [A-Z][a-z]+)'s|"
              r"\b(?:customer|client|person|woman|man|lady|guy|shopper|buyer|member|user) (?:called|named) "
              r"(?-i:[A-Z])\w+|[\w.+-]+@[\w-]+\.[\w.]+|\b(?:look up|find|search for|pull up|about)\s+(?-i:[A-Z][a-z]+ [A-Z][a-z]+)\b|\bthe (?:guy|man|woman|lady|person|customer|shopper|buyer|reviewer) "
              r"(?:who|that)\b")

KNOWN_PERSON = (r"(?:my|a) (?:friend|neighbou?r|colleague|cousin|mum|mom|dad|mother|father|sister|brother|wife|"
                r"husband|partner|boss|ex) (?-i:[A-Z])[\w'’-]+")  # "my friend Sarah O'Neill … what she bought"

# (rule, reason, pattern) — checked against the user's message only; data from tools is never checked as
# instructions because it never becomes an instruction.
INPUT_RULES: tuple[tuple[str, str, str], ...] = (
    ("prompt_injection", "it tries to override my instructions",
     r"\b(ignore|disregard|forget|override)\b.{0,40}\b(instructions?|rules|guardrails|prompt|polic(y|ies))\b"
     r"|\byou are now\b|\b(developer|admin|god|dan|jailbreak|maintenance|debug|root|sudo)[ -]?mode\b"
     r"|\b(system|admin|security|safety) override\b|\bact as (an? )?(unrestricted|unfiltered)"
     r"|\bpretend (you have|there are) no (rules|restrictions)"
     r"|\b(pretend|imagine|assume)\b.{0,40}\b(rules|restrictions|guardrails|safety|filters?|polic(y|ies))\b.{0,30}"
     r"\b(off|disabled|don'?t apply|do not apply|suspended|lifted)\b"
     r"|^\s*(system|admin|developer|assistant|security)(\s+(notice|message|update|alert|instructions?|override))?\s*:|\bdo (exactly )?what (it|the \w+) says\b"
     r"|\b(do|follow|carry out|execute|obey|act on)\b.{0,20}\b(whatever|what|any|all|every)\b.{0,50}"
     r"\b(says?|tells? (you|us)|instructions?|asks?|commands?|requests?)\b"
     r"|\bfollow (the )?instructions (in|inside|from) (the |these |those )?(reviews?|comments?|data|tickets?|messages?)"),
    ("secret_extraction", "it asks for my system prompt, credentials or secrets",
     r"\b(system|hidden|initial|developer) (prompt|message|instructions)\b|\b(api|secret|access)[ _-]?keys?\b"
     r"|\bpasswords?\b|\btokens?\b.{0,20}\b(slack|openai|bot|app)\b|\benv(ironment)? var"
     r"|\bOPENAI_API_KEY\b|\bcredentials?\b"),
    ("personal_details", PERSONAL_REASON,
     rf"\b(?:{PERSONAL_DETAIL})\b.{{0,60}}\b(?:{ONE_PERSON})|\b(?:{ONE_PERSON}).{{0,90}}\b(?:{PERSONAL_DETAIL})\b"
     rf"|\b(?:e-?mail|name)\s+(?:of|for)\s+(?:{ONE_PERSON})|\b(?:{ONE_PERSON})'s\s+(?:e-?mail|name)\b"
     rf"|\bwhere (?:does|do) (?:{ONE_PERSON}) live\b|\b(?:her|his)\s+(?:{PERSONAL_DETAIL}|e-?mail)\b"
     rf"|\b(?:{KNOWN_PERSON})\b.{{0,80}}\b(?:e-?mail|phone|address|bought|purchases?|orders?|ordered|spent)\b"),
    ("pii_harvesting", "it asks for personal data in bulk",
     r"\b(all|every|full|complete|entire|bulk|dump|export|list|give me|send me|need|want|get me|show me)\b.{0,50}"
     r"\b(e-?mails?( addresses)?(?<!\bemail)(?<!\be-mail)|e-?mail address(?:es)?|phone( numbers)?|home addresses|addresses|names and (e-?mails|phones)|"
     r"personal (data|details|information)|pii|contact details)\b"
     r"|\bexport all customers\b|\bdump (the )?(customers|customer table|database)\b"),
    ("destructive", "it asks to delete or change data outside the approved actions",
     r"\b(drop|truncate|delete|wipe|erase|destroy|purge)\b.{0,30}\b(tables?|database|warehouse|customers|orders|"
     r"rows|records|data|audit|log|outbox)\b|\balter table\b|\bupdate \w+ set\b|;\s*(drop|delete|insert|update)\b"),
    ("approval_bypass", "actions always need an approver's decision, whoever asks",
     r"\b(skip|bypass|without|no need for|don'?t need|ignore|override)\b.{0,25}\b(approv\w*|review|sign-?off)\b"
     r"|\b(disable|turn off|switch off|remove)\b.{0,25}\b(approv\w*|sign-?off)\b"
     r"|\bno longer (need|needs|require|requires)\b.{0,20}\b(approv\w*|sign-?off)"
     r"|\bwithout (asking|checking with|telling|waiting for) (anyone|anybody|someone|the approvers?|a human|a person)\b"
     r"|\b(execute|release|send|approve)\s+(all|every|each)\s+(the\s+)?(pending|queued|waiting|open)\b"
     r"|\bapprovals? (are |is )?(disabled|off|turned off|not needed)\b|\bmark\b.{0,50}\bas (approved|signed off)\b"
     r"|\bapprov\w*\b.{0,60}\bon (my|our|their|his|her) behalf\b"
     r"|\b(send|text|email|e-mail|message|push)\b.{0,60}\b(including|even|also|incl\.?)\b.{0,30}"
     r"\b(opted[- ]out|unsubscribed|without consent|no consent)"
     r"|\bapprove (it |this |them )?on (my|our|their|his|her) behalf\b"
     r"|\bapprove\b.{0,50}\b(yourself|for (me|us|her|him|them))\b|\bapprove (your|its) own\b|\b(you|northstar) (can|could|should|may) approve\b"
     r"|\b(auto|self)[- ]?approv\w*|\bapprove (it|this|them|all|every\w*) (yourself|automatically|now)\b"
     r"|\bi('?m| am) (the )?(ceo|cmo|admin|owner|boss)\b.{0,60}\b(approv\w*|just do it|execute|send)\b"),
    ("file_access", "it asks to read files or reach the network",
     r"\b(read_csv|read_parquet|read_json|read_text|read_blob|copy\s+\w+\s+(to|from)\s+['\"/(]|attach\s+'|load\s+\w+\s+extension)"
     r"|/etc/passwd|\bcat\s+/|\bhttps?://(?!example\.)"),
)
_COMPILED = [(rule, reason, re.compile(pat, re.IGNORECASE)) for rule, reason, pat in INPUT_RULES]


@dataclass
class Verdict:
    rule: str
    reason: str

    def message(self) -> str:
        return (f"I can't help with that: {self.reason} (rule: {self.rule}). I can answer questions about "
                "campaigns, customers, channels, experiments, budgets and reviews with numbers from your warehouse, "
                "and draft actions for an approver.")


CONTENT_REQUEST = re.compile(r"\b(write|draft|create|compose|generate|suggest|give me|come up with)\b.{0,40}"
                             r"\b(subject|copy|sms|text message|push|headline|ad|ads|post|tagline|email|slogan)",
                             re.IGNORECASE)


def check_input(text: str) -> Verdict | None:
    for rule, reason, pattern in _COMPILED:
        if pattern.search(text):
            return Verdict(rule, reason)
    if CONTENT_REQUEST.search(text):  # copy whose brief itself breaks a brand rule is refused up front
        from tools import check_request

        if violation := check_request(text):
            return Verdict("compliance", f"the copy it asks for breaks a brand rule ({violation.message})")
    return None


# ---- personal data in what a model sees: masked by field, never by a pattern over JSON -----------------------
# A tool result is masked value by value: fields that hold personal data (the result's own `pii_columns`, which
# query_data traces through the SQL, and keys such as email, phone, first_name, date_of_birth) become keyed
# pseudonyms, the same ones a viewer sees; in every other text only e-mails and phone numbers written as such
# are replaced. JSON numbers, dates, ids and the user's own words are never touched.


def _privacy():
    """Pseudonymiser and name_kind, from tools/privacy.py through the public face `tools`."""
    import tools

    try:
        return tools.Pseudonymiser, tools.name_kind
    except AttributeError:  # TRANSITIONAL: until tools/__init__.py's _FACE exports both names (see the report)
        import importlib

        privacy = importlib.import_module("tools.privacy")
        return privacy.Pseudonymiser, privacy.name_kind


def _plausible(kind: str, value) -> bool:
    """Whether a value under a personal-data key looks like that data (an `email` key may hold a channel's spend)."""
    if not isinstance(value, str):
        return False  # a JSON number under a key is a metric, never a phone number
    if kind == "email":
        return "@" in value
    if kind == "phone":
        return sum(ch.isdigit() for ch in value) >= 7
    if kind in ("name", "address"):
        return any(ch.isalpha() for ch in value)
    if kind == "birth_date":
        return bool(re.match(r"^\d{4}-\d{2}-\d{2}", value))
    return bool(value.strip())


def _masked(obj, pseudo, name_kind, columns: dict | None = None, kind: str | None = None):
    """`obj` with personal data replaced: `columns` (a row's keys declared personal data), `kind` (of this value)."""
    if isinstance(obj, dict):
        return {key: (_declared(value, columns[key], pseudo, name_kind) if (columns or {}).get(key)
                      else _masked(value, pseudo, name_kind, kind=name_kind(str(key), strict=True)))
                for key, value in obj.items()}
    if isinstance(obj, list):
        return [_masked(v, pseudo, name_kind, columns, kind) for v in obj]
    if kind and _plausible(kind, obj):
        return pseudo.value(kind, obj)
    if isinstance(obj, str):
        return pseudo.text(obj)
    return obj


def _declared(value, kind: str, pseudo, name_kind):
    """A value of a column the tool declared personal data (query_data traces them through the SQL)."""
    if value is None or isinstance(value, bool) or (kind == "birth_date" and not isinstance(value, str)):
        return value  # a birth year is not identifying
    if isinstance(value, list | dict):
        return _masked(value, pseudo, name_kind, kind=kind)
    return pseudo.value(kind, value)


def mask(result: dict, home=None) -> dict:
    """A tool result as a model may see it (`home`: where the warehouse and its key live; None: placeholders)."""
    pseudonymiser, name_kind = _privacy()
    pseudo = pseudonymiser.for_home(home)
    columns = ((result.get("metrics") or {}).get("pii_columns") or {}) if isinstance(result, dict) else {}
    if not isinstance(result, dict) or not isinstance(columns, dict):
        return _masked(result, pseudo, name_kind)
    return {key: (_masked(value, pseudo, name_kind, columns) if key == "data" else _masked(value, pseudo, name_kind))
            for key, value in result.items()}


def mask_text(text: str, home=None) -> str:
    """E-mails and phone numbers written as such in a text (an error message, an earlier answer); nothing else."""
    pseudonymiser, _ = _privacy()
    return pseudonymiser.for_home(home).text(text)
