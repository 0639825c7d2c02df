"""A correctness judge that knows facts: key facts of a reference, found, missing or contradicted.

    verdict = judge("Returns are accepted within 90 days.", "You can return within 30 days.",
                    question="How long do I have to return something?")
    verdict.verdict    # "wrong": the answer says 90 days where the reference says 30 days
    verdict.reason     # "Contradicted: 30 days (the answer says 90 days)."

Key facts are what a careful reader checks first: numbers with their units (money, percentages,
durations, lengths, temperatures), dates, clock times, versions, codes and model numbers, names
(products, people, places) and a leading Yes/No. Facts the question already states are not key
facts (a question about "the FlowMate 8" is not answered by repeating "FlowMate 8"), nor are names
that recur across a whole test set (``background_names``: the company's own name, say).

Each answer gets one verdict:

- ``correct``: every key fact present, none contradicted (a refusal, for an unanswerable question);
- ``partial``: some present, some missing, none contradicted;
- ``wrong``: a key fact contradicted (another value of the same kind: 90 days for 30 days, 45 weeks
  for 45 days, E-455 for E-410, No for Yes), no key fact present, or an answer where the
  documents hold none;
- ``stale``: it carries the old value where an updated reference replaced it;
- ``refused``: it declines a question the documents answer;
- ``unscored``: the reference holds no extractable fact; the caller falls back to similarity or an
  LLM judge and labels it so.

Libraries: ``text2num`` turns number words into digits ("forty-five days" -> "45 days") and
``rapidfuzz`` matches names that a model spells a little differently. Quantities are read with a
unit table below rather than a quantity-extraction library: the one tried (quantulum3 0.10) read
"4.3.2" as 4.3 and "08:30" as two numbers, found no quantity in "E-410", and failed to load its
classifier under the scikit-learn release this environment installs.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import asdict, dataclass, field
from typing import Any, Iterable

CORRECT, PARTIAL, WRONG, STALE, REFUSED, UNSCORED = "correct", "partial", "wrong", "stale", "refused", "unscored"
VERDICTS = (CORRECT, PARTIAL, WRONG, STALE, REFUSED, UNSCORED)
DESCRIPTIONS = {
    CORRECT: "Every key fact of the reference is in the answer and none is contradicted (for a question the "
             "documents cannot answer: it declined).",
    PARTIAL: "Some key facts present, others missing, none contradicted.",
    WRONG: "A key fact contradicted, none present, or an answer made up where the documents hold none.",
    STALE: "Gives the old value where the document was updated.",
    REFUSED: "Declined a question the documents answer.",
    UNSCORED: "The reference holds no fact to check; similarity (or the LLM judge) stands in, labelled as such.",
}

# -- refusals ----------------------------------------------------------------------------------------------
_NOT = r"(?:\s+not|n['’]t)"
_CANT = r"(?:can(?:not|\s+not|['’]t)|could(?:\s+not|n['’]t))"
_REFUSAL = re.compile(
    r"\bi(?:\s+really)?\s+(?:do|did)" + _NOT + r"\s+know\b"
    r"|\bi(?:['’]m|\s+am)\s+(?:not\s+sure|unable|not\s+able)\b"
    r"|\b(?:i|we)\s+" + _CANT + r"\s+(?:find|answer|tell|say|help\s+with\s+that|confirm)\b"
    r"|\b(?:i|we)(?:['’]m|\s+am|\s+are|['’]re)?\s+(?:not\s+able|unable)\s+to\s+(?:tell|answer|find|say|determine|confirm)\b"
    r"|\b(?:i|we)\s+(?:do|did)" + _NOT + r"\s+have\s+(?:any\s+|enough\s+|sufficient\s+)?(?:information|details|data|info)\b"
    r"|\bno\s+(?:information|details|data|mention)\s+(?:about|on|of|regarding)\b"
    r"|\bnot\s+(?:enough|sufficient)\s+information\b"
    r"|\b(?:documents?|passages?|context|sources?|information\s+i\s+have|catalog(?:ue)?|data\s+i\s+have)\b[^.]{0,60}?"
    r"\b(?:do|does|did)" + _NOT + r"\s+(?:say|mention|contain|include|list|cover|specify|state|provide|tell)\b"
    r"|\bnot\s+(?:mentioned|stated|covered|provided|listed|specified|given)\s+in\s+(?:the|these|my|our|any)\b",
    re.IGNORECASE)


_CLAIMS = {"quantity", "date", "time", "version", "year", "count"}


def is_refusal(text: str) -> bool:
    """Whether the answer declines ("I don't know", "the documents do not say"): a negative fact such as
    "The warranty does not include water damage." is not a refusal."""
    return bool(_REFUSAL.search(text or ""))


# -- facts -------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Fact:
    """One checkable fact in a text."""

    kind: str
    """``quantity``, ``count``, ``year``, ``date``, ``time``, ``version``, ``code``, ``name`` or ``polarity``."""
    key: str
    """Normalised value that must match (e.g. ``45|day``, ``2025-03-12``, ``BMF800``)."""
    slot: str
    """What it measures (a unit family, ``money``, ``code:E``): a different key in the same slot contradicts it."""
    text: str
    """How the text wrote it."""


_UNITS: dict[str, tuple[str, str, float]] = {}  # spelling -> (unit, family, factor to the family's base)
for names, unit, family, factor in [
    (("second", "seconds", "sec", "secs", "s"), "second", "time-s", 1), (("minute", "minutes", "min", "mins"),
                                                                         "minute", "time-s", 60),
    (("hour", "hours", "hr", "hrs", "h"), "hour", "time-s", 3600),
    (("day", "days", "business day", "business days", "working day", "working days", "calendar days"), "day",
     "time-d", 1),
    (("week", "weeks"), "week", "time-d", 7), (("month", "months"), "month", "time-m", 1),
    (("year", "years", "yr", "yrs"), "year", "time-m", 12),
    (("%", "percent", "per cent", "pct"), "%", "percent", 1),
    (("°c", "° c", "degrees c", "degrees celsius", "°", "degrees"), "°C", "temperature", 1),
    (("mm²", "mm2", "mm^2", "square millimetres", "square millimeters"), "mm²", "area", 1),
    (("mm", "millimetre", "millimetres", "millimeter", "millimeters"), "mm", "length", 0.001),
    (("cm", "centimetre", "centimetres", "centimeter", "centimeters"), "cm", "length", 0.01),
    (("m", "metre", "metres", "meter", "meters"), "m", "length", 1),
    (("km", "kilometre", "kilometres", "kilometer", "kilometers"), "km", "length", 1000),
    (("ohm", "ohms", "ω", "Ω"), "ohm", "resistance", 1), (("ghz",), "GHz", "frequency", 1e9),
    (("mhz",), "MHz", "frequency", 1e6), (("kg", "kilogram", "kilograms", "kilo", "kilos"), "kg", "mass", 1000),
    (("g", "gram", "grams"), "g", "mass", 1), (("l", "litre", "litres", "liter", "liters"), "l", "volume", 1),
    (("ml", "millilitre", "millilitres"), "ml", "volume", 0.001), (("v", "volt", "volts"), "V", "voltage", 1),
    (("w", "watt", "watts"), "W", "power", 1), (("mah",), "mAh", "charge", 1),
    (("gb", "gigabyte", "gigabytes"), "GB", "data", 1e9), (("mb", "megabyte", "megabytes"), "MB", "data", 1e6),
]:
    for n in names:
        _UNITS[n.lower()] = (unit, family, factor)
_CURRENCY = {"€": "EUR", "eur": "EUR", "euro": "EUR", "euros": "EUR", "$": "USD", "usd": "USD", "dollar": "USD",
             "dollars": "USD", "£": "GBP", "gbp": "GBP", "pound": "GBP", "pounds": "GBP", "chf": "CHF"}
_MONTHS = {m: i for i, m in enumerate(["january", "february", "march", "april", "may", "june", "july", "august",
                                       "september", "october", "november", "december"], start=1)}
_MONTHS.update({m[:3]: i for m, i in list(_MONTHS.items())} | {"sept": 9})
_SMALL = {"zero": 0, "one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6, "seven": 7, "eight": 8,
          "nine": 9, "ten": 10, "a": 1, "an": 1, "half": 0.5}
_QUALIFIER = r"(?:(?:extra|more|additional|further|full|whole)\s+)?"
_NUM = r"\d{1,3}(?:,\d{3})+(?:\.\d+)?|\d+(?:[.,]\d+)?"
_unit_alt = "|".join(sorted((re.escape(u) for u in _UNITS), key=len, reverse=True))
_RE_VERSION = re.compile(r"(?<![\w.])v?(\d+\.\d+\.\d+(?:\.\d+)?)(?![\w.]*\d)", re.IGNORECASE)
_RE_PHONE = re.compile(r"\+\d{1,3}(?:[ \-]?\d{2,4}){2,5}")
_RE_EMAIL_URL = re.compile(r"\b[\w.+-]+@[\w-]+(?:\.[\w-]+)+|\b[\w-]+(?:\.[\w-]+)*\.(?:com|nl|eu|de|org|net|io|be)"
                           r"(?:/[\w/.-]*)?", re.IGNORECASE)
_RE_TIME = re.compile(r"\b([01]?\d|2[0-3])(?::([0-5]\d)\s*(a\.?m\.?|p\.?m\.?)?|\.([0-5]\d)\s*(a\.?m\.?|p\.?m\.?|h\b|hrs\b))"
                      r"(?![\d])|\b(1[0-2]|[1-9])\s*(a\.?m\.?|p\.?m\.?)(?!\w)", re.IGNORECASE)
_month_alt = "|".join(sorted(_MONTHS, key=len, reverse=True))
_RE_DATE = re.compile(
    rf"\b(\d{{4}})-(\d{{2}})-(\d{{2}})\b"
    rf"|\b(\d{{1,2}})(?:st|nd|rd|th)?\s+(?:of\s+)?({_month_alt})\.?(?:,?\s+(\d{{4}}))?\b"
    rf"|\b({_month_alt})\.?\s+(\d{{1,2}})(?:st|nd|rd|th)?\b(?:,?\s+(\d{{4}}))?"
    rf"|\b(\d{{1,2}})[/.](\d{{1,2}})[/.](\d{{4}})\b", re.IGNORECASE)
_RE_CODE = re.compile(r"(?<![\w-])([A-Z]{1,4})(?:-| )?([A-Z]?)(\d{1,5})([A-Z]?)(?![\w])|(?<![\w-])([A-Z]{1,3})-(\d{1,5})\b")
_RE_MONEY = re.compile(rf"([€$£])\s?({_NUM})|\b(EUR|USD|GBP|CHF)\s?({_NUM})|({_NUM})\s?(euros?|dollars?|pounds|EUR|"
                       r"USD|GBP|CHF|€)(?!\w)", re.IGNORECASE)
_RE_RANGE = re.compile(rf"({_NUM})(\s*(?:to|-|–|and|or)\s*)(?=(?:{_NUM})\s*-?\s*{_QUALIFIER}(?:{_unit_alt})(?![\w]))",
                       re.IGNORECASE)
_RE_QUANTITY = re.compile(rf"(-?|−)({_NUM})\s*-?\s*{_QUALIFIER}({_unit_alt})(?![\w²])", re.IGNORECASE)
_RE_SMALL_WORD = re.compile(r"\b(" + "|".join(_SMALL) + r")([\s-]+)(?=" + _QUALIFIER + "(?:" + _unit_alt + r"|euros?|dollars?|pounds)\b)",
                            re.IGNORECASE)
_RE_SMALL_RANGE = re.compile(r"\b(" + "|".join(k for k in _SMALL if len(k) > 2) + r")(\s+(?:to|or)\s+|\s*[-–]\s*)(?=\d)",
                             re.IGNORECASE)
_RE_COUNT = re.compile(r"(?<![\w.,])(\d{1,3}(?:,\d{3})+|\d+)(?:\.\d+)?(?![\w.]*\d)")
_RE_NAME = re.compile(r"\b((?:[A-Z][\w'’]*[A-Za-z]|[A-Z]{2,})(?:[ \-](?:[A-Z][\w'’]*|\d{1,4}|[A-Z]+\d+))*)")
_NAME_STOP = set("""the a an this that these those your you our we it its i he she they there here yes no not every
all each any some if when where what which who how why and or but so to in on at by for from with of as is are
was were be please also only just then thus however hello hi thanks thank sorry dear good great happy yes no
unfortunately note step standard go push hold bring orders order updates update answer summary sources source
context question can could will would should do does did may might must is are was what how one two three four
five six seven eight nine ten""".split())
_TIMEZONES = {"CET", "CEST", "UTC", "GMT", "BST", "EST", "PST"}
_RE_CITATION = re.compile(r"\[\d+\]")
_RE_POLARITY = re.compile(r"^\W*(?:(yes|yeah|yep|sure|of course|absolutely)|(no|nope|unfortunately not|sadly not))\b",
                          re.IGNORECASE)
_RE_LATE_NO = re.compile(r"^[^.]{0,40}?\b(?:but|so|i'm afraid|i am afraid),?\s+(no|yes)\b", re.IGNORECASE)


def _number(text: str) -> float:
    text = text.replace("−", "-")
    if re.fullmatch(r"-?\d{1,3}(?:,\d{3})+(?:\.\d+)?", text):
        return float(text.replace(",", ""))
    return float(text.replace(",", "."))


def _fmt(value: float) -> str:
    return f"{value:.6g}"


_RE_AND_A_HALF = re.compile(r"\b(?:(\d+)|an?|one)\s+(?:and\s+a\s+half\s+({u})s?|({u})s?\s+and\s+a\s+half)\b"
                            .format(u="year|month|week|day|hour|minute"), re.IGNORECASE)


def _words_to_digits(text: str) -> str:
    text = _RE_AND_A_HALF.sub(lambda m: f"{_fmt(int(m.group(1) or 1) + 0.5)} {(m.group(2) or m.group(3)).lower()}s",
                              text or "")
    try:
        from text_to_num import alpha2digit

        text = alpha2digit(text, "en")
    except Exception:  # a text the library cannot read keeps its words
        pass
    text = _RE_SMALL_RANGE.sub(lambda m: _fmt(_SMALL[m.group(1).lower()]) + m.group(2), text)
    return _RE_SMALL_WORD.sub(lambda m: _fmt(_SMALL[m.group(1).lower()]) + m.group(2), text)


def _mask(text: str, span: tuple[int, int]) -> str:
    return text[: span[0]] + " " * (span[1] - span[0]) + text[span[1]:]


def answer_text(text: str) -> str:
    """The part of an answer that states facts: the ``Answer:`` line of the house format (else the whole
    text), without a ``Sources:`` line or [n] citation marks."""
    text = text or ""
    match = re.search(r"^\s*Answer:\s*(.+)$", text, re.MULTILINE)
    core = match.group(1) if match else re.sub(r"^\s*(?:Summary|Sources):.*$", " ", text, flags=re.MULTILINE)
    return _RE_CITATION.sub(" ", core)


def polarity(text: str) -> str | None:
    """``yes`` or ``no`` when the text opens with one (or says "..., but no"), else None."""
    first = (text or "").strip()
    match = _RE_POLARITY.match(first)
    if match:
        return "yes" if match.group(1) else "no"
    late = _RE_LATE_NO.match(first)
    return late.group(1).lower() if late else None


def extract_facts(text: str, *, answer: bool = False) -> list[Fact]:
    """Every checkable fact of ``text``, most specific kinds first; ``answer``: read an answer's core only."""
    text = answer_text(text) if answer else (text or "")
    work = _words_to_digits(text)
    facts: list[Fact] = []

    def take(pattern: re.Pattern, build) -> None:
        nonlocal work
        for m in list(pattern.finditer(work)):
            fact = build(m)
            if fact is not None:
                facts.append(fact)
                work = _mask(work, m.span())

    take(_RE_EMAIL_URL, lambda m: Fact("code", m.group(0).lower().rstrip("."), "address", m.group(0)))
    take(_RE_PHONE, lambda m: Fact("code", re.sub(r"\D", "", m.group(0)), "phone", m.group(0)))
    take(_RE_DATE, _date_fact)
    take(_RE_VERSION, lambda m: Fact("version", m.group(1), "version", m.group(0)))
    take(_RE_TIME, _time_fact)
    take(_RE_MONEY, _money_fact)
    work = _RE_RANGE.sub(lambda m: m.group(1) + _range_unit(m, work) + m.group(2), work)
    take(_RE_QUANTITY, _quantity_fact)
    take(_RE_CODE, _code_fact)
    take(_RE_NAME, lambda m: _name_fact(m, work))
    for m in _RE_COUNT.finditer(work):
        value = _number(m.group(1))
        kind = "year" if 1900 <= value <= 2100 and "," not in m.group(1) else "count"
        facts.append(Fact(kind, _fmt(value), kind, m.group(0)))
    return facts


def _range_unit(m: re.Match, work: str) -> str:
    after = _RE_QUANTITY.match(work, m.end())
    return (" " + after.group(3)) if after else ""


def _date_fact(m: re.Match) -> Fact | None:
    g = m.groups()
    try:
        if g[0]:
            year, month, day = int(g[0]), int(g[1]), int(g[2])
        elif g[3]:
            day, month, year = int(g[3]), _MONTHS[g[4].lower().rstrip(".")], int(g[5]) if g[5] else None
        elif g[6]:
            month, day, year = _MONTHS[g[6].lower().rstrip(".")], int(g[7]), int(g[8]) if g[8] else None
        else:
            day, month, year = int(g[9]), int(g[10]), int(g[11])
    except (KeyError, ValueError):
        return None
    if not (1 <= month <= 12 and 1 <= day <= 31):
        return None
    key = f"{year or '*'}-{month:02d}-{day:02d}"
    return Fact("date", key, "date", m.group(0))


def _time_fact(m: re.Match) -> Fact:
    if m.group(1) is not None:
        hour = int(m.group(1))
        minute, half = (int(m.group(2)), m.group(3)) if m.group(2) else (int(m.group(4)), m.group(5))
        half = (half or "").lower()
    else:
        hour, minute, half = int(m.group(6)), 0, m.group(7).lower()
    if half.startswith("p") and hour < 12:
        hour += 12
    if half.startswith("a") and hour == 12:
        hour = 0
    return Fact("time", f"{hour:02d}:{minute:02d}", "time", m.group(0))


_RE_RATE = re.compile(r"\s*(?:per|a|an|/|each)\s*(month|year|week|day|hour)\b", re.IGNORECASE)


def _money_fact(m: re.Match) -> Fact:
    if m.group(1):
        currency, value = _CURRENCY[m.group(1)], m.group(2)
    elif m.group(3):
        currency, value = m.group(3).upper(), m.group(4)
    else:
        currency, value = _CURRENCY.get(m.group(6).lower(), m.group(6).upper()), m.group(5)
    rate = _RE_RATE.match(m.string, m.end())
    per = f"|{rate.group(1).lower()}" if rate else ""
    return Fact("quantity", f"{_fmt(_number(value))}|{currency}{per}", "money", m.group(0) + (rate.group(0) if rate else ""))


def _quantity_fact(m: re.Match) -> Fact:
    unit, family, factor = _UNITS[m.group(3).lower()]
    sign = -1 if m.group(1) else 1
    value = sign * _number(m.group(2))
    return Fact("quantity", f"{_fmt(value * factor)}|{family}", family, m.group(0).strip())


def _code_fact(m: re.Match) -> Fact | None:
    if m.group(5):
        letters, digits = m.group(5), m.group(6)
        return Fact("code", f"{letters}{digits}", f"code:{letters}", m.group(0))
    prefix, mid, digits, suffix = m.group(1), m.group(2), m.group(3), m.group(4)
    if prefix in _TIMEZONES:
        return None
    family = prefix + mid
    return Fact("code", f"{family}{digits}{suffix}", f"code:{family}", m.group(0))


def _name_fact(m: re.Match, work: str) -> Fact | None:
    words = m.group(1).split()
    while words and words[0].lower().strip("'’") in _NAME_STOP:
        words.pop(0)
    while words and words[-1].lower() in _NAME_STOP:
        words.pop()
    if not words or words[0].isdigit():
        return None
    name = " ".join(words)
    if name in _TIMEZONES or (len(words) == 1 and len(name) < 2):
        return None
    start = m.start(1)
    before = work[:start].rstrip()
    sentence_start = not before or before[-1] in ".!?:;\n"
    camel = any(re.search(r"[a-z][A-Z]|^[A-Z]{2,}", w) for w in words)
    if sentence_start and len(words) == 1 and not camel:
        return None  # an ordinary word that opens a sentence ("Orders are ...")
    if name.lower() in _MONTHS:
        return None
    return Fact("name", name.lower(), "name", name)


def known_names(references: Iterable[str]) -> frozenset[str]:
    """Every name the references of a test set use (see ``judge``'s ``known``)."""
    return frozenset(f.key for r in references for f in extract_facts(r) if f.kind == "name")


def background_names(texts_by_item: Iterable[Iterable[str]], min_items: int = 3) -> frozenset[str]:
    """Names that recur in at least ``min_items`` items of a test set (questions and references): the
    company's own name and its product lines are context, not what an answer has to state."""
    counts: Counter[str] = Counter()
    for texts in texts_by_item:
        names = {f.key for t in texts for f in extract_facts(t) if f.kind == "name"}
        counts.update(names)
    return frozenset(n for n, c in counts.items() if c >= min_items)


# -- matching --------------------------------------------------------------------------------------------
@dataclass
class FactCheck:
    """How one key fact of the reference fared in the answer."""

    fact: str
    """The fact as the reference wrote it."""
    kind: str
    """Its kind (see ``Fact.kind``)."""
    status: str
    """``found``, ``missing``, ``contradicted`` or ``old value``."""
    answer_has: str | None = None
    """What the answer said instead (contradicted, old value)."""


@dataclass
class Verdict:
    """One answer's verdict, with the facts that decided it."""

    verdict: str
    """One of ``VERDICTS``."""
    reason: str
    """One sentence a person can check."""
    facts: list[FactCheck] = field(default_factory=list)
    """Each key fact and what became of it."""
    method: str = "facts"
    """``facts``, ``refusal`` (decided by declining) or ``fallback`` (no fact to check)."""

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _present(fact: Fact, answer_facts: list[Fact], answer_lower: str) -> Fact | None:
    for f in answer_facts:
        if f.key == fact.key and (f.kind == fact.kind or {f.kind, fact.kind} <= {"count", "year"}):
            return f
        if fact.slot == "money" and f.kind in {"count", "year"} and fact.key.split("|")[0] == f.key:
            return f  # "costs 219" for "€219"
        if fact.slot == "money" and f.slot == "money" and f.key.count("|") == 1 and fact.key.startswith(f.key + "|"):
            return f  # "€2.99" for "€2.99 per month"
        if fact.kind == "date" and f.kind == "date" and _same_date(fact.key, f.key):
            return f
        if fact.kind == "count" and f.kind == "quantity" and f.key.split("|")[0] == fact.key:
            return f
    if fact.kind == "name":
        return fact if _name_found(fact.key, answer_lower) else None
    if fact.kind in {"count", "year"} and re.search(rf"(?<![\d.,]){re.escape(fact.text.strip())}(?![\d])",
                                                   answer_lower):
        return fact  # a number inside a product name ("FlowMate 8")
    return None


def _same_date(a: str, b: str) -> bool:
    ya, rest_a = a.split("-", 1)
    yb, rest_b = b.split("-", 1)
    return rest_a == rest_b and (ya == yb or "*" in (ya, yb))


def _name_found(name: str, answer_lower: str) -> bool:
    if name in answer_lower:
        return True
    if len(name) < 5:
        return bool(re.search(rf"\b{re.escape(name)}", answer_lower))
    from rapidfuzz import fuzz

    return fuzz.partial_ratio(name, answer_lower) >= 88


def judge(answer: str, reference: str, *, question: str = "", answerable: bool = True,
          old_reference: str | None = None, background: frozenset[str] = frozenset(),
          known: frozenset[str] = frozenset()) -> Verdict:
    """The verdict on ``answer`` against ``reference`` (see the module docstring).

    ``old_reference``: the answer before the document was updated (``reference`` is the updated one);
    an answer that carries its old values is ``stale``. ``known``: names the test set's references use
    (its places, people, products); one of them in place of the reference's name contradicts it."""
    core = answer_text(answer)
    refusal = is_refusal(core) or is_refusal(answer)
    if not answerable:
        claims = [f for f in extract_facts(answer, answer=True) if f.kind in _CLAIMS
                  and f.key not in {q.key for q in extract_facts(question)}]
        if refusal and not claims and not re.search(r"\bbut\s+(?:yes|no)\b", core, re.IGNORECASE):
            return Verdict(CORRECT, "Declined, as it should: the documents do not answer this.", method="refusal")
        if refusal:
            said = ", ".join(f.text for f in claims) or "a yes or no"
            return Verdict(WRONG, f"Declined but then asserted {said}, where the documents hold no answer.",
                           method="refusal")
        return Verdict(WRONG, "Answered a question the documents cannot answer (it should have declined).",
                       method="refusal")
    question_keys = {f.key for f in extract_facts(question)}
    keys = [f for f in _unique(extract_facts(reference)) if f.key not in question_keys and f.key not in background]
    ref_polarity = polarity(reference)
    ans_polarity = polarity(core)
    answer_facts = extract_facts(answer, answer=True)
    lower = _words_to_digits(core).lower()
    if not keys and ref_polarity is None:
        if refusal:
            return Verdict(REFUSED, "Declined a question the documents answer.", method="refusal")
        return Verdict(UNSCORED, "The reference holds no fact to check.", method="fallback")
    reference_keys = {f.key for f in keys} | question_keys
    checks: list[FactCheck] = []
    found = contradicted = 0
    for fact in keys:
        hit = _present(fact, answer_facts, lower)
        if hit is not None:
            checks.append(FactCheck(fact.text, fact.kind, "found"))
            found += 1
            continue
        rival = _rival(fact, answer_facts, reference_keys, known - background)
        if rival is not None:
            checks.append(FactCheck(fact.text, fact.kind, "contradicted", rival.text))
            contradicted += 1
        else:
            checks.append(FactCheck(fact.text, fact.kind, "missing"))
    if ref_polarity is not None:
        if ans_polarity == ref_polarity:
            checks.insert(0, FactCheck(ref_polarity.capitalize(), "polarity", "found"))
            found += 1
        elif ans_polarity is not None:
            checks.insert(0, FactCheck(ref_polarity.capitalize(), "polarity", "contradicted",
                                       ans_polarity.capitalize()))
            contradicted += 1
    hard = [c for c in checks if c.kind != "polarity"]
    if old_reference:
        stale = _stale(old_reference, keys, answer_facts, lower, question_keys, background)
        old_polarity = polarity(old_reference)
        if stale and old_polarity and old_polarity != ref_polarity and ans_polarity == old_polarity:
            stale.insert(0, Fact("polarity", old_polarity, "polarity", old_polarity.capitalize()))
        if stale and not all(c.status == "found" for c in hard):
            for c in checks:
                if c.status == "contradicted" and any(s.text == c.answer_has for s in stale):
                    c.status = "old value"
            old = ", ".join(s.text for s in stale)
            return Verdict(STALE, f"Gives the old value ({old}) where the document now says otherwise.", checks)
    missing = [c.fact for c in checks if c.status == "missing"]
    if contradicted:
        bad = "; ".join(f"{c.fact} (the answer says {c.answer_has})" for c in checks if c.status == "contradicted")
        return Verdict(WRONG, f"Contradicted: {bad}.", checks)
    if found == 0:
        if refusal:
            return Verdict(REFUSED, "Declined a question the documents answer.", checks, method="refusal")
        recall = _word_recall(core, reference, question)
        if recall >= WORD_RECALL_PARTIAL:
            return Verdict(PARTIAL, f"States the reference's point in words ({recall:.0%} of its content words) but "
                           "none of its key facts (" + ", ".join(c.fact for c in checks) + ").", checks)
        return Verdict(WRONG, "None of the key facts (" + ", ".join(c.fact for c in checks) + ") is in the answer.",
                       checks)
    if all(c.status == "found" for c in hard) and (hard or ans_polarity == ref_polarity):
        return Verdict(CORRECT, "Every key fact found: " + ", ".join(c.fact for c in checks if c.status == "found")
                       + ".", checks)
    return Verdict(PARTIAL, f"Found {found} of {len(checks)} key facts; missing: {', '.join(missing)}.", checks)


#: An answer with none of the key facts but this share of the reference's content words (those the
#: question does not already use) says the same thing without the figures: partial, not wrong.
WORD_RECALL_PARTIAL = 0.6
_STOP = frozenset("""a an the and or but if of to in on at by for with from as is are was were be been it its this that
these those you your we our i me my they them their do does did have has had can could will would should may might
not no yes so than then there here what which who when where why how all any each about into over under up out
just also only very more most some such""".split())


def _content(text: str) -> set[str]:
    words = re.findall(r"[a-z][a-z'’-]+", (text or "").lower())
    return {w.rstrip("s") for w in words if w not in _STOP and len(w) > 2}


def _word_recall(answer: str, reference: str, question: str) -> float:
    """Share of the reference's content words (those not in the question) that the answer uses."""
    wanted = _content(reference) - _content(question)
    return len(wanted & _content(answer)) / len(wanted) if wanted else 0.0


def _unique(facts: list[Fact]) -> list[Fact]:
    seen, out = set(), []
    for f in facts:
        if f.key not in seen:
            seen.add(f.key)
            out.append(f)
    return out


def _rival(fact: Fact, answer_facts: list[Fact], reference_keys: set[str], known: frozenset[str]) -> Fact | None:
    """An answer fact in the same slot with a value the reference and the question never state (for a
    name: another name the test set knows, such as another town of the same company)."""
    if fact.kind == "name":
        return next((f for f in answer_facts if f.kind == "name" and f.key in known and f.key not in reference_keys
                     and not any(f.key in k or k in f.key for k in reference_keys)), None)
    for f in answer_facts:
        if f.key in reference_keys:
            continue
        if f.slot == fact.slot and f.kind == fact.kind:
            return f
        if fact.kind in {"count", "year"} and f.kind == fact.kind:
            return f
    return None


def _stale(old_reference: str, keys: list[Fact], answer_facts: list[Fact], lower: str, question_keys: set[str],
           background: frozenset[str]) -> list[Fact]:
    """Facts of the old reference that the updated one dropped, and that the answer still states."""
    new_keys = {f.key for f in keys}
    old_only = [f for f in _unique(extract_facts(old_reference)) if f.key not in new_keys | question_keys
                and f.key not in background and f.kind != "name"]
    bare = {f.key for f in answer_facts if f.kind in {"count", "year"}}
    return [f for f in old_only if _present(f, answer_facts, lower) is not None
            or (f.kind == "quantity" and f.key.split("|")[0] in bare)]  # "38 is less than 45"


def verdict_shares(verdicts: list[str]) -> dict[str, float]:
    """verdict -> share of the given verdicts (every verdict listed, 0.0 when absent)."""
    n = len(verdicts)
    return {v: (sum(x == v for x in verdicts) / n if n else 0.0) for v in VERDICTS}


def facts_supported(answer: str, passages: list[str]) -> tuple[int, int]:
    """(answer facts found in the passages, answer facts): grounding at the level of facts, so "90 days"
    is not grounded in a passage that says 30."""
    facts = _unique(extract_facts(answer, answer=True))
    if not facts:
        return 0, 0
    text = "\n".join(passages)
    passage_facts = extract_facts(text)
    lower = _words_to_digits(text).lower()
    return sum(_present(f, passage_facts, lower) is not None for f in facts), len(facts)
