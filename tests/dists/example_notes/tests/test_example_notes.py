"""The example addon's own tests, written with the harness Mosaic gives addon authors (core.testing)."""

from sqlalchemy import select

from core.extensions import db


def test_a_note_is_saved_and_listed(mosaic_app_factory):
    app = mosaic_app_factory(addons=["example_notes"])
    client = app.test_client()
    app.login(client, "admin")
    response = client.post("/notes/", data={"text": "call 王总 back"}, follow_redirects=True)
    assert response.status_code == 200
    assert "call 王总 back" in response.get_data(as_text=True)
    with app.app_context():
        from mosaic_example_notes.models import Note

        assert [n.text for n in db.session.execute(select(Note)).scalars()] == ["call 王总 back"]


def test_the_models_are_what_the_migrations_make(mosaic_app_factory):
    from core.testing import schema_differences

    app = mosaic_app_factory(addons=["example_notes"])
    with app.app_context(), db.engine.connect() as connection:
        assert "example_notes_note" in db.inspect(connection).get_table_names()
        assert schema_differences(connection) == []
