"""Facts in a text: numbers with their units, money, percentages, durations, dates, clock times,
versions, codes and model numbers, names, and a leading Yes/No, each normalised so that two spellings
of one fact compare equal ("45-day" and "forty-five days"; "€219.00" and "219 euros"; "3 pm" and
"15:00"; "45 weeks" and "315 days").

    extract_facts("Within 45 days, at most €5.00.")  # [Fact("quantity", "5|EUR", ...), Fact(..."45|time-d"...)]

Libraries: ``text2num`` turns number words into digits ("forty-five days" -> "45 days"); the judge
(``workbench.verdicts``) matches names with ``rapidfuzz``. Quantities are read with a
unit table below rather than a quantity-extraction library: the one tried (quantulum3 0.10) read
"4.3.2" as 4.3 and "08:30" as two numbers, found no quantity in "E-410", and failed to load its
classifier under the scikit-learn release this environment installs.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass
from typing import Iterable


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
_RE_SMALL_WORD = re.compile(r"(?<!\bon )(?<!\bper )(?<!\beach )(?<!\bevery )\b(" + "|".join(_SMALL) + r")([\s-]+)(?=" + _QUALIFIER + "(?:" + _unit_alt + r"|euros?|dollars?|pounds)\b)",
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


def words_to_digits(text: str) -> str:
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
    core = match.group(1) if match and match.group(1).strip() else re.sub(r"^\s*Sources:.*$", " ", text,
                                                                          flags=re.MULTILINE)
    return _RE_CITATION.sub(" ", core)


def polarity(text: str) -> str | None:
    """``yes`` or ``no`` when the text opens with one (or says "..., but no"), else None."""
    first = (text or "").strip()
    match = _RE_POLARITY.match(first)
    if match:
        return "yes" if match.group(1) else "no"
    late = _RE_LATE_NO.match(first)
    return late.group(1).lower() if late else None


#: Facts whose denial reads "not X" next to them ("doesn't measure EC", "does not ship to the United
#: States"); a figure's negation is usually about something else ("you can't return it after 45 days").
NEGATABLE = {"name", "code"}
_NEGATION = re.compile(r"\b(?:not|no|never|cannot|nor|neither)\b|n['’]t\b", re.IGNORECASE)


_DENIAL = re.compile(r"\b(?:is|are|was|were)\s+(?:not|no\s+longer)\s+(?:available|possible|allowed|accepted|"
                     r"eligible|valid|open)\b|\b(?:you|we)\s+(?:cannot|can['’]t|can\s+not)\s+(?:return|send|get|"
                     r"exchange|cancel)\b", re.IGNORECASE)


def denial(core: str, ref_polarity: str | None) -> str | None:
    """``no`` for an answer that does not open with yes or no but whose first sentence denies what was asked
    ("Your return window is not available."), where the reference says yes; else None."""
    if ref_polarity != "yes":
        return None
    first = re.split(r"(?<=[.!?])\s|\n", core.strip(), maxsplit=1)[0]
    return "no" if _DENIAL.search(first) else None


def negated(text: str, needle: str) -> bool | None:
    """Whether a negation stands in the six words before ``needle``'s first mention in ``text``, within its
    clause; None where ``needle`` is not written there as such."""
    match = re.search(rf"(?<!\w){re.escape(needle)}(?!\w)", text or "", re.IGNORECASE)
    if match is None:
        return None
    before = text[:match.start()]
    clause = re.split(r"[.;:!?\n,(]", before)[-1]
    return bool(_NEGATION.search(" ".join(clause.split()[-6:])))


def negation_differs(reference: str, fact_text: str, answer: str, hit_text: str) -> bool:
    """Whether the answer denies a fact the reference affirms, or affirms one it denies."""
    ref, ans = negated(reference, fact_text), negated(answer, hit_text)
    return ref is not None and ans is not None and ref != ans


def extract_facts(text: str, *, answer: bool = False) -> list[Fact]:
    """Every checkable fact of ``text``, most specific kinds first; ``answer``: read an answer's core only."""
    text = answer_text(text) if answer else (text or "")
    work = words_to_digits(text)
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


_RE_NAMED = re.compile(r"\b([A-Z][\w'’-]*[A-Za-z])\s+([a-z]{3,})\b")


def named_heads(text: str) -> list[tuple[str, str]]:
    """A name and the word it names, as in "the York depot" or "the Pro plan": ``[("York", "depot"), ...]``."""
    return [(n, h) for n, h in _RE_NAMED.findall(text or "") if n.lower() not in _NAME_STOP and h not in _NAME_STOP]


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


def is_refusal(text: str) -> bool:
    """Whether the answer declines ("I don't know", "the documents do not say"): a negative fact such as
    "The warranty does not include water damage." is not a refusal."""
    return bool(_REFUSAL.search(text or ""))
