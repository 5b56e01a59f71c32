"""Generated Chinese customer rows with known duplicates, for the dedup and import benchmarks.

    from bench.dupdata import generate_rows
    rows, truth = generate_rows(200_000, dup_ratio=0.1, seed=7)

``rows`` is a list of dicts with the keys ``name, phone, email, region, industry, contact_name,
contact_mobile`` (all strings; region and industry are the zh_CN labels of the core picklists, e.g. "华东",
"制造业" — :data:`REGION_CODES` / :data:`INDUSTRY_CODES` map them to the picklist codes). About
``dup_ratio`` of the rows are duplicates of another row, written the way people really type them again:

- the company name with another legal suffix (有限公司 / 有限责任公司 / 股份有限公司 / 集团 / 公司 / none,
  "Co., Ltd." / "Inc." / "LLC" for Latin names), with or without its city prefix (上海 / 上海市), full-width
  letters and digits, extra spaces, other letter case — and, for a few, a one-character typo;
- the phone number in another format ("13800138000", "138-0013-8000", "+86 13800138000",
  "+86 138 0013 8000", "0086 138 0013 8000", full-width digits; landlines "(021) 6234 5678",
  "021-62345678", "+86 21 6234 5678") — or, for some, a different number altogether;
- the e-mail in another case, or a different one.

``truth`` is the set of index pairs ``(i, j)``, ``i < j``, of rows that are the same company (every pair of
a group of three is in it). Base companies are distinct after normalisation (no two share a phone number or
a name without suffix and region prefix), so every other pair is a true negative. The same ``n``, ratio and
seed always give the same rows.
"""

from __future__ import annotations

import random

from core.crm.dedup_normalise import name_key

REGION_LABELS = ["华东", "华南", "华北", "华中", "西南", "西北", "东北"]
REGION_CODES = dict(zip(REGION_LABELS, ["east", "south", "north", "central", "southwest", "northwest", "northeast"],
                        strict=True))
INDUSTRY_LABELS = ["制造业", "零售", "IT", "金融", "教育", "医疗", "建筑", "物流"]
INDUSTRY_CODES = dict(zip(INDUSTRY_LABELS, ["manufacturing", "retail", "it", "finance", "education",
                                            "healthcare", "construction", "logistics"], strict=True))

#: city, its "市" form, landline area code, region label
CITIES = [
    ("上海", "上海市", "021", "华东"), ("北京", "北京市", "010", "华北"), ("广州", "广州市", "020", "华南"),
    ("深圳", "深圳市", "0755", "华南"), ("杭州", "杭州市", "0571", "华东"), ("南京", "南京市", "025", "华东"),
    ("成都", "成都市", "028", "西南"), ("武汉", "武汉市", "027", "华中"), ("西安", "西安市", "029", "西北"),
    ("苏州", "苏州市", "0512", "华东"), ("天津", "天津市", "022", "华北"), ("重庆", "重庆市", "023", "西南"),
    ("沈阳", "沈阳市", "024", "东北"), ("长沙", "长沙市", "0731", "华中"), ("厦门", "厦门市", "0592", "华南"),
]
BRAND_CHARS = "".join(dict.fromkeys(  # real brands come from thousands of characters: a small pool makes unrelated names look alike
    "华信金鼎宏图远航东方创新瑞丰恒通世纪天成博嘉禾中科星海龙腾正泰盛汇联智达安捷明德鑫源卓越"
    "腾飞云蓝光宇辰浩泽锦程万象元启睿思凯盈弘毅和永康裕隆昌鸿运旺佳美优品尚志诚益川长城九"
    "百合众立信達通利丰富贵福寿喜乐吉祥如意宝玉翠珠银铜铁石木林森水火土风雷电雨雪霜露冰"
    "春夏秋冬梅兰竹菊松柏杨柳桃李杏荷莲芳华英杰俊豪雄伟峰岭岩泉溪河湖江洋波涛澜瀚浩淼"
    "晨曦朝阳晖煜炎焱烽灿烁耀辉明亮朗清澈纯净洁雅韵致远航帆舟桥楼阁亭台轩宇寰宏博广阔"
    "鹏鹰鹤凤麟骏驰骐骥虎豹狮象熊猫鸿雁燕莺雀鸥鹭天地人和合力同心协作共赢聚融汇通达畅"
    "新锐精工巧匠艺匠心诚信仁义礼智忠孝勤俭谦恭敬德馨嘉善美好佳优良卓异超群拔萃领先锋"
))
TRADES = ["科技", "贸易", "制造", "物流", "医疗器械", "教育科技", "建设工程", "电子", "食品", "化工", "软件",
          "咨询", "网络", "信息技术", "机械", "环保", "新能源", "文化传媒", "生物科技", "实业", "供应链管理",
          "汽车配件", "纺织", "家居", "广告", "投资管理", "医药", "电气", "材料", "智能装备"]
SUFFIXES = ["有限公司", "有限责任公司", "股份有限公司", "集团有限公司", "集团", "公司", ""]
LATIN_WORDS = ["Acme", "Nova", "Orient", "Pacific", "Summit", "Golden", "Star", "Dragon", "Apex", "Vertex",
               "Blue", "River", "Harbor", "Silk", "Jade", "Phoenix", "Crown", "Unity", "Bright", "Delta",
               "Falcon", "Lotus", "Maple", "Cedar", "Aurora", "Zenith", "Horizon", "Meridian", "Atlas", "Titan",
               "Sino", "Cathay", "Eastern", "Grand", "Noble", "Prime", "Royal", "Sterling", "Evergreen", "Oasis",
               "Pioneer", "Quantum", "Radiant", "Sapphire", "Trident", "Vista", "Willow", "Yangtze", "Kunlun",
               "Everest", "Beacon", "Compass", "Emerald", "Glory", "Harmony", "Infinity", "Keystone", "Legend"]
LATIN_TRADES = ["Technology", "Trading", "Logistics", "Electronics", "Software", "Medical", "Consulting",
                "Industries", "Foods", "Materials"]
LATIN_SUFFIXES = ["Co., Ltd.", "Co. Ltd", "Ltd.", "Inc.", "LLC", "Limited", ""]
SURNAMES = "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗郑梁谢宋唐许韩冯邓曹彭曾肖田董袁潘蒋蔡余杜叶程苏魏吕丁"
GIVEN = ["伟", "芳", "娜", "敏", "静", "强", "磊", "军", "洋", "勇", "艳", "杰", "涛", "明", "超", "秀英", "志强",
         "建华", "丽", "晓东", "海燕", "文", "斌", "婷", "鹏"]
MOBILE_PREFIXES = ["130", "131", "132", "133", "135", "136", "137", "138", "139", "150", "151", "152", "155",
                   "156", "157", "158", "159", "176", "177", "180", "181", "186", "187", "188", "189", "199"]
DOMAINS = ["163.com", "qq.com", "126.com", "sina.com", "corp.cn", "example.com.cn"]

_FULL_WIDTH = {c: chr(ord(c) + 0xFEE0) for c in map(chr, range(0x21, 0x7F))}
_FULL_WIDTH[" "] = "\u3000"


def full_width(text: str) -> str:
    """``"ABC 123"`` -> ``"ＡＢＣ　１２３"`` (what a Chinese input method in full-width mode types)."""
    return "".join(_FULL_WIDTH.get(c, c) for c in text)


def _mobile_formats(digits: str) -> list[str]:
    a, b, c = digits[:3], digits[3:7], digits[7:]
    return [digits, f"{a}-{b}-{c}", f"+86 {digits}", f"+86 {a} {b} {c}", f"0086 {a} {b} {c}", f"{a} {b} {c}",
            full_width(digits), f"+86-{a}-{b}-{c}"]


def _landline_formats(area: str, local: str) -> list[str]:
    half = len(local) // 2
    spaced = f"{local[:half]} {local[half:]}"
    return [f"({area}) {spaced}", f"{area}-{local}", f"+86 {area[1:]} {spaced}", f"{area}{local}",
            f"{area} {spaced}", f"+86-{area[1:]}-{local}"]


class _Company:
    __slots__ = ("core", "latin", "city", "suffix", "phones", "phone_formats", "email", "region", "industry",
                 "contact_name", "contact_mobile", "use_city")

    def name(self, rng: random.Random, variant: bool, taken: set) -> str:
        city = self.city
        if self.latin:
            suffix = rng.choice(LATIN_SUFFIXES) if variant else self.suffix
            core = self.core
            if variant:
                core = rng.choice([core, core.upper(), core.lower(), full_width(core), "  ".join(core.split())])
            return f"{core} {suffix}".strip()
        suffix = rng.choice(SUFFIXES) if variant else self.suffix
        core = self.core
        if variant:
            prefix = rng.choice(["", city[0], city[1], city[0] + " "])
            if rng.random() < 0.08:  # a one-character typo in the brand (caught by the phone or by fuzzy names)
                pos = rng.randrange(len(core) - 1)
                typo = core[:pos] + rng.choice(BRAND_CHARS) + core[pos + 1:]
                if typo not in taken:  # not another company's name
                    core = typo
            if rng.random() < 0.15:
                core = core.replace("", " ").strip() if rng.random() < 0.3 else f"{core[:2]} {core[2:]}"
        else:
            prefix = city[0] if self.use_city else ""
        return f"{prefix}{core}{suffix}"


def generate_rows(n: int, dup_ratio: float = 0.1, seed: int = 20261123) -> tuple[list[dict], set[tuple[int, int]]]:
    """``n`` customer rows of which about ``n * dup_ratio`` duplicate another; and the true duplicate pairs."""
    rng = random.Random(seed)
    n_dups = int(round(n * dup_ratio))
    n_base = n - n_dups
    cores: set[str] = set()
    phones: set[str] = set()
    companies: list[_Company] = []

    def new_phone(city) -> tuple[str, list[str]]:
        while True:
            if rng.random() < 0.25:
                local = str(rng.randrange(2, 9)) + "".join(rng.choices("0123456789", k=7))
                key = city[2] + local
                formats = _landline_formats(city[2], local)
            else:
                key = rng.choice(MOBILE_PREFIXES) + "".join(rng.choices("0123456789", k=8))
                formats = _mobile_formats(key)
            if key not in phones:
                phones.add(key)
                return key, formats

    for i in range(n_base):
        company = _Company()
        company.latin = rng.random() < 0.06
        tries = 0
        while True:
            tries += 1
            if tries > 20:  # the Latin names are used up: a Chinese one
                company.latin = False
            if company.latin:
                words = [rng.choice(LATIN_WORDS), rng.choice(LATIN_WORDS).lower()]
                if rng.random() < 0.7:
                    words.insert(1, " " + rng.choice(LATIN_WORDS))
                core = f"{''.join(words)} {rng.choice(LATIN_TRADES)}"
                key = core.casefold().replace(" ", "")
            else:
                length = 2 if rng.random() < 0.6 else 3
                core = "".join(rng.choices(BRAND_CHARS, k=length)) + rng.choice(TRADES)
                key = core
                if name_key(core) != core:  # a brand starting like a region (金华, 长春…) or ending like a suffix
                    continue
            if key not in cores:
                cores.add(key)
                break
        company.core = core
        company.city = rng.choice(CITIES)
        company.use_city = rng.random() < 0.7
        company.suffix = rng.choice(LATIN_SUFFIXES if company.latin else SUFFIXES[:4] + ["公司"])
        key, formats = new_phone(company.city)
        company.phones = key
        company.phone_formats = formats
        company.email = f"{'sales' if i % 3 else 'info'}{i}@{rng.choice(DOMAINS)}"
        company.region = company.city[3]
        company.industry = rng.choice(INDUSTRY_LABELS)
        company.contact_name = rng.choice(SURNAMES) + rng.choice(GIVEN)
        while True:
            company.contact_mobile = rng.choice(MOBILE_PREFIXES) + "".join(rng.choices("0123456789", k=8))
            if company.contact_mobile not in phones:
                phones.add(company.contact_mobile)
                break
        companies.append(company)

    # (company index, is_duplicate) in final order
    entries = [(c, False) for c in range(n_base)]
    for _ in range(n_dups):
        entries.append((rng.randrange(n_base), True))
    rng.shuffle(entries)

    rows: list[dict] = []
    groups: dict[int, list[int]] = {}
    for index, (c, is_dup) in enumerate(entries):
        company = companies[c]
        groups.setdefault(c, []).append(index)
        if not is_dup:
            rows.append({
                "name": company.name(rng, False, cores),
                "phone": rng.choice(company.phone_formats[:4]),
                "email": company.email,
                "region": company.region,
                "industry": company.industry,
                "contact_name": company.contact_name,
                "contact_mobile": company.contact_mobile,
            })
            continue
        roll = rng.random()
        if roll < 0.15:  # moved office: a new number, the name tells
            _, formats = new_phone(company.city)
            phone = rng.choice(formats)
        elif roll < 0.20:  # no phone given
            phone = ""
        else:
            phone = rng.choice(company.phone_formats)
        email_roll = rng.random()
        email = company.email if email_roll < 0.5 else company.email.upper() if email_roll < 0.7 else ""
        mobile_roll = rng.random()
        mobile = company.contact_mobile if mobile_roll < 0.6 else rng.choice(_mobile_formats(company.contact_mobile))
        rows.append({
            "name": company.name(rng, True, cores),
            "phone": phone,
            "email": email,
            "region": company.region,
            "industry": company.industry,
            "contact_name": company.contact_name,
            "contact_mobile": mobile,
        })

    truth: set[tuple[int, int]] = set()
    for members in groups.values():
        for a in range(len(members)):
            for b in range(a + 1, len(members)):
                truth.add((members[a], members[b]))
    return rows, truth


if __name__ == "__main__":  # a quick look: python -m bench.dupdata
    sample, pairs = generate_rows(2_000, seed=1)
    for i, j in sorted(pairs)[:15]:
        print(f"{sample[i]['name']:<28} {sample[i]['phone']:<22} | {sample[j]['name']:<28} {sample[j]['phone']}")
    print(f"{len(sample)} rows, {len(pairs)} duplicate pairs")
