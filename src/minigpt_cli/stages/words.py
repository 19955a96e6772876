"""English words and sentences as FineWeb counts them, without spaCy.

FineWeb's filters (datatrove 0.10.1) split English text with spaCy's blank English tokenizer
and count its sentences with spaCy's rule-based sentencizer. This module re-implements both for
the quality stages: the same algorithm (whitespace chunks; each chunk checked against the
tokenizer's exceptions, then prefixes and suffixes split off one at a time, then infixes), the
same prefix / suffix / infix patterns (spaCy's ``lang/punctuation.py``, the character classes
written with Unicode properties), and spaCy's English exceptions table ("don't" -> "do" "n't",
"Mr." kept whole), shipped as ``data/english_exceptions.json``. Not reproduced: spaCy's URL
matcher (a simpler one keeps ``http://...`` and ``www....`` whole) and its matching of
emoticons across token boundaries.

``words(text)`` -> the tokens, punctuation marks included (as datatrove counts them);
``sentence_count(text)`` -> the number of sentences spaCy's sentencizer finds.
"""

from __future__ import annotations

import json
import unicodedata
from functools import lru_cache
from importlib import resources

import regex

__all__ = ["sentence_count", "words"]

# spaCy's character classes (spacy/lang/char_classes.py), letters as Unicode properties.
_PUNCT = (r"… …… , : ; \! \? ¿ ؟ ¡ \( \) \[ \] \{ \} < > _ # \* & "
          r"。 ？ ！ ， 、 ； ： ～ · । ، ۔ ؛ ٪")
_QUOTES = r'\' " ” “ ` ‘ ´ ’ ‚ , „ » « 「 」 『 』 （ ） 〔 〕 【 】 《 》 〈 〉 〈 〉  ⟦ ⟧'
_HYPHENS = "- – — -- --- —— ~"
_CURRENCY = (
    r"\$ £ € ¥ ฿ US\$ C\$ A\$ ₽ ﷼ ₴ ₠ ₡ ₢ ₣ ₤ ₥ ₦ ₧ ₨ ₩ ₪ ₫ € ₭ ₮ ₯ ₰ "
    r"₱ ₲ ₳ ₴ ₵ ₶ ₷ ₸ ₹ ₺ ₻ ₼ ₽ ₾ ₿"
)
_UNITS = (
    "km km² km³ m m² m³ dm dm² dm³ cm cm² cm³ mm mm² mm³ ha µm nm yd in ft "
    "kg g mg µg t lb oz m/s km/h kmh mph hPa Pa mbar mb MB kb KB gb GB tb "
    "TB T G M K % км км² км³ м м² м³ дм дм² дм³ см см² см³ мм мм² мм³ нм "
    "кг г мг м/с км/ч кПа Па мбар Кб КБ кб Мб МБ мб Гб ГБ гб Тб ТБ тб"
    "كم كم² كم³ م م² م³ سم سم² سم³ مم مم² مم³ كم غرام جرام جم كغ ملغ كوب اكواب"
)
_ALPHA, _LOWER, _UPPER = r"\p{L}", r"\p{Ll}\p{Lo}", r"\p{Lu}\p{Lo}"
_ICONS = r"[\p{So}]"
_ELLIPSES = [r"\.\.+", "…"]


def _split(chars: str) -> list[str]:
    return [c for c in chars.strip().split(" ") if c]


_Q = "".join(_split(_QUOTES))
_P = "|".join(_split(_PUNCT))
_PREFIXES = (["§", "%", "=", "—", "–", r"\+(?![0-9])"] + _split(_PUNCT) + _ELLIPSES
             + _split(_QUOTES) + _split(_CURRENCY) + [_ICONS])
_SUFFIXES = (_split(_PUNCT) + _ELLIPSES + _split(_QUOTES) + [_ICONS]
             + ["'s", "'S", "’s", "’S", "—", "–"]
             + [r"(?<=[0-9])\+", r"(?<=°[FfCcKk])\.",
                r"(?<=[0-9])(?:{})".format("|".join(_split(_CURRENCY))),
                r"(?<=[0-9])(?:{})".format("|".join(_split(_UNITS))),
                rf"(?<=[0-9{_LOWER}%²\-\+{_P}(?:{_Q})])\.",  # spaCy's class, "|(?:)" and all
                rf"(?<=[{_UPPER}][{_UPPER}])\."])
_INFIXES = (_ELLIPSES + [_ICONS]
            + [r"(?<=[0-9])[+\-\*^](?=[0-9-])",
               rf"(?<=[{_LOWER}{_Q}])\.(?=[{_UPPER}{_Q}])",
               rf"(?<=[{_ALPHA}]),(?=[{_ALPHA}])",
               r"(?<=[{a}0-9])(?:{h})(?=[{a}])".format(a=_ALPHA, h="|".join(_split(_HYPHENS))),
               rf"(?<=[{_ALPHA}0-9])[:<>=/](?=[{_ALPHA}])"])

_PREFIX = regex.compile("|".join("^" + p for p in _PREFIXES))
_SUFFIX = regex.compile("|".join(p + "$" for p in _SUFFIXES))
_INFIX = regex.compile("|".join(_INFIXES))
# spaCy's URL_PATTERN (lang/tokenizer_exceptions.py): kept whole once affixes are off.
_URL = regex.compile(
    r"^(?:(?:[\w\+\-\.]{2,})://)?(?:\S+(?::\S*)?@)?(?:"
    r"(?!(?:10|127)(?:\.\d{1,3}){3})(?!(?:169\.254|192\.168)(?:\.\d{1,3}){2})"
    r"(?!172\.(?:1[6-9]|2\d|3[0-1])(?:\.\d{1,3}){2})"
    r"(?:[1-9]\d?|1\d\d|2[01]\d|22[0-3])(?:\.(?:1?\d{1,2}|2[0-4]\d|25[0-5])){2}"
    r"(?:\.(?:[1-9]\d?|1\d\d|2[0-4]\d|25[0-4]))"
    r"|(?:(?:[A-Za-z0-9\u00a1-\uffff][A-Za-z0-9\u00a1-\uffff_-]{0,62})?"
    r"[A-Za-z0-9\u00a1-\uffff]\.)+(?:[" + _LOWER + r"]{2,63}))"
    r"(?::\d{2,5})?(?:[/?#]\S*)?$"
)


def _load_exceptions() -> dict[str, tuple[str, ...]]:
    raw = resources.files("minigpt_cli.stages").joinpath("data/english_exceptions.json")
    table = json.loads(raw.read_text(encoding="utf-8"))["exceptions"]
    return {k: tuple(v) if v else (k,) for k, v in table.items()}


_EXCEPTIONS = _load_exceptions()
# Exceptions that span several affix/infix pieces ("i.e." -> "i.e" "."; "):" -> ")" ":"): spaCy
# merges such pieces back after splitting a chunk (its special-case matcher).
_MERGEABLE = frozenset(k for k in _EXCEPTIONS if len(k) > 1 and not k.isalpha())
_LONGEST = max(len(k) for k in _MERGEABLE)


def _merge_specials(tokens: list[str]) -> list[str]:
    """Merge runs of tokens that spell an exception, longest first (spaCy's filter_spans)."""
    n = len(tokens)
    spans = []
    for i in range(n):
        joined = tokens[i]
        for j in range(i + 1, n):
            joined += tokens[j]
            if len(joined) > _LONGEST:
                break
            if joined in _MERGEABLE:
                spans.append((j + 1 - i, i, j + 1))
    if not spans:
        return tokens
    spans.sort(reverse=True)  # longest first, then the later start
    taken: set[int] = set()
    chosen = {}
    for _, i, j in spans:
        if i not in taken and j - 1 not in taken:
            chosen[i] = j
        taken.update(range(i, j))
    out: list[str] = []
    i = 0
    while i < n:
        if i in chosen:
            out.extend(_EXCEPTIONS["".join(tokens[i:chosen[i]])])
            i = chosen[i]
        else:
            out.append(tokens[i])
            i += 1
    return out


_TAIL = 16  # every suffix pattern but "\.\.+" matches fewer characters than this


def _suffix(s: str):
    """spaCy's suffix search (the leftmost match ending the string), looking at the tail only:
    a search from the start of a long chunk ("((((...", "=====...") costs its length, so
    splitting its affixes one by one would cost its length squared."""
    start = max(0, len(s) - _TAIL)
    m = _SUFFIX.search(s, start)  # lookbehinds still see the text before ``start``
    if m is not None and m.start() == start and start > 0 and s[start] == ".":
        m = _SUFFIX.search(s)  # a run of dots may begin before the tail
    return m


@lru_cache(maxsize=1 << 17)
def _chunk(chunk: str) -> tuple[str, ...]:
    """The tokens of one whitespace-free chunk (spaCy's Tokenizer._split_affixes + attach)."""
    special = _EXCEPTIONS.get(chunk)
    if special is not None:
        return special
    prefixes: list[tuple[str, ...]] = []
    suffixes: list[tuple[str, ...]] = []
    s = chunk
    last = -1
    found: tuple[str, ...] | None = None
    while s and len(s) != last:
        last = len(s)
        m = _PREFIX.match(s)
        pre = m.end() if m else 0
        if pre:
            rest = s[pre:]
            if rest and rest in _EXCEPTIONS:
                prefixes.append((s[:pre],))
                s, found = rest, _EXCEPTIONS[rest]
                break
        m = _suffix(s[pre:])
        suf = (len(s) - pre - m.start()) if m else 0
        if suf:
            rest = s[:-suf]
            if rest and rest in _EXCEPTIONS:
                suffixes.append((s[-suf:],))
                s, found = rest, _EXCEPTIONS[rest]
                break
        if pre and suf and pre + suf <= len(s):
            prefixes.append((s[:pre],))
            suffixes.append((s[-suf:],))
            s = s[pre:-suf]
        elif pre:
            prefixes.append((s[:pre],))
            s = s[pre:]
        elif suf:
            suffixes.append((s[-suf:],))
            s = s[:-suf]
        if s and s in _EXCEPTIONS:
            found = _EXCEPTIONS[s]
            break
    out: list[str] = [t for p in prefixes for t in p]
    if s:
        if found is not None:
            out.extend(found)
        elif _URL.match(s):
            out.append(s)
        else:
            start = 0
            for m in _INFIX.finditer(s):
                if m.start() == 0 and m.end() == 0:
                    continue
                if s[start:m.start()]:
                    out.append(s[start:m.start()])
                if m.end() > m.start():
                    out.append(m.group())
                start = m.end()
            if s[start:]:
                out.append(s[start:])
    for suffix in reversed(suffixes):
        out.extend(suffix)
    return tuple(_merge_specials(out) if len(out) > 1 else out)


def words(text: str) -> list[str]:
    """The tokens of ``text``: spaCy English's, whitespace tokens left out."""
    out: list[str] = []
    for chunk in text.split():
        if chunk.isalpha() and chunk not in _EXCEPTIONS:
            out.append(chunk)
        else:
            out.extend(_chunk(chunk))
    return out


# spaCy's Sentencizer.default_punct_chars: a token that is one of these ends a sentence.
_SENT_END = frozenset(
    "!.?։؟۔܀܁܂߹।॥၊။።፧፨᙮᜵᜶᠃᠉᥄᥅᪨᪩᪪᪫᭚᭛᭞᭟᰻᰼᱾᱿‼‽⁇⁈⁉⸮⸼꓿꘎꘏꛳꛷꡶꡷꣎꣏꤯꧈꧉꩝꩞꩟꫰꫱꯫﹒﹖﹗！．？"
    "𐩖𐩗𑁇𑁈𑂾𑂿𑃀𑃁𑅁𑅂𑅃𑇅𑇆𑇍𑇞𑇟𑈸𑈹𑈻𑈼𑊩𑑋𑑌𑗂𑗃𑗉𑗊𑗋𑗌𑗍𑗎𑗏𑗐𑗑𑗒𑗓𑗔𑗕𑗖𑗗𑙁𑙂𑜼𑜽𑜾𑩂𑩃𑪛𑪜𑱁𑱂𖩮𖩯𖫵𖬷𖬸𖭄𛲟𝪈｡。"
)


@lru_cache(maxsize=1 << 12)
def _is_punct(token: str) -> bool:
    return all(unicodedata.category(c).startswith("P") for c in token)


def sentence_count(text: str) -> int:
    """Sentences in ``text`` as spaCy's sentencizer splits them (0 for blank text).

    A sentence ends at a token that is a sentence-ending mark (. ! ? and their kin in other
    scripts; "..." is not one) once a token follows that is not punctuation.
    """
    count, seen_end, any_token = 0, False, False
    for chunk in text.split():
        tokens = (chunk,) if chunk.isalpha() else _chunk(chunk)
        for t in tokens:
            any_token = True
            if t in _SENT_END:
                seen_end = True
            elif seen_end and not _is_punct(t):
                count += 1
                seen_end = False
    return count + 1 if any_token else 0
