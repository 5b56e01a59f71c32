"""Match keys of duplicate rules (查重): phone numbers to E.164, company names without legal suffixes and
region prefixes, e-mails in lower case.

The keys are stored in indexed columns (``name_key``, ``phone_key``, ``email_key`` of customers;
``mobile_key``, ``phone_key``, ``email_key`` of contacts) whenever a record is saved (the mapper events of
:mod:`core.crm.customers`; bulk writers such as the import call :func:`customer_keys` / :func:`contact_keys`),
so that a duplicate check is an index lookup.

* :func:`phone_key`: ``"138-0013-8000"``, ``"+86 13800138000"``, ``"0086 138 0013 8000"``, ``"13800138000"``
  and full-width ``"１３８００１３８０００"`` are all ``"+8613800138000"``; ``"(021) 6234 5678"`` and
  ``"+86 21 6234 5678"`` are ``"+862162345678"`` (phonenumbers; a number without its country code is read
  in the instance's region, :func:`phone_region`: CN, or TW in a 繁體 instance — ``"02-2345-6789"`` is then
  ``"+886223456789"``). An extension (转 / ext / #) is dropped. What phonenumbers cannot make a valid number
  of keeps its digits (without +86 / 0086 / the trunk 0).
* :func:`name_key`: NFKC (full-width → half-width), case-folded, spaces and punctuation removed, legal
  suffixes stripped (有限公司, 有限责任公司, 股份有限公司, 集团, 公司, Co., Ltd., Inc., LLC …), a region in
  brackets dropped (某某科技（上海）有限公司) and — with ``strip_region`` — leading province and city names
  (上海, 上海市, 广东省深圳市, 台北 / 臺北市 …): ``"上海某某科技有限公司"`` → ``"某某科技"``; without it they
  are kept, written without 省 / 市 / 县 (``"保定市华信科技"`` → ``"保定华信科技"``). A name that would become
  shorter than two characters keeps the part stripped last.
* :func:`email_key`: trimmed and case-folded.
"""

from __future__ import annotations

import re
import unicodedata
from functools import lru_cache

import phonenumbers
from flask.globals import _cv_app

from core.crm.normalise import folded, search_key

DEFAULT_REGION = "CN"
#: the phone region of an instance whose default language is not CN's (``default_language`` in core_setting)
LANGUAGE_REGIONS = {"zh_TW": "TW"}

# -- phone numbers ------------------------------------------------------------------------------------
_EXTENSION = re.compile(r"(转|分机|ext\.?|x|#).*$", re.IGNORECASE)
_SEPARATOR = re.compile(r"[/,;，；、]")
_NON_DIGIT = re.compile(r"\D+")
_CN_MOBILE = re.compile(r"^1[3-9]\d{9}$")
_TW_MOBILE = re.compile(r"^9\d{8}$")  # after +886 or the trunk 0
_REGION_ATTRIBUTE = "_mosaic_phone_region"


def phone_region() -> str:
    """The region a number written without its country code is read in: ``"TW"`` in an instance whose
    default language is 繁體 (``zh_TW``), else ``"CN"`` (and outside an application, e.g. a script).

    Read once per application context (a request, an import's thread: the setting is read again by the next
    one, so a changed language holds from then on) and kept on its ``g`` — looked up through Flask's context
    variable, not the ``g`` proxy: the proxy alone costs more than a mobile number's key (~2 µs vs ~1 µs), and
    an import computes hundreds of thousands of keys."""
    ctx = _cv_app.get(None)
    if ctx is None:
        return DEFAULT_REGION
    region = getattr(ctx.g, _REGION_ATTRIBUTE, None)
    if region is None:
        from core.extensions import db
        from core.i18n import instance_language

        with db.session.no_autoflush:  # (asked while saving a record too: its key is computed in the flush)
            region = LANGUAGE_REGIONS.get(instance_language(), DEFAULT_REGION)
        setattr(ctx.g, _REGION_ATTRIBUTE, region)
    return region


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


def phone_key(text: str | None, region: str | None = None) -> str:
    """The E.164 form of a phone number (``"+8613800138000"``), or its digits when it is not a valid number.

    ``region``: where a number written without its country code is — by default the instance's
    (:func:`phone_region`): ``"0912-345-678"`` is ``"+886912345678"`` in a 繁體 instance, as ``"+886 912 345
    678"`` is everywhere. A Chinese mobile number is one in a Taiwanese instance too (no number there has 11
    digits starting with 1)."""
    if not text:
        return ""
    if region is None:
        region = phone_region()
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
    # fast paths for Chinese and Taiwanese mobile numbers and Chinese landlines, the bulk of the data
    # (phonenumbers takes ~30 µs a number); ``china``: written with +86 / 0086 / 86, or read in China
    if text.startswith("+"):
        national, china = (digits[2:], True) if digits.startswith("86") else (None, False)
    elif digits.startswith("0086"):
        national, china = digits[4:], True
    elif digits.startswith("86") and len(digits) == 13:
        national, china = digits[2:], True
    else:
        national, china = digits, region == "CN"
    if national is not None:
        if (china or region == "TW") and _CN_MOBILE.match(national):
            return "+86" + national
        if china:
            landline = _cn_landline(national, international=text.startswith("+") or digits.startswith("0086"))
            if landline:
                return landline
    if text.startswith("+"):
        if digits.startswith("886") and _TW_MOBILE.match(digits[3:]):
            return "+" + digits
    elif region == "TW" and digits.startswith("0") and _TW_MOBILE.match(digits[1:]):
        return "+886" + digits[1:]
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
    # Taiwan's cities and counties, as folded (臺北 → 台北, 桃園 → 桃园: :func:`core.crm.normalise.folded`)
    "台北", "新北", "桃园", "台中", "台南", "高雄", "基隆", "新竹", "嘉义", "宜兰", "花莲", "台东", "苗栗", "彰化",
    "南投", "云林", "屏东", "澎湖", "金门",
)
_REGION_SUFFIXES = ("特别行政区", "维吾尔自治区", "壮族自治区", "回族自治区", "自治区", "省", "市", "县")
#: each way of writing a region (上海, 上海市) → the region (上海): names compared with their region prefix
#: compare the region, not how it was written
_REGION_BASE = {p + s: p for p in PROVINCES + CITIES for s in ("",) + _REGION_SUFFIXES}
#: longest first, so that 上海市 is stripped whole and 黑龙江 before 黑
_REGIONS = tuple(sorted(_REGION_BASE, key=len, reverse=True))
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


def _region_parts(key: str) -> tuple[list[str], str]:
    """``(the leading regions as :func:`_strip_region` finds them, each without its 省/市/县…, the rest)``:
    ``"广东省深圳市某某"`` → ``(["广东", "深圳"], "某某")``."""
    regions = []
    for _ in range(3):
        for region in _REGIONS_BY_FIRST.get(key[:1], ()):
            if key.startswith(region) and len(key) - len(region) >= MIN_NAME:
                regions.append(_REGION_BASE[region])
                key = key[len(region):]
                break
        else:
            break
    return regions, key


def _fold_region(key: str) -> str:
    """The leading regions kept but written one way: ``"保定市华信科技"`` → ``"保定华信科技"`` (a city's 市 is
    no part of the name a rule keeping the region prefix compares)."""
    regions, rest = _region_parts(key)
    return "".join(regions) + rest if regions else key


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
    key = _strip_region(key) if strip_region else _fold_region(key)
    return key[:255]


def name_lead(text: str | None) -> str:
    """What the folded name (``search_name``) of every record whose :func:`name_key` *with* its region prefix
    is ``text``'s starts with: its first region without 省/市 (``"保定市华信科技"`` → ``"保定"``: 保定华信科技 and
    保定市华信科技 both start so), else its key's first character; ``""`` for no name. Narrows an index lookup
    of the region-stripped key to the records that can have the same name with the prefix."""
    if not text:
        return ""
    key = name_key(text, False)
    regions, _rest = _region_parts(key)
    return regions[0] if regions else key[:1]


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
