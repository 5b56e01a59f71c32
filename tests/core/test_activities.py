"""Activities: CRUD under visibility, comments, last_contacted_at, agenda, calendar, reminders."""

from __future__ import annotations

import json
import re
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import func, select

from core import accounts
from core.crm.activities import activity_reminders
from core.crm.models import Activity, ActivityComment, Contact, Customer, Department, RoleScope
from core.extensions import db
from core.models import Setting, User
from core.testing import ADMIN_PASSWORD
from core.timeutil import utcnow

SHANGHAI = ZoneInfo("Asia/Shanghai")


def _team(app):
    """A department with a manager (scope "department" on activities) and two reps (scope "own");
    each rep owns a customer with a contact. Returns ids."""
    with app.app_context():
        dept = Department(name="East sales", kind="department")
        db.session.add(dept)
        db.session.flush()
        dept.path = f"/{dept.id}/"
        manager_role = accounts.ensure_role("t_manager", "Manager")
        rep_role = accounts.ensure_role("t_rep", "Rep")
        db.session.add(RoleScope(role_id=manager_role.id, object="activity", scope="department"))
        users = {}
        for name, role, label in (("boss", manager_role, "Boss Wang"), ("rep1", rep_role, "Rep Li"),
                                  ("rep2", rep_role, "Rep Zhao")):
            user = accounts.ensure_user(name, ADMIN_PASSWORD, display_name=label, roles=[role])
            user.department_id = dept.id
            users[name] = user
        db.session.flush()
        ids = {name: user.id for name, user in users.items()}
        for rep in ("rep1", "rep2"):
            customer = Customer(name=f"{rep} Customer Ltd", owner_id=ids[rep])
            db.session.add(customer)
            db.session.flush()
            contact = Contact(customer_id=customer.id, name=f"{rep} Contact", owner_id=ids[rep])
            db.session.add(contact)
            db.session.flush()
            ids[f"{rep}_customer"] = customer.id
            ids[f"{rep}_contact"] = contact.id
        db.session.commit()
    return ids


def _client(app, username):
    client = app.test_client()
    assert app.login(client, username).status_code == 302
    return client


def _activity(app, owner_id, subject, **kwargs):
    with app.app_context():
        activity = Activity(kind=kwargs.pop("kind", "call"), subject=subject, owner_id=owner_id, **kwargs)
        db.session.add(activity)
        db.session.commit()
        return activity.id


def test_create_view_edit_and_visibility(mosaic_app_factory):
    app = mosaic_app_factory(edition="sales")
    ids = _team(app)
    rep1, rep2, boss = _client(app, "rep1"), _client(app, "rep2"), _client(app, "boss")

    form = rep1.get(f"/activities/new?customer_id={ids['rep1_customer']}&contact_id={ids['rep1_contact']}")
    assert form.status_code == 200 and "rep1 Customer Ltd" in form.get_data(as_text=True)
    response = rep1.post(
        f"/activities/new?customer_id={ids['rep1_customer']}",
        data={"kind": "visit", "subject": "Visit the plant", "status": "planned", "due_at": "2030-05-06T09:30",
              "customer_id": str(ids["rep1_customer"]), "contact_id": str(ids["rep1_contact"]),
              "notes": "Bring samples"},
    )
    assert response.status_code == 302
    with app.app_context():
        activity = db.session.execute(select(Activity).where(Activity.subject == "Visit the plant")).scalar_one()
        assert (activity.owner_id, activity.customer_id, activity.contact_id) == (
            ids["rep1"], ids["rep1_customer"], ids["rep1_contact"])
        assert activity.due_at == datetime(2030, 5, 6, 9, 30)  # BABEL_DEFAULT_TIMEZONE is UTC here
        activity_id = activity.id
    page = rep1.get(f"/activities/{activity_id}").get_data(as_text=True)
    assert "Visit the plant" in page and "Bring samples" in page and "rep1 Customer Ltd" in page

    # a colleague with scope "own" can neither see, edit, complete nor comment it
    assert rep2.get(f"/activities/{activity_id}").status_code == 404
    assert rep2.get(f"/activities/{activity_id}/edit").status_code == 404
    assert rep2.post(f"/activities/{activity_id}/edit", data={"kind": "note", "subject": "x"}).status_code == 404
    assert rep2.post(f"/activities/{activity_id}/done").status_code == 404
    assert rep2.post(f"/activities/{activity_id}/comments", data={"body": "hijack"}).status_code == 404
    assert "Visit the plant" not in rep2.get("/activities/").get_data(as_text=True)
    # a forged customer or contact id of a colleague answers 404 and creates nothing
    assert rep2.get(f"/activities/new?customer_id={ids['rep1_customer']}").status_code == 404
    forged = rep2.post("/activities/new", data={"kind": "call", "subject": "Forged", "status": "done",
                                                "customer_id": str(ids["rep1_customer"])})
    assert forged.status_code == 404
    assert rep2.post("/activities/new", data={"kind": "call", "subject": "Forged", "status": "done",
                                              "contact_id": str(ids["rep1_contact"])}).status_code == 404
    # a contact of another customer than the one given is refused too
    assert rep1.post("/activities/new", data={
        "kind": "call", "subject": "Forged", "status": "done", "customer_id": str(ids["rep1_customer"]),
        "contact_id": str(ids["rep2_contact"])}).status_code == 404
    with app.app_context():
        assert db.session.execute(select(func.count()).where(Activity.subject == "Forged")).scalar() == 0
        rep2_activity = db.session.execute(select(Activity).where(Activity.id == activity_id)).scalar_one()
        assert rep2_activity.status == "planned" and not rep2_activity.comments

    # the manager sees the team's activity, comments on the visit report; the rep sees the comment
    assert "Visit the plant" in boss.get("/activities/").get_data(as_text=True)
    assert boss.post(f"/activities/{activity_id}/comments", data={"body": "Ask about the Q3 order"}).status_code == 302
    page = rep1.get(f"/activities/{activity_id}").get_data(as_text=True)
    assert "Ask about the Q3 order" in page and "Boss Wang" in page
    empty = rep1.post(f"/activities/{activity_id}/comments", data={"body": "   "})
    assert empty.status_code == 400 and "Write a comment first." in empty.get_data(as_text=True)
    with app.app_context():
        assert db.session.execute(select(func.count()).select_from(ActivityComment)).scalar() == 1

    # editing
    edit = rep1.post(f"/activities/{activity_id}/edit", data={
        "kind": "visit", "subject": "Visit the new plant", "status": "planned", "due_at": "2030-05-07T10:00"})
    assert edit.status_code == 302
    bad = rep1.post(f"/activities/{activity_id}/edit", data={"kind": "visit", "subject": "", "status": "planned"})
    text = bad.get_data(as_text=True)
    assert bad.status_code == 200 and "This field is required." in text
    assert "A planned activity needs a due date and time." in text
    with app.app_context():
        activity = db.session.get(Activity, activity_id)
        assert activity.subject == "Visit the new plant" and activity.due_at == datetime(2030, 5, 7, 10, 0)


def test_bad_input_creates_nothing(mosaic_app_factory):
    app = mosaic_app_factory(edition="sales")
    ids = _team(app)
    rep1 = _client(app, "rep1")
    cases = [
        ({"kind": "dance", "subject": "x", "status": "done"}, "Not a valid choice"),
        ({"kind": "call", "subject": "x", "status": "planned"}, "A planned activity needs a due date and time."),
        ({"kind": "call", "subject": "x", "status": "done", "related_object": "Bad Object!", "related_id": "1"},
         "Invalid related record."),
        ({"kind": "call", "subject": "x", "status": "done", "related_object": "crm_sales.opportunity"},
         "Invalid related record."),
        ({"kind": "call", "subject": "x", "status": "planned", "due_at": "tomorrow"}, "Not a valid datetime value."),
    ]
    for data, message in cases:
        response = rep1.post("/activities/new", data=data)
        assert response.status_code == 200 and message in response.get_data(as_text=True), data
    # a record of an addon that no enabled addon vouches for (resolve_record) is refused like a hidden one
    response = rep1.post("/activities/new", data={
        "kind": "call", "subject": "About the opportunity", "status": "done",
        "related_object": "crm_sales.opportunity", "related_id": "42"})
    assert response.status_code == 404
    for related_id in ("99999999999", "9" * 30):  # beyond any id: no such record, not a server error
        response = rep1.post("/activities/new", data={
            "kind": "call", "subject": "x", "status": "done", "related_object": "crm_sales.opportunity",
            "related_id": related_id})
        assert response.status_code in (200, 404), related_id
    with app.app_context():
        assert db.session.execute(select(Activity)).scalars().all() == []
    assert ids["rep1"]


def test_marking_done_updates_last_contacted_at(mosaic_app_factory):
    app = mosaic_app_factory(edition="sales")
    ids = _team(app)
    rep1 = _client(app, "rep1")
    call = _activity(app, ids["rep1"], "Call back", customer_id=ids["rep1_customer"],
                     due_at=utcnow() - timedelta(hours=1))
    task = _activity(app, ids["rep1"], "Prepare offer", kind="task", customer_id=ids["rep1_customer"],
                     due_at=utcnow())
    with app.app_context():
        assert db.session.get(Customer, ids["rep1_customer"]).last_contacted_at is None
    # a task is not a contact with the customer
    assert rep1.post(f"/activities/{task}/done").status_code == 302
    with app.app_context():
        assert db.session.get(Activity, task).status == "done"
        assert db.session.get(Customer, ids["rep1_customer"]).last_contacted_at is None
    before = utcnow()
    assert rep1.post(f"/activities/{call}/done", data={"next": "/agenda"}).location.endswith("/agenda")
    with app.app_context():
        activity = db.session.get(Activity, call)
        customer = db.session.get(Customer, ids["rep1_customer"])
        assert activity.status == "done" and activity.done_at >= before.replace(microsecond=0) - timedelta(seconds=1)
        assert customer.last_contacted_at == activity.done_at
        # a later contact recorded elsewhere is not overwritten by an older one
        later = utcnow() + timedelta(days=3)
        customer.last_contacted_at = later
        db.session.commit()
    again = rep1.post(f"/activities/{call}/done", follow_redirects=True)
    assert "not planned any more" in again.get_data(as_text=True)
    logged = rep1.post("/activities/new", data={
        "kind": "email", "subject": "Sent the brochure", "status": "done", "done_at": "2020-01-01T08:00",
        "customer_id": str(ids["rep1_customer"])})
    assert logged.status_code == 302
    with app.app_context():
        assert db.session.get(Customer, ids["rep1_customer"]).last_contacted_at == later
    newer = rep1.post("/activities/new", data={
        "kind": "sms", "subject": "Texted", "status": "done", "done_at": "2099-01-01T08:00",
        "customer_id": str(ids["rep1_customer"])})
    assert newer.status_code == 302
    with app.app_context():
        assert db.session.get(Customer, ids["rep1_customer"]).last_contacted_at == datetime(2099, 1, 1, 8, 0)
        assert db.session.get(Customer, ids["rep2_customer"]).last_contacted_at is None


def test_list_filters_and_paging(mosaic_app_factory):
    app = mosaic_app_factory(edition="sales")
    ids = _team(app)
    now = utcnow()
    with app.app_context():
        for i in range(55):
            db.session.add(Activity(kind="task", subject=f"Bulk {i:02d}", owner_id=ids["rep1"],
                                    due_at=now + timedelta(days=30)))
        db.session.commit()
    _activity(app, ids["rep1"], "Late call", due_at=now - timedelta(days=2))
    _activity(app, ids["rep1"], "Finished call", status="done", done_at=now)
    _activity(app, ids["boss"], "Boss call", due_at=now + timedelta(days=1))
    rep1, boss = _client(app, "rep1"), _client(app, "boss")

    first = rep1.get("/activities/").get_data(as_text=True)
    assert len(re.findall(r'<tr class="status-', first)) == 50
    next_url = re.search(r'href="([^"]+)" id="next-page"', first).group(1).replace("&amp;", "&")
    second = rep1.get(next_url).get_data(as_text=True)
    assert len(re.findall(r'<tr class="status-', second)) == 7
    assert 'id="next-page"' not in second
    assert "Bulk 00" in second and "Bulk 00" not in first and "Boss call" not in first + second

    overdue = rep1.get("/activities/?show=overdue").get_data(as_text=True)
    assert "Late call" in overdue and "Bulk" not in overdue and "Finished call" not in overdue
    done = rep1.get("/activities/?show=done").get_data(as_text=True)
    assert "Finished call" in done and "Late call" not in done
    # the manager sees the team's activities, "only mine" narrows to his own
    team = boss.get("/activities/?show=overdue").get_data(as_text=True)
    assert "Late call" in team
    mine = boss.get("/activities/?show=planned&mine=1").get_data(as_text=True)
    assert "Boss call" in mine and "Late call" not in mine and "Bulk" not in mine


def _local(day: date, hour: int, minute: int = 0) -> datetime:
    """A local Shanghai wall-clock time as the naive UTC value stored in the database."""
    return datetime.combine(day, time(hour, minute), SHANGHAI).astimezone(ZoneInfo("UTC")).replace(tzinfo=None)


def test_agenda_sections_in_the_users_time_zone(mosaic_app_factory):
    app = mosaic_app_factory(edition="sales", config={"BABEL_DEFAULT_TIMEZONE": "Asia/Shanghai"})
    ids = _team(app)
    today = datetime.now(SHANGHAI).date()
    _activity(app, ids["rep1"], "Overdue visit", kind="visit", due_at=_local(today - timedelta(days=1), 23, 59))
    _activity(app, ids["rep1"], "Early today", due_at=_local(today, 0, 1))
    _activity(app, ids["rep1"], "Late today", due_at=_local(today, 23, 59))
    _activity(app, ids["rep1"], "In a week", due_at=_local(today + timedelta(days=7), 23, 0))
    _activity(app, ids["rep1"], "Too far", due_at=_local(today + timedelta(days=8), 0, 0))
    _activity(app, ids["rep1"], "Already done", status="done", due_at=_local(today, 10))
    _activity(app, ids["rep2"], "Colleague's", due_at=_local(today, 10))
    page = _client(app, "rep1").get("/agenda").get_data(as_text=True)

    def section(key):
        return re.search(rf'id="agenda-{key}">(.*?)</section>', page, re.S).group(1)

    assert "Overdue visit" in section("overdue") and "Early today" not in section("overdue")
    assert "Early today" in section("today") and "Late today" in section("today")
    assert "In a week" in section("week") and "Late today" not in section("week")
    for absent in ("Too far", "Already done", "Colleague's"):
        assert absent not in page


def test_calendar_day_week_month_boundaries(mosaic_app_factory):
    app = mosaic_app_factory(edition="sales", config={"BABEL_DEFAULT_TIMEZONE": "Asia/Shanghai"})
    ids = _team(app)
    # 2024-02-26 is a Monday; February 2024 has 29 days; its grid runs from Mon 29 Jan to Sun 3 Mar
    _activity(app, ids["rep1"], "Sunday night", due_at=_local(date(2024, 2, 25), 23, 30))
    _activity(app, ids["rep1"], "Monday early", due_at=_local(date(2024, 2, 26), 0, 30))  # 25 Feb in UTC
    _activity(app, ids["rep1"], "Leap day", due_at=_local(date(2024, 2, 29), 14, 0))
    _activity(app, ids["rep1"], "Grid end", due_at=_local(date(2024, 3, 3), 23, 0))
    _activity(app, ids["rep1"], "After grid", due_at=_local(date(2024, 3, 4), 8, 0))
    _activity(app, ids["rep1"], "Grid start", due_at=_local(date(2024, 1, 29), 8, 0))
    _activity(app, ids["rep1"], "Done one", status="done", due_at=_local(date(2024, 2, 27), 8, 0))
    _activity(app, ids["rep2"], "Colleague visit", kind="visit", due_at=_local(date(2024, 2, 27), 9, 0))
    rep1, boss = _client(app, "rep1"), _client(app, "boss")

    def cell(page, day):
        match = re.search(rf'data-date="{day}">(.*?)</td>', page, re.S)
        return match.group(1) if match else None

    week = rep1.get("/calendar?view=week&date=2024-02-29").get_data(as_text=True)
    assert "Monday early" in cell(week, "2024-02-26") and "Leap day" in cell(week, "2024-02-29")
    assert "Sunday night" not in week and "Grid end" in cell(week, "2024-03-03")
    assert "Done one" not in week and "Colleague visit" not in week
    assert "view=week&amp;date=2024-02-22" in week and "view=week&amp;date=2024-03-07" in week

    month = rep1.get("/calendar?view=month&date=2024-02-10").get_data(as_text=True)
    assert cell(month, "2024-01-28") is None and cell(month, "2024-03-04") is None
    assert "Grid start" in cell(month, "2024-01-29") and "Grid end" in cell(month, "2024-03-03")
    assert "Sunday night" in cell(month, "2024-02-25") and "After grid" not in month
    assert "view=month&amp;date=2024-01-01" in month and "view=month&amp;date=2024-03-01" in month

    day = rep1.get("/calendar?view=day&date=2024-02-26").get_data(as_text=True)
    assert "Monday early" in day and "Sunday night" not in day and "Leap day" not in day
    assert "date=2024-02-25" in day and "date=2024-02-27" in day

    # the manager sees the team's planned activities through visibility, with the owner's name
    team = boss.get("/calendar?view=week&date=2024-02-26").get_data(as_text=True)
    assert "Colleague visit" in cell(team, "2024-02-27") and "Rep Zhao" in team and "Monday early" in team

    bad = rep1.get("/calendar?view=year&date=2024-13-45").get_data(as_text=True)
    assert "is not a date (use YYYY-MM-DD)" in bad and "Unknown calendar view" in bad


def test_reminder_job_and_badge(mosaic_app_factory):
    app = mosaic_app_factory(edition="sales")
    ids = _team(app)
    now = utcnow()
    _activity(app, ids["rep1"], "Due soon", due_at=now + timedelta(minutes=10))
    _activity(app, ids["rep1"], "Due later", due_at=now + timedelta(hours=2))
    _activity(app, ids["rep1"], "Late 1", due_at=now - timedelta(days=1))
    _activity(app, ids["rep1"], "Late 2", due_at=now - timedelta(minutes=5))
    _activity(app, ids["rep1"], "Late but done", status="done", due_at=now - timedelta(days=1))
    late = _activity(app, ids["rep2"], "Rep2 late", due_at=now - timedelta(hours=3))
    with app.app_context():
        db.session.add(Setting(key="reminders.999999", value="{}"))  # a stale key of a user with nothing due
        db.session.commit()
        for _ in range(2):  # idempotent
            activity_reminders()
            stored = {k: json.loads(v) for k, v in db.session.execute(
                select(Setting.key, Setting.value).where(Setting.key.like("reminders.%"))).all()}
            assert set(stored) == {f"reminders.{ids['rep1']}", f"reminders.{ids['rep2']}"}
            assert {k: (v["due"], v["overdue"]) for k, v in stored.items()} == {
                f"reminders.{ids['rep1']}": (1, 2), f"reminders.{ids['rep2']}": (0, 1)}
            assert stored[f"reminders.{ids['rep1']}"]["at"].endswith("Z")
        user_ids = db.session.execute(select(User.id)).scalars().all()
        assert ids["boss"] in user_ids

    page = _client(app, "rep1").get("/agenda").get_data(as_text=True)
    badge = re.search(r'id="activity-reminders".*?</a>', page, re.S).group(0)
    assert "1 due" in badge and "2 overdue" in badge
    rep2 = _client(app, "rep2")
    assert "1 overdue" in rep2.get("/activities/").get_data(as_text=True)
    assert rep2.post(f"/activities/{late}/done").status_code == 302
    assert 'id="activity-reminders"' not in rep2.get("/activities/").get_data(as_text=True)
    with app.app_context():
        activity_reminders()
        assert Setting.get(f"reminders.{ids['rep2']}") is None
        assert json.loads(Setting.get(f"reminders.{ids['rep1']}"))["overdue"] == 2


def test_customer_panel_and_menu(mosaic_app_factory):
    app = mosaic_app_factory(edition="sales")
    ids = _team(app)
    _activity(app, ids["rep1"], "Panel call", customer_id=ids["rep1_customer"], status="done", done_at=utcnow())
    _activity(app, ids["rep2"], "Hidden call", customer_id=ids["rep1_customer"], status="done", done_at=utcnow())
    with app.test_request_context():
        from flask_login import login_user

        from core.crm.activities import register_customer_panels

        user = db.session.get(User, ids["rep1"])
        login_user(user)
        panel = register_customer_panels()[0]
        html = str(panel.render(db.session.get(Customer, ids["rep1_customer"]), user))
        assert "Panel call" in html and "Hidden call" not in html
    home = _client(app, "rep1").get("/").get_data(as_text=True)
    for endpoint in ("crm_activities.activity_list", "crm_activities.agenda", "crm_activities.calendar"):
        assert f'data-endpoint="{endpoint}"' in home


class _OpportunityAddon:
    """A stand-in addon that owns the object "test_sales.opportunity": record 7 exists, 8 is hidden."""

    from core.hookspecs import hookimpl as _hookimpl

    @staticmethod
    @_hookimpl
    def resolve_record(object_name, record_id, user):
        from core.registry import RecordRef

        if object_name == "test_sales.opportunity" and record_id == 7:
            return RecordRef(label="商机 #7 新厂房项目", url="/test_sales/opportunities/7")
        return None


def test_activities_on_an_addons_record_resolve_through_the_hook(mosaic_app_factory):
    app = mosaic_app_factory(edition="sales")
    app.extensions["mosaic"].pm.register(_OpportunityAddon, name="test_sales")
    client = app.test_client()
    app.login(client, "admin")
    form = {"kind": "call", "subject": "谈判", "status": "done",
            "related_object": "test_sales.opportunity", "related_id": "7"}
    created = client.post("/activities/new", data=form)
    assert created.status_code == 302, created.get_data(as_text=True)[:2000]
    page = client.get(created.location).get_data(as_text=True)
    assert "商机 #7 新厂房项目" in page and 'href="/test_sales/opportunities/7"' in page
    for hidden in ({**form, "related_id": "8"}, {**form, "related_object": "nobody.thing"}):
        assert client.post("/activities/new", data=hidden).status_code == 404
    with app.app_context():
        rows = db.session.execute(select(Activity.related_object, Activity.related_id)).all()
        assert rows == [("test_sales.opportunity", 7)]
