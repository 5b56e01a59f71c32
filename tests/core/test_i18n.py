"""Languages: complete catalogues per addon (简体中文, 繁體中文, English), and the UI and CLI speaking them."""

from __future__ import annotations

import html
import re
from collections import defaultdict

import pytest
from sqlalchemy import select

from core import i18n, i18n_tools
from core.extensions import db
from core.models import User

TARGETS = {target.name: target for target in i18n_tools.targets()}
CHINESE = ("zh_CN", "zh_TW")


@pytest.fixture(scope="module", autouse=True)
def compiled_catalogues():
    """Fresh .mo files (they are not committed) for the app and the CLI subprocesses."""
    i18n.compile_catalogues([str(t.translations) for t in TARGETS.values()])


@pytest.fixture(scope="module")
def templates():
    """What the code asks to translate, per catalogue, extracted with Babel's API."""
    return {name: i18n_tools.extract(target) for name, target in TARGETS.items()}


def test_every_catalogue_is_covered():
    assert "core" in TARGETS and "example_notes" in TARGETS
    assert {"crm_lead", "crm_sales", "crm_contract", "crm_service", "crm_marketing", "crm_mobile", "erp_bridge"} <= set(TARGETS)
    assert TARGETS["example_notes"].source.name == "mosaic_example_notes"
    assert TARGETS["core"].source.name == "core"


# -- (a) completeness --------------------------------------------------------------------------------
@pytest.mark.parametrize("locale", CHINESE)
@pytest.mark.parametrize("name", sorted(TARGETS))
def test_every_message_is_translated(name, locale, templates):
    target = TARGETS[name]
    assert len(templates[name]) > 0, f"{name}: no message extracted"
    missing = i18n_tools.missing_translations(target, locale, templates[name])
    assert not missing, (
        f"{len(missing)} messages of {name} have no {locale} translation in {target.po(locale)} "
        f"(run `mosaic i18n update --extract`, then translate):\n" + "\n".join(f"  {m!r}" for m in missing)
    )


@pytest.mark.parametrize("name", sorted(TARGETS))
def test_english_catalogue_and_template_exist_and_are_current(name, templates):
    """English is the source language: its msgstr may be empty, but the catalogue lists every message."""
    target = TARGETS[name]
    assert target.pot.is_file(), f"{target.pot} is missing (run `mosaic i18n extract`)"
    catalog = i18n_tools.read_catalogue(target, "en")
    assert catalog is not None, f"{target.po('en')} is missing (run `mosaic i18n update`)"
    absent = [m.id for m in templates[name] if m.id and catalog.get(m.id, context=m.context) is None]
    assert not absent, f"{target.po('en')} lacks: {absent}"


@pytest.mark.parametrize("locale", CHINESE)
@pytest.mark.parametrize("name", sorted(TARGETS))
def test_chinese_catalogues_have_one_plural_form(name, locale):
    catalog = i18n_tools.read_catalogue(TARGETS[name], locale)
    assert catalog.num_plurals == 1
    assert "nplurals=1" in catalog.plural_forms


# -- (b) placeholders, consistency -------------------------------------------------------------------
@pytest.mark.parametrize("locale", CHINESE)
@pytest.mark.parametrize("name", sorted(TARGETS))
def test_translations_keep_the_placeholders(name, locale):
    problems = i18n_tools.placeholder_mismatches(TARGETS[name], locale)
    assert not problems, f"{name} {locale}: placeholders differ:\n" + "\n".join(problems)


@pytest.mark.parametrize("name", sorted(TARGETS))
def test_english_catalogues_hold_no_chinese(name):
    """English is the source language; a Chinese msgstr there would show Chinese to English users."""
    leaked = [
        m.id for m in i18n_tools.read_catalogue(TARGETS[name], "en")
        if m.id and any("\u4e00" <= ch <= "\u9fff" for s in i18n_tools._strings(m) for ch in s)
    ]
    assert not leaked, f"{name}: Chinese in the English catalogue: {leaked}"


@pytest.mark.parametrize("locale", CHINESE)
def test_a_message_shared_by_catalogues_is_translated_alike(locale):
    """Flask-Babel merges the catalogues into one: the same msgid (in the same context) must not mean two
    things. A word used in two senses gets a context (``lazy_pgettext("addon category", "Sales")``)."""
    seen = defaultdict(set)
    for name, target in TARGETS.items():
        for message in i18n_tools.read_catalogue(target, locale):
            if message.id and message.string:
                seen[(message.context, message.id)].add((str(message.string), name))
    conflicts = {k: v for k, v in seen.items() if len({s for s, _ in v}) > 1}
    assert not conflicts, f"{locale}: translated differently in different catalogues: {conflicts}"


def test_placeholder_parsing():
    assert i18n_tools.placeholders("%(name)s has %(count)d, 100%% sure") == ["%(count)d", "%(name)s"]
    assert i18n_tools.placeholders("%s and %s") == ["%s", "%s"]


# -- the lookup: Babel's zh_Hans_CN / zh_Hant_TW back to our folder names -------------------------------
@pytest.mark.parametrize(
    ("given", "code"),
    [("zh_CN", "zh_CN"), ("zh_Hans_CN", "zh_CN"), ("zh_Hans", "zh_CN"), ("zh_TW", "zh_TW"),
     ("zh_Hant_TW", "zh_TW"), ("zh_HK", "zh_TW"), ("en", "en"), ("en_US", "en"), ("fr", None)],
)
def test_locale_code(given, code):
    from babel import Locale

    assert i18n.locale_code(given) == code
    assert i18n.locale_code(Locale.parse(given)) == code


def test_force_locale_finds_the_chinese_catalogues(mosaic_app_factory):
    from flask_babel import force_locale, gettext

    app = mosaic_app_factory()
    with app.test_request_context("/"):
        for code, settings, leads in (("zh_CN", "设置", "线索"), ("zh_TW", "設定", "線索"), ("en", "Settings", "Leads")):
            with force_locale(code):
                assert gettext("Settings") == settings  # the core's catalogue
                assert gettext("Leads") == leads  # crm_lead's catalogue
                assert i18n.current_language() == code
                assert i18n.list_separator() == (", " if code == "en" else "、")  # "Website, WeChat" / 网站、微信


# -- (c) the web UI ------------------------------------------------------------------------------------
def page(client, path: str) -> str:
    response = client.get(path)
    assert response.status_code == 200, path
    return html.unescape(response.get_data(as_text=True))


def choose(client, language: str) -> None:
    response = client.post("/language", data={"language": language, "next": "/"})
    assert response.status_code == 302


EXPECTED = {
    # language: (<html lang>, strings on the home page, strings on the Apps page, strings that must not appear)
    "zh_CN": ("zh-CN", ["首页", "设置", "退出", "您的应用", "线索管理", "销售管理", "合同管理", "服务管理",
                        "市场营销", "移动应用", "ERP 对接"],
              ["应用", "已启用", "技术名称", "停用", "从各个渠道获取线索", "<h2>销售</h2>", "<h2>服务</h2>"],
              ["首頁", "設定", "登出", "Settings", "Sign out", "Your apps"]),
    "zh_TW": ("zh-TW", ["首頁", "設定", "登出", "您的應用程式", "線索管理", "銷售管理", "合約管理", "服務管理",
                        "行銷管理", "行動應用", "ERP 對接"],
              ["應用程式", "已啟用", "技術名稱", "停用", "從各個管道取得線索", "<h2>銷售</h2>", "<h2>服務</h2>"],
              ["首页", "设置", "退出", "Settings", "Sign out", "Your apps"]),
    "en": ("en", ["Home", "Settings", "Sign out", "Your apps", "Leads", "Sales", "Contracts", "Service",
                  "Marketing", "Mobile", "ERP bridge"],
           ["Apps", "Enabled", "Technical name", "Disable", "Capture leads from every channel", "<h2>Sales</h2>"],
           ["首页", "设置", "首頁", "設定"]),
}


def selected_language(text: str) -> list[str]:
    return re.findall(r'<option value="(\w+)"\s*selected', text)


@pytest.mark.parametrize("language", list(EXPECTED))
def test_home_and_apps_pages_in_each_language(mosaic_app_factory, language):
    app = mosaic_app_factory()
    client = app.test_client()
    app.login(client, "admin")
    choose(client, language)
    lang, home_strings, apps_strings, absent = EXPECTED[language]
    home = page(client, "/")
    apps = page(client, "/admin/apps")
    for text in (home, apps):
        assert f'<html lang="{lang}">' in text
        assert selected_language(text) == [language]  # the menu shows the language in use
    missing = [s for s in home_strings if s not in home] + [s for s in apps_strings if s not in apps]
    assert not missing, f"{language}: not shown: {missing}"
    leaked = [s for s in absent if s in home or s in apps]
    assert not leaked, f"{language}: shown although another language's: {leaked}"


def test_a_users_choice_survives_a_new_login(mosaic_app_factory, admin_password):
    app = mosaic_app_factory()
    first = app.test_client()
    app.login(first, "admin")
    choose(first, "zh_TW")
    assert "登出" in page(first, "/")
    with app.app_context():
        user = db.session.execute(select(User).where(User.username == "admin")).scalar_one()
        assert user.language == "zh_TW"
    # another browser (no session, an English Accept-Language): the account's choice wins once signed in
    second = app.test_client()
    second.environ_base["HTTP_ACCEPT_LANGUAGE"] = "en-US,en;q=0.9"
    assert "Sign in" in page(second, "/login")
    app.login(second, "admin")
    home = page(second, "/")
    assert "登出" in home and "設定" in home and "Sign out" not in home
    assert selected_language(home) == ["zh_TW"]
    # and a later choice replaces it
    choose(second, "zh_CN")
    third = app.test_client()
    app.login(third, "admin")
    assert "退出" in page(third, "/")


def test_a_chinese_instance_greets_anonymous_visitors_in_chinese(mosaic_app_factory):
    app = mosaic_app_factory(language="zh_CN")
    client = app.test_client()
    login = page(client, "/login")  # no Accept-Language header: the instance's language
    assert '<html lang="zh-CN">' in login
    assert "登录" in login and "用户名" in login and "密码" in login
    assert "Sign in" not in login
    wrong = client.post("/login", data={"username": "admin", "password": "nope"})
    assert "用户名或密码错误。" in wrong.get_data(as_text=True)


def test_a_browser_asking_for_traditional_chinese_gets_it(mosaic_app_factory):
    app = mosaic_app_factory()
    client = app.test_client()
    client.environ_base["HTTP_ACCEPT_LANGUAGE"] = "zh-TW,zh;q=0.9"
    login = page(client, "/login")
    assert '<html lang="zh-TW">' in login and "登入" in login and "使用者名稱" in login


def test_the_example_addon_speaks_chinese(mosaic_app_factory):
    app = mosaic_app_factory(addons=["example_notes"])
    client = app.test_client()
    app.login(client, "admin")
    choose(client, "zh_CN")
    assert "示例笔记" in page(client, "/")
    notes = page(client, "/notes/")
    assert "笔记对整个团队共享。" in notes
    choose(client, "zh_TW")
    assert "筆記會與整個團隊共享。" in page(client, "/notes/")


# -- (d) the command line ------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("language", "titles"),
    [("zh_CN", ["营销版", "销售版", "企业版"]), ("zh_TW", ["行銷版", "銷售版", "企業版"]),
     ("en", ["Marketing edition", "Sales edition", "Enterprise edition"])],
)
def test_the_cli_speaks_the_language_of_mosaic_lang(mosaic_cli, language, titles):
    out = mosaic_cli("editions", "list", env={"MOSAIC_LANG": language}, check=True).stdout
    assert all(title in out for title in titles), out


def test_the_cli_reports_errors_in_chinese(mosaic_cli, tmp_path):
    result = mosaic_cli("init", "--edition", "platinum", env={"MOSAIC_LANG": "zh_CN"}, instance=tmp_path / "x")
    assert result.returncode == 2
    assert "未知的版本“platinum”" in result.stderr
    unknown = mosaic_cli("i18n", "update", "--addon", "no_such_addon", env={"MOSAIC_LANG": "zh_TW"})
    assert unknown.returncode == 2 and "未知的外掛：no_such_addon" in unknown.stderr


# -- the tools, on a throw-away addon folder -----------------------------------------------------------
def test_extract_and_update_keep_translations(tmp_path):
    package = tmp_path / "my_addon"
    (package / "templates" / "my_addon").mkdir(parents=True)
    (package / "__init__.py").write_text(
        "from flask_babel import gettext as _, lazy_gettext as _l\n"
        "TITLE = _l('Pipeline')\n"
        "def hello(name):\n    return _('Hello %(name)s', name=name)\n",
        encoding="utf-8",
    )
    (package / "templates" / "my_addon" / "index.html").write_text("<h1>{{ _('Board') }}</h1>\n", encoding="utf-8")
    target = i18n_tools.Target("my_addon", package)

    count, written = i18n_tools.write_template(target)
    assert (count, written) == (3, True)
    assert i18n_tools.write_template(target) == (3, False)  # nothing new: the .pot is left alone
    for locale in i18n_tools.LOCALES:
        assert i18n_tools.update_catalogue(target, locale)[0] == "created"
    zh = i18n_tools.read_catalogue(target, "zh_CN")
    assert {m.id for m in zh if m.id} == {"Pipeline", "Hello %(name)s", "Board"}
    assert zh.num_plurals == 1
    assert "#, python-format" in target.po("zh_CN").read_text(encoding="utf-8")
    assert i18n_tools.missing_translations(target, "zh_CN") == ["Pipeline", "Hello %(name)s", "Board"]

    # translate, then add a message in the code: update keeps the translation and adds the new msgid
    text = target.po("zh_CN").read_text(encoding="utf-8")
    text = text.replace('msgid "Pipeline"\nmsgstr ""', 'msgid "Pipeline"\nmsgstr "销售管道"')
    target.po("zh_CN").write_text(text, encoding="utf-8")
    with (package / "__init__.py").open("a", encoding="utf-8") as fh:
        fh.write("NEW = _l('Forecast')\n")
    i18n_tools.write_template(target)
    assert i18n_tools.update_catalogue(target, "zh_CN")[0] == "updated"
    zh = i18n_tools.read_catalogue(target, "zh_CN")
    assert zh.get("Pipeline").string == "销售管道"
    assert zh.get("Forecast") is not None and zh.get("Forecast").string == ""
    assert "Forecast" in i18n_tools.missing_translations(target, "zh_CN")
    assert i18n_tools.update_catalogue(target, "zh_CN")[0] == "unchanged"
