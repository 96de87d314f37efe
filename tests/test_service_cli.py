"""`compliance users ...` and the service commands' wiring."""

from __future__ import annotations

from typer.testing import CliRunner

from compliance.cli import app


def test_users_create_token_list_and_the_token_works(tmp_path, monkeypatch):
    from sqlmodel import Session

    from compliance import store
    from compliance.service.auth import user_for_token

    db = f"sqlite:///{tmp_path / 'cli.db'}"
    runner = CliRunner()
    r = runner.invoke(app, ["users", "create", "olga", "--role", "officer", "--token", "--db", db])
    assert r.exit_code == 0, r.output
    token = r.stdout.strip().splitlines()[-1]
    assert token.startswith("cpl_")
    r = runner.invoke(app, ["users", "create", "ann", "--role", "agent", "--agent-id", "A9", "--password-stdin",
                            "--db", db], input="a-long-password\n")
    assert r.exit_code == 0, r.output
    again = runner.invoke(app, ["users", "token", "olga", "--db", db])
    assert again.exit_code == 0 and again.stdout.strip() != token
    listing = runner.invoke(app, ["users", "list", "--db", db]).stdout
    assert "olga\tofficer" in listing and "ann\tagent\tA9" in listing
    with Session(store.make_engine(db)) as session:
        user, _ = user_for_token(session, token)
        assert user.username == "olga"
        from compliance.service.auth import check_password

        assert check_password(session, "ann", "a-long-password").agent_id == "A9"
    bad = runner.invoke(app, ["users", "create", "x", "--role", "boss", "--db", db])
    assert bad.exit_code != 0
    assert "unknown role" in str(bad.exception) + bad.output


def test_service_commands_are_registered():
    r = CliRunner().invoke(app, ["--help"])
    assert all(cmd in r.stdout for cmd in ("serve", "worker", "users"))
    r = CliRunner().invoke(app, ["worker", "--help"])
    assert "--celery" in r.stdout
