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
  for 45 days, E-455 for E-410, No for Yes; a name or code denied where the reference affirms it),
  no key fact present, or an answer where the documents hold none;
- ``stale``: it carries the old value where an updated reference replaced it;
- ``refused``: it declines a question the documents answer;
- ``unscored``: the reference holds no extractable fact; the caller falls back to similarity or an
  LLM judge and labels it so.

Facts are read by ``workbench.facts``.
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass, field
from typing import Any

from .facts import (NEGATABLE, Fact, answer_text, denial, extract_facts, is_refusal, named_heads, negated,
                    negation_differs, polarity, words_to_digits)

#: Raised whenever a change can move a verdict, so runs judged before it can be re-judged (``eval_runs.rejudge``);
#: ``JUDGE_CHANGES`` says what each version brought.
JUDGE_VERSION = 5
JUDGE_CHANGES = {1: "facts with their units; stale and refused answers",
                 2: "amounts are checked with their period and counts with what they count; a figure in parentheses "
                    "is an aside; the right figure among three or more guesses of its kind is wrong; short names "
                    "and initials are matched as whole words",
                 3: "a name or code the answer denies where the reference affirms it (or the other way round) is "
                    "contradicted; an answer whose first sentence denies what the reference's Yes grants reads as No",
                 4: "another value of the same kind in the clause that states the right one (\"a £265 weekly rental "
                    "costs £190\") contradicts it",
                 5: "an answer that never names the thing asked about but another of its kind (\"the Leeds depot\" "
                    "for \"the York depot\") is wrong"}

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

_CLAIMS = {"quantity", "date", "time", "version", "year", "count"}


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


def _present(fact: Fact, answer_facts: list[Fact], answer_lower: str, answer: str = "") -> Fact | None:
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
        return fact if _name_found(fact.key, answer_lower, answer) else None
    if fact.kind in {"count", "year"} and re.search(rf"(?<![\d.,]){re.escape(fact.text.strip())}(?![\d])",
                                                   answer_lower):
        return fact  # a number inside a product name ("FlowMate 8")
    return None


def _same_date(a: str, b: str) -> bool:
    ya, rest_a = a.split("-", 1)
    yb, rest_b = b.split("-", 1)
    return rest_a == rest_b and (ya == yb or "*" in (ya, yb))


def _name_found(name: str, answer_lower: str, answer: str = "") -> bool:
    if len(name) < 5:  # a short name or code as a word of its own: "EC" is not in "because"
        return bool(re.search(rf"\b{re.escape(name)}(?:s|es|['’]s)?\b", answer_lower))
    if name in answer_lower:
        return True
    words = name.split()
    initials = "".join(w[0] for w in words).upper()
    if len(words) >= 2 and re.search(rf"\b{re.escape(initials)}\b", answer):
        return True  # "EU" for "European Union", written in capitals
    from rapidfuzz import fuzz

    return fuzz.partial_ratio(name, answer_lower) >= 88


def judge(answer: str, reference: str, **given: Any) -> Verdict:
    """The verdict on ``answer`` against ``reference`` (see the module docstring; the keywords: ``_judge``).

    Where the answer has the house format's ``Answer:`` line, that line is what is judged (the Summary is its
    headline); a key fact missing there but stated on another line is named in the reason."""
    verdict = _judge(answer, reference, **given)
    if verdict.verdict in {PARTIAL, WRONG, REFUSED} and re.search(r"^\s*Answer:\s*\S", answer, re.MULTILINE):
        rest = _judge(re.sub(r"^\s*(?:Answer|Sources):.*$", "", answer, flags=re.MULTILINE), reference, **given)
        missing = {c.fact for c in verdict.facts if c.status == "missing"}
        said = [c.fact.strip() for c in rest.facts if c.status == "found" and c.fact in missing]
        if said:
            verdict.reason += (f" Only the Answer line is judged; another line states {', '.join(said)}, which "
                               "the Answer line does not.")
    return verdict


def _judge(answer: str, reference: str, *, question: str = "", answerable: bool = True,
           old_reference: str | None = None, background: frozenset[str] = frozenset(),
           known: frozenset[str] = frozenset()) -> Verdict:
    """``old_reference``: the answer before the document was updated (``reference`` is the updated one); an
    answer that carries its old values is ``stale``. ``known``: names the test set's references use (its
    places, people, products); one of them in place of the reference's name contradicts it."""
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
    asides = _aside_keys(reference, keys)
    ref_polarity = polarity(reference)
    ans_polarity = polarity(core) or denial(core, ref_polarity)
    answer_facts = extract_facts(answer, answer=True)
    lower = words_to_digits(core).lower()
    if not keys and ref_polarity is None:
        if refusal:
            return Verdict(REFUSED, "Declined a question the documents answer.", method="refusal")
        return Verdict(UNSCORED, "The reference holds no fact to check.", method="fallback")
    reference_keys = {f.key for f in keys} | question_keys
    nouns = _count_nouns(reference)
    checks: list[FactCheck] = []
    found = contradicted = 0
    for fact in keys:
        hit = _present(fact, answer_facts, lower, core)
        noun = nouns.get(fact.key) if fact.kind == "count" else None
        if hit is not None and noun and hit.kind in {"count", "year"} and not _counts_with(fact.text, noun, lower):
            checks.append(FactCheck(f"{fact.text} {noun}", fact.kind, "missing"))  # "in steps of 100" for "100 Seeds"
            continue
        if hit is not None:
            mismatch = _other_rate(fact, answer_facts, reference_keys) or _rival_beside(fact, hit, core, keys,
                                                                                       reference_keys)
            if mismatch is not None:
                checks.append(FactCheck(fact.text, fact.kind, "contradicted", mismatch.text))
                contradicted += 1
                continue
            if fact.kind in NEGATABLE and negation_differs(reference, fact.text, core, hit.text):
                denied = bool(negated(reference, fact.text))  # the reference denies it, the answer affirms it
                checks.append(FactCheck(f"not {fact.text}" if denied else fact.text, fact.kind, "contradicted",
                                        hit.text if denied else f"not {hit.text}"))
                contradicted += 1
                continue
            checks.append(FactCheck(fact.text, fact.kind, "found"))
            found += 1
            continue
        rival = _rival(fact, answer_facts, reference_keys, known - background)
        if rival is not None:
            checks.append(FactCheck(fact.text, fact.kind, "contradicted", rival.text))
            contradicted += 1
        elif fact.key not in asides:
            checks.append(FactCheck(fact.text, fact.kind, "missing"))
    if (swap := _other_subject(question, reference, core)) is not None:
        checks.append(FactCheck(swap[0], "name", "contradicted", swap[1]))
        contradicted += 1
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
    spray = _scattered(keys, answer_facts, reference_keys) if found and not contradicted else None
    if spray:
        fact, others = spray
        return Verdict(WRONG, f"States {fact.text} among other values of the same kind ("
                       + ", ".join(f.text for f in others) + "): the right one is among guesses, not stated.", checks)
    if contradicted:
        bad = "; ".join(f"{c.fact} (the answer says {c.answer_has})" for c in checks if c.status == "contradicted")
        return Verdict(WRONG, f"Contradicted: {bad}.", checks)
    if found == 0:
        if refusal:
            # A house-format answer can decline on its Answer line after its Summary line stated a figure:
            # a wrong figure anywhere in it makes it wrong, not a clean refusal.
            full = extract_facts(answer)
            said = [r for f in keys if (r := _rival(f, full, reference_keys, known - background) or next(
                (g for g in full if g.kind == f.kind == "quantity" and g.key not in reference_keys
                 and g.slot.split("-")[0] == f.slot.split("-")[0]), None))]  # 24 hours against 45 days
            if said:
                return Verdict(WRONG, f"Declined, but also states {said[0].text}, where the reference says "
                                      f"{keys[0].text}.", checks, method="refusal")
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


_RE_ASIDE = re.compile(r"\(([^()]*)\)")


def _aside_keys(reference: str, keys: list[Fact]) -> set[str]:
    """Keys stated only inside parentheses, when the reference has key facts outside them too: "The Balcony
    Starter Kit (€169.00) contains ..." answers what it contains, and the price is an aside. An aside the
    answer contradicts still counts against it."""
    inside = {f.key for m in _RE_ASIDE.finditer(reference) for f in extract_facts(m.group(1))}
    outside = {f.key for f in extract_facts(_RE_ASIDE.sub(" ", reference))}
    aside = {f.key for f in keys if f.key in inside and f.key not in outside}
    return aside if any(f.key not in aside for f in keys) else set()


def _scattered(keys: list[Fact], answer_facts: list[Fact], reference_keys: set[str]) -> tuple[Fact, list[Fact]] | None:
    """Three or more other values in the slot of a key fact the answer states ("45 days ... 14 days ... 7 days
    ... 8 weeks"): the right one is among guesses, not stated."""
    for fact in keys:
        if fact.kind != "quantity":
            continue
        others = _unique([f for f in answer_facts if f.slot == fact.slot and f.kind == fact.kind
                          and f.key not in reference_keys])
        if len(others) >= 3:
            return fact, others
    return None


_RE_COUNT_NOUN = re.compile(r"(?<![\w.,])(\d{1,3}(?:,\d{3})+|\d+)\s+([A-Za-z][A-Za-z'’-]{2,})")


def _count_nouns(reference: str) -> dict[str, str]:
    """Bare numbers of the reference and the noun that follows each ("100 Seeds" -> {"100": "Seeds"}):
    a count means something only with what it counts."""
    from .facts import _fmt, _number

    out: dict[str, str] = {}
    for m in _RE_COUNT_NOUN.finditer(words_to_digits(reference)):
        noun = m.group(2)
        if noun.lower() not in _STOP and noun.lower() not in {"to", "or", "and", "per", "of"}:
            out.setdefault(_fmt(_number(m.group(1))), noun)
    return out


def _counts_with(number: str, noun: str, lower: str) -> bool:
    """Whether the answer puts ``number`` next to ``noun`` (within two words, either side)."""
    stem = re.escape(noun.lower().rstrip("s")[:max(3, len(noun) - 2)])
    num = re.escape(number.strip().lower())
    gap = r"\s+(?:[\w'’-]+\s+){0,2}"
    return bool(re.search(rf"(?<![\d.,]){num}{gap}{stem}|\b{stem}\w*{gap}(?:of\s+)?{num}(?![\d])", lower))


def _other_rate(fact: Fact, answer_facts: list[Fact], reference_keys: set[str]) -> Fact | None:
    """An amount the answer also states that breaks the reference's pairing of amount and period: "€29 per
    month" where the reference says €29 per year, or another amount per month where it says €2.99 per month."""
    if fact.slot != "money" or fact.key.count("|") != 2:
        return None
    value, currency, per = fact.key.split("|")
    for f in answer_facts:
        if f.slot != "money" or f.key in reference_keys or f.key.count("|") != 2:
            continue
        v, c, p = f.key.split("|")
        if c == currency and ((v == value and p != per) or (p == per and v != value)):
            return f
    return None


_RE_CLAUSE = re.compile(r"(?<=[.!?;:,])\s+|\n+|\s(?:and|but|or|while|whereas|then)\s|\s[-–—]\s")


def _rival_beside(fact: Fact, hit: Fact, core: str, keys: list[Fact], reference_keys: set[str]) -> Fact | None:
    """Another value of the same kind in the very clause that states the right one, where the reference has
    one value of that kind: "A £265 weekly rental ... costs £190" states the price and contradicts it ("45 days;
    refunds within 7 days" are two claims, and are left alone)."""
    if fact.kind != "quantity" or sum(k.slot == fact.slot for k in keys) != 1:
        return None
    for clause in _RE_CLAUSE.split(core):
        facts = extract_facts(clause, answer=True)
        if any(f.key == hit.key for f in facts):
            rival = next((f for f in facts if f.slot == fact.slot and f.kind == fact.kind
                          and f.key not in reference_keys), None)
            if rival is not None:
                return rival
    return None


def _other_subject(question: str, reference: str, core: str) -> tuple[str, str] | None:
    """The question and the reference are about "the York depot", and the answer never names York but names
    "the Leeds depot": its figures describe another thing. Returns ("York depot", "Leeds depot")."""
    asked = set(named_heads(question)) & set(named_heads(reference))
    for name, head in sorted(asked):
        if not re.search(rf"\b{re.escape(name)}\b", core):
            other = next((n for n, h in named_heads(core) if h == head and n != name), None)
            if other is not None:
                return f"{name} {head}", f"{other} {head}"
    return None


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


def facts_supported(answer: str, passages: list[str]) -> tuple[int, int]:
    """(answer facts found in the passages, answer facts): grounding at the level of facts, so "90 days"
    is not grounded in a passage that says 30."""
    facts = _unique(extract_facts(answer, answer=True))
    if not facts:
        return 0, 0
    text = "\n".join(passages)
    passage_facts = extract_facts(text)
    lower = words_to_digits(text).lower()
    return sum(_present(f, passage_facts, lower) is not None for f in facts), len(facts)
