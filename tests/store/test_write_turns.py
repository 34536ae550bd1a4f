"""SQLite writers of one process take turns on a lock of their own (store.write_turns): many
threads writing at once all get in, none fails with "database is locked", and a transaction
that rolls back gives its turn back."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest
from sqlalchemy import text

from speakerfeed.store.engine import engine_for_url


def test_threads_writing_at_once_all_get_their_turn(tmp_path: Path) -> None:
    engine = engine_for_url(f"sqlite:///{tmp_path / 'turns.sqlite3'}")
    with engine.begin() as conn:
        conn.execute(text("CREATE TABLE signups (email TEXT PRIMARY KEY)"))
    failures: list[BaseException] = []

    def sign_up(worker: int) -> None:
        try:
            for number in range(25):
                with engine.begin() as conn:
                    conn.execute(text("SELECT count(*) FROM signups")).scalar_one()
                    conn.execute(
                        text("INSERT INTO signups VALUES (:email)"),
                        {"email": f"reader{worker}-{number}@example.org"},
                    )
                    time.sleep(0.001)  # the write lock held a while, as a batch holds it
        except BaseException as exc:  # reported by the assertion below
            failures.append(exc)

    threads = [threading.Thread(target=sign_up, args=(n,)) for n in range(12)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert failures == []
    with engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM signups")).scalar_one() == 12 * 25
    engine.dispose()


def test_a_rolled_back_write_gives_its_turn_back(tmp_path: Path) -> None:
    engine = engine_for_url(f"sqlite:///{tmp_path / 'turns.sqlite3'}")
    with engine.begin() as conn:
        conn.execute(text("CREATE TABLE signups (email TEXT PRIMARY KEY)"))

    def failing_signup() -> None:
        with engine.begin() as conn:
            conn.execute(text("INSERT INTO signups VALUES ('first@example.org')"))
            raise RuntimeError("the request failed half way")

    with pytest.raises(RuntimeError, match="half way"):
        failing_signup()
    writer_done = threading.Event()

    def write_from_another_thread() -> None:
        with engine.begin() as conn:
            conn.execute(text("INSERT INTO signups VALUES ('second@example.org')"))
        writer_done.set()

    started = time.monotonic()
    threading.Thread(target=write_from_another_thread).start()
    assert writer_done.wait(10)
    assert time.monotonic() - started < 2  # not after the 5 s a lost turn would wait
    with engine.connect() as conn:
        emails = conn.execute(text("SELECT email FROM signups")).scalars().all()
    assert emails == ["second@example.org"]
    engine.dispose()
