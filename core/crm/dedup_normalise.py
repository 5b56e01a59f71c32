"""Match keys of duplicate rules (查重): phone numbers to E.164, company names without legal suffixes and
region prefixes, e-mails in lower case.

The keys are stored in indexed columns (``name_key``, ``phone_key``, ``email_key`` of customers;
``mobile_key``, ``phone_key``, ``email_key`` of contacts) whenever a record is saved (the mapper events of
:mod:`core.crm.customers`; bulk writers such as the import call :func:`customer_keys` / :func:`contact_keys`),
so that a duplicate check is an index lookup.

* :func:`phone_key`: ``"138-0013-8000"``, ``"+86 13800138000"``, ``"0086 138 0013 8000"``, ``"13800138000"``
  and full-width ``"１３８００１３８０００"`` are all ``"+8613800138000"``; ``"(021) 6234 5678"`` and
  ``"+86 21 6234 5678"`` are ``"+862162345678"`` (phonenumbers, default region CN). An extension (转 / ext /
  #) is dropped. What phonenumbers cannot make a valid number of keeps its digits (without +86 / 0086 / the
  trunk 0).
* :func:`name_key`: NFKC (full-width → half-width), case-folded, spaces and punctuation removed, legal
  suffixes stripped (有限公司, 有限责任公司, 股份有限公司, 集团, 公司, Co., Ltd., Inc., LLC …), a region in
  brackets dropped (某某科技（上海）有限公司) and — with ``strip_region`` — leading province and city names
  (上海, 上海市, 广东省深圳市 …): ``"上海某某科技有限公司"`` → ``"某某科技"``. A name that would become
  shorter than two characters keeps the part stripped last.
* :func:`email_key`: trimmed and case-folded.
"""

from __future__ import annotations

import re
import unicodedata
from functools import lru_cache

import phonenumbers

from core.crm.normalise import folded, search_key

DEFAULT_REGION = "CN"

# -- phone numbers ------------------------------------------------------------------------------------
_EXTENSION = re.compile(r"(转|分机|ext\.?|x|#).*$", re.IGNORECASE)
_SEPARATOR = re.compile(r"[/,;，；、]")
_NON_DIGIT = re.compile(r"\D+")
_CN_MOBILE = re.compile(r"^1[3-9]\d{9}$")


@lru_cache(maxsize=65536)
def _parsed_phone(text: str, region: str) -> str:
    try:
        number = phonenumbers.parse(text, region)
    except phonenumbers.NumberParseException:
        return _national_digits(text)
    if phonenumbers.is_valid_number(number):
        return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)
    return _national_digits(text)


def _national_digits(text: str) -> str:
    """The digits of a number that is not valid, written alike in every format: without +86 / 0086, or
    without the trunk 0 (``"+86 21 336 6008"`` and ``"021-3366008"`` are both ``"213366008"``)."""
    digits = _NON_DIGIT.sub("", text)
    if text.startswith("+"):
        return digits[2:] if digits.startswith("86") else digits
    if digits.startswith("0086"):
        return digits[4:]
    return digits[1:] if digits.startswith("0") and not digits.startswith("00") else digits


def phone_key(text: str | None, region: str = DEFAULT_REGION) -> str:
    """The E.164 form of a phone number (``"+8613800138000"``), or its digits when it is not a valid number."""
    if not text:
        return ""
    if text.isascii() and text.isdigit():  # digits only, as most are typed: nothing to take away
        digits = text
    else:
        if not text.isascii():
            text = unicodedata.normalize("NFKC", text)
        text = _SEPARATOR.split(text.strip(), 1)[0]
        text = _EXTENSION.sub("", text).strip()
        digits = _NON_DIGIT.sub("", text)
        if not digits:
            return ""
    # fast path for Chinese mobile numbers, the bulk of the data (phonenumbers takes ~30 µs a number)
    if text.startswith("+"):
        national = digits[2:] if digits.startswith("86") else None
    elif digits.startswith("0086"):
        national = digits[4:]
    elif digits.startswith("86") and len(digits) == 13:
        national = digits[2:]
    else:
        national = digits
    if national is not None and region == "CN":
        if _CN_MOBILE.match(national):
            return "+86" + national
        landline = _cn_landline(national, international=text.startswith("+") or digits.startswith("0086"))
        if landline:
            return landline
    return _parsed_phone(text, region)[:32]


def _cn_landline(national: str, international: bool) -> str:
    """``"+862162345678"`` for a Chinese landline written ``021…`` (or ``21…`` after +86): area codes of two
    digits (10, 2x) or three, a local number of 7–8 digits not starting with 0 or 1; ``""`` otherwise (then
    phonenumbers decides). What phonenumbers gives for valid numbers, ~20 times faster; a local number of the
    wrong length for its area also gets one key in every format."""
    if not international:
        if not national.startswith("0") or national.startswith("00"):
            return ""
        national = national[1:]
    if not national or national[0] == "0":
        return ""
    area_length = 2 if national[0] in "12" else 3
    area, local = national[:area_length], national[area_length:]
    if len(local) not in (7, 8) or local[0] in "01" or (national[0] == "1" and area != "10"):
        return ""
    return "+86" + area + local


# -- e-mail -------------------------------------------------------------------------------------------
def email_key(text: str | None) -> str:
    return (text or "").strip().casefold()[:255]


# -- company names ------------------------------------------------------------------------------------
PROVINCES = (
    "北京", "天津", "上海", "重庆", "河北", "山西", "辽宁", "吉林", "黑龙江", "江苏", "浙江", "安徽", "福建", "江西",
    "山东", "河南", "湖北", "湖南", "广东", "海南", "四川", "贵州", "云南", "陕西", "甘肃", "青海", "台湾",
    "内蒙古", "广西", "西藏", "宁夏", "新疆", "香港", "澳门",
)
CITIES = (
    "深圳", "广州", "杭州", "南京", "苏州", "成都", "武汉", "西安", "长沙", "沈阳", "大连", "青岛", "济南", "郑州",
    "厦门", "福州", "宁波", "无锡", "合肥", "南昌", "昆明", "贵阳", "南宁", "哈尔滨", "长春", "石家庄", "太原",
    "兰州", "乌鲁木齐", "呼和浩特", "银川", "西宁", "拉萨", "海口", "东莞", "佛山", "珠海", "中山", "惠州",
    "温州", "绍兴", "嘉兴", "金华", "台州", "常州", "南通", "徐州", "扬州", "烟台", "潍坊", "唐山", "保定",
)
_REGION_SUFFIXES = ("特别行政区", "维吾尔自治区", "壮族自治区", "回族自治区", "自治区", "省", "市")
#: longest first, so that 上海市 is stripped whole and 黑龙江 before 黑
_REGIONS = tuple(sorted(
    {p + s for p in PROVINCES + CITIES for s in ("",) + _REGION_SUFFIXES}, key=len, reverse=True))
_REGION_IN_BRACKETS = re.compile(
    r"[(（\[【]\s*(?:" + "|".join(map(re.escape, _REGIONS)) + r")\s*[)）\]】]")
CHINESE_SUFFIXES = tuple(sorted({
    "有限公司", "有限责任公司", "有限責任公司", "股份有限公司", "股份公司", "集团有限公司", "集团股份有限公司",
    "集团公司", "集团", "集團", "公司", "总公司", "總公司", "有限", "责任公司", "(有限合伙)", "有限合伙", "合伙企业",
}, key=len, reverse=True))
LATIN_SUFFIXES = frozenset({
    "co", "ltd", "limited", "inc", "incorporated", "llc", "corp", "corporation", "company", "group", "plc",
    "gmbh", "sa", "ag", "pte", "pty", "holdings",
})
_WORD_SEPARATORS = re.compile(r"[\s\-_.,，。·•・&+'\"`/\\()（）\[\]【】{}<>《》:：;；!！?？、]+")
MIN_NAME = 2


def _by_edge(words, index: int) -> dict[str, tuple[str, ...]]:
    """``{first (or last) character: words starting (ending) with it, longest first}``."""
    table: dict[str, list[str]] = {}
    for word in words:
        table.setdefault(word[index], []).append(word)
    return {c: tuple(sorted(ws, key=len, reverse=True)) for c, ws in table.items()}


_SUFFIXES_BY_LAST = _by_edge(CHINESE_SUFFIXES, -1)
_REGIONS_BY_FIRST = _by_edge(_REGIONS, 0)
_BRACKETS = frozenset("(（[【")


def _strip_chinese_suffixes(key: str) -> str:
    while key:
        for suffix in _SUFFIXES_BY_LAST.get(key[-1], ()):
            if key.endswith(suffix) and len(key) - len(suffix) >= MIN_NAME:
                key = key[: -len(suffix)]
                break
        else:
            return key
    return key


def _strip_region(key: str) -> str:
    for _ in range(3):  # 广东省深圳市… : province, then city
        for region in _REGIONS_BY_FIRST.get(key[:1], ()):
            if key.startswith(region) and len(key) - len(region) >= MIN_NAME:
                key = key[len(region):]
                break
        else:
            return key
    return key


@lru_cache(maxsize=65536)
def name_key(text: str | None, strip_region: bool = True) -> str:
    """A company name as compared by duplicate rules: ``"上海某某科技有限公司"`` → ``"某某科技"``."""
    if not text:
        return ""
    return name_key_of(folded(text), strip_region)


def name_key_of(text: str, strip_region: bool = True) -> str:
    """:func:`name_key` of a text already :func:`core.crm.normalise.folded` (not remembered: an import's
    names are new ones, and a miss of the cache costs ~1 µs)."""
    if not text:
        return ""
    if not _BRACKETS.isdisjoint(text):
        text = _REGION_IN_BRACKETS.sub(" ", text)
    if _WORD_SEPARATORS.search(text) is None:  # one word, as most Chinese names are
        key = text
    else:
        words = [w for w in _WORD_SEPARATORS.split(text) if w]
        while len(words) > 1 and words[-1] in LATIN_SUFFIXES:
            words.pop()
        key = "".join(words)
    key = _strip_chinese_suffixes(key)
    if strip_region:
        key = _strip_region(key)
    return key[:255]


def text_key(text: str | None) -> str:
    """Any other text (a person's name): the search key of :mod:`core.crm.normalise` — width-, case- and
    space-insensitive — so that it matches the stored ``search_name``."""
    return search_key(text)


def raw_key(text: str | None) -> str:
    """The value as typed, without surrounding spaces (an addon's column it does not normalise)."""
    return (text or "").strip()[:255]


NORMALISERS = {"name": name_key, "phone": phone_key, "email": email_key, "text": text_key, "raw": raw_key}


# -- the stored keys of the core's records -------------------------------------------------------------
def customer_keys(name: str | None, phone: str | None, email: str | None) -> dict:
    """``{"name_key", "phone_key", "email_key"}`` of a customer (bulk writers set these columns)."""
    return {"name_key": name_key(name), "phone_key": phone_key(phone), "email_key": email_key(email)}


def contact_keys(mobile: str | None, phone: str | None, email: str | None) -> dict:
    """``{"mobile_key", "phone_key", "email_key"}`` of a contact."""
    return {"mobile_key": phone_key(mobile), "phone_key": phone_key(phone), "email_key": email_key(email)}
