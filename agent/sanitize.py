"""Safe output: an answer never embeds a remote image, never carries a clickable link to a host outside the
allow-list, and never presents instructions found in the data as its own words.

Texts loaded as data (reviews, campaign names, user tables) reach answers through tool summaries and through a
model that repeats them. `sanitize_answer` rewrites an answer so that whatever renders it (the web UI's
Markdown, Slack's mrkdwn, a terminal) shows such content as plain text:

* images (Markdown `![..](..)`, HTML `<img>` and every other element that fetches, `data:` URIs) become a
  mention: `(remote image removed: hxxps://evil[.]example[.]net/pixel.png)`;
* links to hosts outside the allow-list are *defanged*: `hxxps://evil[.]example[.]net/login`. The URL stays
  readable, but no renderer recognises it (Markdown, Slack and terminals link `http(s)://`, `www.`, e-mail
  addresses and known domains; `hxxp` is no scheme and `[.]` no domain), copying it keeps it inert, and it is
  what security teams already read. Backticks were the alternative: terminals and some chat clients still
  link inside code, and a backtick in the URL ends the span;
* what is left of HTML is shown as text (`‹div …>`), except a few formatting tags without attributes;
* sentences that read as instructions (the input guard's prompt-injection pattern) are quoted and labelled,
  and when analysed texts contain such content the answer says they were treated as data.

A pure function, idempotent, linear in the answer's length. `unsafe_parts` is the checker used by the red-team
evaluator and the tests: what in a text a renderer would fetch or make clickable.
"""

from __future__ import annotations

import html
import re
import unicodedata
from collections.abc import Iterable
from urllib.parse import urlsplit

from agent.guardrails import INPUT_RULES

INSTRUCTION = re.compile(dict((rule, pattern) for rule, _, pattern in INPUT_RULES)["prompt_injection"], re.I)
"""The input guard's prompt-injection pattern, applied here to data and to the answer."""

DATA_NOTE = ("Note: some of the texts I analysed contain instructions addressed to an assistant; I treated them "
             "as data only and did not follow them.")
LINK_NOTE = "Links to sites outside the allowed list are shown as plain text (hxxp stands for http, [.] for a dot)."
QUOTE_LABEL = "(instruction-like text from the data, quoted; not followed)"
MAX_SCAN = 2_000_000  # characters of evidence searched for instructions: bounded time on huge results

SCHEMES = {"http": "hxxp", "https": "hxxps", "ftp": "fxp", "ftps": "fxps", "ws": "wxs", "wss": "wxss"}
_SCHEME = r"(?:https?|ftps?|wss?)"
_SEP = r"(?::[/\\]{2}|:[/\\](?=[^/\\\s]))"  # ://, :\\, :/\ and the one-slash forms browsers repair
BARE_URL = re.compile(rf"(?i){_SCHEME}{_SEP}[^\s<>\"'`\[\]\x00]*|www\.[\w-][^\s<>\"'`\[\]\x00]*")
BARE_DATA = re.compile(r"(?i)\bdata:[a-z]+/[\w.+-]+[;,][^\s<>\"'`)]*")
EMAIL = re.compile(r"(?<![\w.+-])[\w.+-]+@(?P<domain>[A-Za-z0-9_-]+(?:\.[A-Za-z0-9_-]+)+)")
AT_DOMAIN = re.compile(r"@(?P<domain>[A-Za-z0-9_-]+(?:\.[A-Za-z0-9_-]+)+)")  # the part of an address that links
_DEST = r"(?P<dest><[^<>\n]*>|[^\s()<>]*(?:\([^\s()]*\)[^\s()<>]*)*)"
_TITLE = r"(?:\s+(?:\"[^\"\n]*\"|'[^'\n]*'|\([^()\n]*\)))?"
_TEXT = r"(?P<text>(?:[^\[\]\n\\]|\\.|\[[^\[\]\n]*\])*)"
MD_IMAGE = re.compile(rf"!\[{_TEXT}\]\(\s*{_DEST}{_TITLE}\s*\)")
MD_LINK = re.compile(rf"\[{_TEXT}\]\(\s*{_DEST}{_TITLE}\s*\)")
REF_DEF = re.compile(r"(?m)^( {0,3})\[([^\]\n]+)\]:[ \t]*(\S+)")
AUTOLINK = re.compile(r"<(?P<url>[A-Za-z][A-Za-z0-9+.-]{1,31}:[^\s<>]*)>")
HTML_TAG = re.compile(r"<(?P<close>/?)(?P<name>[A-Za-z][\w:-]*)(?P<attrs>[^<>]*)>")
TAG_START = re.compile(r"<(?=[A-Za-z!/?])")
URL_ATTR = re.compile(r"""(?i)\b(?:src|href|srcset|data|poster|background|xlink:href|action|formaction)\s*=\s*
                          (?:"(?P<q>[^"]*)"|'(?P<s>[^']*)'|(?P<b>[^\s"'>]+))""", re.X)
FETCHING = {"img", "image", "picture", "source", "video", "audio", "iframe", "frame", "frameset", "embed", "object",
            "svg", "input", "track", "link", "meta", "base", "body", "table", "td", "th", "use", "feimage"}
SIMPLE_TAGS = {"b", "i", "em", "strong", "br", "code", "sub", "sup", "p", "ul", "ol", "li", "s", "u", "hr",
               "pre", "blockquote", "del", "ins", "kbd", "small"}
INVISIBLE = re.compile("[\u00ad\u061c\u180e\u200b\u200c\u200e\u200f\u2060-\u2064\ufeff\u202a-\u202e\u2066-\u2069]")
CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]")
PLACEHOLDER = re.compile(r"\x00(\d+)\x00")
SEGMENT_END = re.compile(r"(?:(?<=[.!?])|(?<=[.!?][\"'”’)]))\s+|\n|\|")
LEAD = re.compile(r"\s*(?:[-*+>]\s+|#+\s+|\d+[.)]\s+)?")
QUOTED = re.compile(r"“[^“”\n]*” " + re.escape(QUOTE_LABEL))


# ---- the allow-list -------------------------------------------------------------------------------------------

def parse_hosts(hosts: Iterable[str] | str | None) -> frozenset[str]:
    """`"docs.example.com, *.example.org"` or a list → lower-case hosts; `*.x` also allows x's subdomains."""
    if not hosts:
        return frozenset()
    items = hosts.split(",") if isinstance(hosts, str) else hosts
    return frozenset(h.strip().lower().rstrip(".") for h in items if h and h.strip())


def _host_listed(host: str, hosts: frozenset[str]) -> bool:
    host = host.lower().rstrip(".")
    return any(host == h or (h.startswith(("*.", ".")) and (host == h.lstrip("*.") or host.endswith(h.lstrip("*"))))
               for h in hosts)


def host_allowed(url: str, hosts: frozenset[str]) -> bool:
    """An http(s) URL whose host is on the allow-list (no user-info, no backslash before the path, nothing
    invisible)."""
    authority = re.sub(r"(?i)^[a-z][a-z0-9+.-]*:/*", "", url).split("/")[0].split("?")[0].split("#")[0]
    if not hosts or "\\" in authority or any(c.isspace() or unicodedata.category(c)[0] == "C" for c in authority):
        return False
    try:
        parts = urlsplit(url)
        host = parts.hostname or ""
    except ValueError:
        return False
    return parts.scheme.lower() in ("http", "https") and "@" not in parts.netloc and bool(host) \
        and _host_listed(host, hosts)


# ---- making URLs inert ----------------------------------------------------------------------------------------

def defang(url: str) -> str:
    """`https://evil.example.net/a?u=http://x.y` → `hxxps://evil[.]example[.]net/a?u=hxxp://x[.]y`: readable,
    never clickable. Other schemes keep their text with the colon bracketed (`javascript[:]…`)."""
    url = url.strip()
    if url.lower().startswith("data:"):
        return "data: URI"
    if re.match(r"(?i)^(?:hxxps?|fxps?|wxss?)://", url):  # already inert
        return url
    match = re.match(rf"(?is)^({_SCHEME})({_SEP})([^/\\?#]*)(.*)$", url)
    if match:
        scheme, sep, host, rest = match.groups()
        return _unlink(SCHEMES[scheme.lower()] + sep.replace("\\", "/") + _defang_host(host) + _nested(rest))
    if url[:4].lower() == "www." or url[:2] in ("//", "\\\\"):
        lead = "//" if url[:2] in ("//", "\\\\") else ""
        host, rest = re.match(r"(?s)^([^/\\?#]*)(.*)$", url[len(lead):]).groups()
        return _unlink(lead + _defang_host(host) + _nested(rest))
    scheme = re.match(r"(?s)^([A-Za-z][A-Za-z0-9+.-]{0,31}):(.*)$", url)
    if scheme:
        return _unlink(f"{scheme.group(1)}[:]{_nested(scheme.group(2))}")
    return _unlink(_nested(url))


def _defang_host(host: str) -> str:
    return host.replace(".", "[.]")


def _nested(text: str) -> str:
    """URLs inside a URL (redirect parameters) and e-mail domains are defanged too."""
    text = BARE_URL.sub(lambda m: defang(m.group(0)), text)
    return AT_DOMAIN.sub(lambda m: m.group(0).replace(".", "[.]"), text)


def _unlink(text: str) -> str:
    """Any scheme left (`https://https://`) is defanged too, and `[.]` or `[:]` directly followed by `(` or `[`
    would read as a Markdown link: the next bracket is escaped."""
    text = re.sub(rf"(?i){_SCHEME}(?={_SEP})", lambda m: SCHEMES[m.group(0).lower()], text)
    return re.sub(r"\[([.:])\](?=[(\[])", r"[\1]\\", text)


def _trim(url: str) -> tuple[str, str]:
    """A bare URL without the punctuation that ends its sentence (GFM's rule), and that punctuation."""
    end = len(url)
    while end and (url[end - 1] in ".,;:!?*_~'\"" or (url[end - 1] == ")" and url.count("(", 0, end)
                                                          < url.count(")", 0, end))):
        end -= 1
    return url[:end], url[end:]


def _dest(raw: str) -> str:
    raw = raw.strip()
    return raw[1:-1] if raw.startswith("<") and raw.endswith(">") else raw


def _attr_url(attrs: str) -> str | None:
    m = URL_ATTR.search(attrs)
    if not m:
        return None
    value = next(v for v in (m.group("q"), m.group("s"), m.group("b")) if v is not None).strip()
    return value.split(",")[0].split()[0] if value else None


class _Rewriter:
    """One pass over one answer; `keep` holds the allowed links, put back after every other rewrite."""

    def __init__(self, hosts: frozenset[str]):
        self.hosts, self.keep, self.open_links = hosts, [], []
        self.images = self.links = self.html = 0
        self.link_hosts: list[str] = []

    def protect(self, text: str) -> str:
        """Keep an allowed link; inside it, no image, and any other address (a redirect target, a link text
        pretending to be an address) is defanged."""
        text = BARE_URL.sub(self._first_url_only, text.replace("![", "!\\["))
        text = AT_DOMAIN.sub(lambda m: m.group(0) if _host_listed(m.group("domain"), self.hosts)
                         else m.group(0).replace(".", "[.]"), text)
        self.keep.append(text)
        return f"\x00{len(self.keep) - 1}\x00"

    def _first_url_only(self, m: re.Match) -> str:
        url = m.group(0)
        authority = re.match(r"(?i)^(?:[a-z][a-z0-9+.-]*:[/\\]*)?[^/\\?#]*", url).end()
        nested = re.compile(rf"(?i){_SCHEME}{_SEP}|www\.[\w-]").search(url, authority)
        head, rest = (url, "") if nested is None else (url[:nested.start()], url[nested.start():])
        return (head if host_allowed(_trim(head)[0], self.hosts) else defang(head)) + (defang(rest) if rest else "")

    def restore(self, text: str) -> str:
        for _ in range(4):  # a kept link may hold another (an autolink inside a link's target)
            if "\x00" not in text:
                break
            text = PLACEHOLDER.sub(lambda m: self.keep[int(m.group(1))], text)
        return text.replace("\x00", "")

    def inert(self, url: str) -> str:
        self.links += 1
        try:
            host = urlsplit(url.strip()).hostname or (url.strip().split("/")[0] if url[:4].lower() == "www." else "")
        except ValueError:
            host = ""
        if host and host not in self.link_hosts:
            self.link_hosts.append(host)
        return defang(url)

    def image(self, url: str | None, alt: str = "") -> str:
        self.images += 1
        url = _dest(url or "")
        what = ("embedded image removed" if url.lower().startswith("data:")
                else "remote image removed" if re.match(rf"(?i)^(?:{_SCHEME}{_SEP}|//|www\.)", url)
                else "image removed")
        label = f" “{alt.strip()}”" if alt.strip() else ""
        return f"({what}{label}: {defang(url)})" if url else f"({what}{label})"

    def link(self, url: str, text: str = "") -> str:
        if host_allowed(url, self.hosts):
            return self.protect(f"[{text}]({url})" if text.strip() else url)
        if not url:
            return text
        return f"{text} ({self.inert(url)})" if text.strip() and text.strip() != url else self.inert(url)

    # -- Markdown --
    def md_image(self, m: re.Match) -> str:
        return self.image(m.group("dest"), m.group("text"))

    def md_link(self, m: re.Match) -> str:
        url = _dest(m.group("dest"))
        return self.protect(m.group(0)) if host_allowed(url, self.hosts) else self.link(url, m.group("text"))

    def ref_def(self, m: re.Match) -> str:
        url = _dest(m.group(3))
        if host_allowed(url, self.hosts):
            return self.protect(m.group(0))
        return f"{m.group(1)}\\[{m.group(2)}]: {self.inert(url)}"

    def autolink(self, m: re.Match) -> str:
        url = m.group("url")
        return self.protect(m.group(0)) if host_allowed(url, self.hosts) else self.inert(url)

    def bare(self, m: re.Match) -> str:
        url, tail = _trim(m.group(0))
        if not host_allowed(url, self.hosts):
            return self.inert(url) + tail
        after = tail + m.string[m.end():m.end() + 1]
        if after and not after[0].isspace() and not re.match(r"(?i)^[a-z]+:/+[^/?#]+[/?#]", url):
            url += "/"  # a renderer would run the host on into what follows: end the host first
        return self.protect(url) + tail

    def email(self, m: re.Match) -> str:
        if _host_listed(m.group("domain"), self.hosts):
            return self.protect(m.group(0))
        self.links += 1
        return m.group(0).replace(".", "[.]")

    # -- HTML: one linear pass over the tags; <a href> becomes "text (url)" --
    def html_tag(self, m: re.Match) -> str:
        close, name, attrs = m.group("close"), m.group("name").lower(), m.group("attrs")
        if name in SIMPLE_TAGS and attrs.strip() in ("", "/"):
            return self.protect(m.group(0))
        self.html += 1
        if name == "a":
            if not close:
                self.open_links.append(_attr_url(attrs))
                return ""
            url = self.open_links.pop() if self.open_links else None
            return f" ({self.link(url)})" if url else ""
        if name in FETCHING:
            url = _attr_url(attrs)
            return self.image(url) if url and not close else ""
        return "‹" + m.group(0)[1:]


# ---- instructions in data -------------------------------------------------------------------------------------

def _strings(obj, out: list[str], budget: list[int]) -> None:
    if budget[0] <= 0:
        return
    if isinstance(obj, str):
        out.append(obj[: budget[0]])
        budget[0] -= len(obj)
    elif isinstance(obj, dict):
        for v in obj.values():
            _strings(v, out, budget)
    elif isinstance(obj, list | tuple):
        for v in obj:
            _strings(v, out, budget)


def instruction_texts(evidence) -> list[str]:
    """The texts in the evidence (tool results) that read as instructions to an assistant."""
    texts: list[str] = []
    _strings(evidence, texts, [MAX_SCAN])
    return [t for t in texts if INSTRUCTION.search(t)]


def _norm(sentence: str) -> str:
    """A sentence as compared with the data: case, spacing, edge punctuation and defanging ignored."""
    text = " ".join(sentence.lower().replace("[.]", ".").replace("hxxp", "http").split())
    return text.strip("\"“”'*_` .!?")


def _sentences(texts: list[str]) -> set[str]:
    return {n for t in texts for part in SEGMENT_END.split(t) if len(n := _norm(part)) >= 20}


def _flagged(text: str, pieces: list[tuple[int, int]]) -> set[int]:
    """Indices of the pieces an instruction-like match touches (a match may run across a sentence end)."""
    flagged: set[int] = set()
    first = 0
    for m in INSTRUCTION.finditer(text):
        while pieces[first][1] <= m.start():
            first += 1
        i = first
        while i < len(pieces) and pieces[i][0] < m.end():
            flagged.add(i)
            i += 1
    return flagged


def _quote_instructions(text: str, echoed: set[str]) -> tuple[str, int]:
    """Sentences (or table cells) that read as instructions, or repeat a sentence of an instruction-like text
    of the data, become one labelled quote per run of such sentences (even when the model quoted them: the
    label says they are data)."""
    kept: list[str] = []
    text = QUOTED.sub(lambda m: (kept.append(m.group(0)), f"\x01{len(kept) - 1}\x01")[1], text)
    pieces, spans, pos = [], [], 0
    for sep in [*SEGMENT_END.finditer(text), None]:
        end = sep.start() if sep else len(text)
        pieces.append((text[pos:end], sep.group(0) if sep else ""))
        spans.append((pos, end + (len(sep.group(0)) if sep else 0)))
        pos = sep.end() if sep else pos
    flagged = _flagged(text, spans)
    out, run, quoted = [], [], 0

    def flush():
        nonlocal quoted
        if run:
            raw = "".join(run)
            body = raw.strip().replace("“", '"').replace("”", '"')
            out.append(f"“{body}” {QUOTE_LABEL}{raw[len(raw.rstrip()):]}")
            run.clear()
            quoted += 1

    for i, (segment, sep) in enumerate(pieces):
        lead = LEAD.match(segment).end()
        if segment.strip() and (i in flagged or (echoed and _norm(segment[lead:]) in echoed)):
            if not run:  # a list marker or heading stays outside the quote
                out.append(segment[:lead])
                segment = segment[lead:]
            run.append(segment)
            if "\n" in sep or "|" in sep or not sep:  # a line or a table cell ends the quote
                flush()
                out.append(sep)
            else:
                run.append(sep)
        else:
            tail = run.pop() if run else ""  # the space after the last quoted sentence
            flush()
            out += [tail, segment, sep]
    flush()
    return re.sub("\x01(\\d+)\x01", lambda m: kept[int(m.group(1))], "".join(out)), quoted


# ---- the entry points -----------------------------------------------------------------------------------------

def _normalise(text: str) -> str:
    """Decode character references (Markdown decodes them in link targets) and drop invisible and control
    characters, so every later rule sees what a renderer would see."""
    for _ in range(4):
        decoded = html.unescape(text)
        if decoded == text:
            break
        text = decoded
    if "&" in text and html.unescape(text) != text:  # still encoded after four rounds: keep it literal
        text = re.sub(r"&(?=#?\w+;?)", "＆", text)
    return CONTROL.sub("", INVISIBLE.sub("", text.replace("\r\n", "\n").replace("\r", "\n")))


def _rewrite(text: str, hosts: frozenset[str], echoed: set[str]) -> tuple[str, int, _Rewriter]:
    rw = _Rewriter(hosts)
    text = _normalise(text or "")
    text = MD_IMAGE.sub(rw.md_image, text)
    text = AUTOLINK.sub(rw.autolink, text)
    text = HTML_TAG.sub(rw.html_tag, text)
    text = TAG_START.sub("‹", text)  # what is left of HTML (comments, unclosed tags, Slack's <!channel>) is text
    text = MD_LINK.sub(rw.md_link, text)
    text = REF_DEF.sub(rw.ref_def, text)
    text = BARE_DATA.sub(lambda m: rw.image(m.group(0)), text)
    text = BARE_URL.sub(rw.bare, text)
    text = AT_DOMAIN.sub(rw.email, text)
    text = text.replace("![", "!\\[")  # no image syntax survives, whatever its form
    text = rw.restore(re.sub("!(?=\x00)", "! ", text))  # an allowed link never becomes an image
    return (*_quote_instructions(text, echoed), rw)


def sanitize_answer(answer: str, evidence=None, allowed_hosts: Iterable[str] | str | None = ()
                    ) -> tuple[str, list[str]]:
    """The answer made safe to render, and notes on what was changed (for the audit log; empty: unchanged).

    `evidence`: this turn's tool results, searched for instruction-like texts. `allowed_hosts`: hosts whose links
    stay clickable (the setting NORTHSTAR_LINK_HOSTS; empty: none)."""
    found = instruction_texts(evidence) if evidence is not None else []
    text, quoted, rw = _rewrite(answer, parse_hosts(allowed_hosts), _sentences(found))
    notes = []
    if rw.images:
        notes.append(f"{rw.images} image(s) removed")
    if rw.links:
        hosts = f" ({', '.join(rw.link_hosts[:10])})" if rw.link_hosts else ""
        notes.append(f"{rw.links} link(s) or address(es) shown as plain text{hosts}")
        if LINK_NOTE not in text:
            text = text.rstrip() + "\n\n" + LINK_NOTE
    if rw.html:
        notes.append(f"{rw.html} HTML tag(s) shown as text or removed")
    if found or quoted:
        notes.append(f"instruction-like content: {len(found)} analysed text(s), {quoted} passage(s) quoted")
        if found and DATA_NOTE not in text:
            text = text.rstrip() + "\n\n" + DATA_NOTE
    return text, notes


def safe_text(text: str, allowed_hosts: Iterable[str] | str | None = ()) -> str:
    """A short field shown beside the answer (an action's description, a preview value) made safe the same way,
    without the notes."""
    return _rewrite(text, parse_hosts(allowed_hosts), set())[0]


# what renderers turn into an image, an element, a link or a mail link (the checker's own rules)
SEEN_IMAGE = re.compile(r"!\s*\[[^\]\n]*\]\s*[\[(]")
SEEN_ELEMENT = re.compile(r"(?i)</?(img|image|svg|iframe|video|audio|source|picture|object|embed|link|base|meta|a"
                          r"|script|style)\b")
SEEN_DATA = re.compile(r"(?i)(?<![\w/.%-])data:[a-z]+/[\w.+-]+[;,]")  # not inside a URL's path
_SEEN_TAIL = r"[^\s<>\"'`)\]]*"
SEEN_URL = re.compile(rf"(?i)(?:https?|ftps?|wss?):[/\\]{{1,2}}[\w-]{_SEEN_TAIL}|www\.[A-Za-z0-9-]{_SEEN_TAIL}")
SEEN_LINK = re.compile(r"(?<!\\)(?:\\\\)*\[(?:[^\[\]\n]|\[[^\[\]\n]*\])*\]\(\s*"
                       r"(<[^<>\n]*>|[^\s()<>]*(?:\([^\s()]*\)[^\s()<>]*)*)"
                       r"(?:\s+(?:\"[^\"\n]*\"|'[^'\n]*'|\([^()\n]*\)))?\s*\)")


def unsafe_parts(text: str, allowed_hosts: Iterable[str] | str | None = ()) -> list[str]:
    """What in `text` a renderer would fetch or make clickable outside the allow-list (empty: safe to show).

    Written from what Markdown, HTML and chat clients do, not from how `sanitize_answer` rewrites, so that it can
    catch the rewriter out; the red-team evaluator `safe_output` and the tests use it."""
    hosts = parse_hosts(allowed_hosts)
    seen = INVISIBLE.sub("", html.unescape(html.unescape(text or "")))
    problems = [f"image markup: {m.group(0)[:60]}" for m in SEEN_IMAGE.finditer(seen)]
    problems += [f"HTML element: {m.group(0)[:60]}" for m in SEEN_ELEMENT.finditer(seen)]
    problems += [f"data URI: {m.group(0)[:60]}" for m in SEEN_DATA.finditer(seen)]
    for m in SEEN_URL.finditer(seen):
        url = m.group(0).rstrip(".,;:!?*_~'\"")
        if not host_allowed(url if "://" in url else "http://" + url, hosts):
            problems.append(f"link outside the allow-list: {url[:80]}")
    for m in SEEN_LINK.finditer(seen):
        if not host_allowed(target := m.group(1).strip("<>"), hosts):
            problems.append(f"Markdown link to {target[:80] or 'an empty target'}")
    problems += [f"e-mail link outside the allow-list: {m.group(0)[:80]}" for m in EMAIL.finditer(seen)
                 if not _host_listed(m.group("domain"), hosts)]
    return problems
