"""What runs beside the web app in `speakerfeed serve`: the scheduler (in one process only),
the send loop (in every process), the articles watcher and the rebuilds.

- Leadership: every ``schedule.leader_check_seconds`` the process tries to become (or stay)
  the scheduler's host (store.leader); the one that is runs APScheduler, the others do not.
- The send loop works on every send in state "sending", batch by batch through the ledger, so
  several processes (on several machines, with PostgreSQL) share a send.
- Embargo: after every build the scheduler's ``embargo`` job is planned for the moment the next
  future-dated article becomes visible (schedule.plan_embargo), so it appears then, not at the
  next refresh.
- Stopping (SIGTERM or Ctrl+C, through the app's lifespan): the scheduler stops, the send loop
  finishes the batch in hand and records it, the role is released; a restart carries on.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from apscheduler.schedulers.background import BackgroundScheduler
from sqlalchemy import Engine

from speakerfeed import schedule
from speakerfeed.actions import welcomes
from speakerfeed.config import Settings
from speakerfeed.digest import deliver as dispatch
from speakerfeed.feeds.build import Builder
from speakerfeed.feeds.websub import notify_hub
from speakerfeed.render.feeds import FORMATS
from speakerfeed.sources.collect import Clock, system_clock
from speakerfeed.store.engine import check_connection
from speakerfeed.store.leader import Leadership
from speakerfeed.store.sends import active_send_ids
from speakerfeed.transports.base import Transport
from speakerfeed.wording import counted

log = logging.getLogger("speakerfeed.service")


class Service:
    def __init__(
        self,
        settings: Settings,
        engine: Engine,
        secret: bytes,
        transport: Callable[[], Transport],
        *,
        scheduling: bool = True,
        watching: bool | None = None,
        clock: Clock = system_clock,
    ) -> None:
        self.settings, self.engine, self.secret, self.transport = (
            settings,
            engine,
            secret,
            transport,
        )
        self.scheduling = scheduling
        self.watching = settings.schedule.watch_articles if watching is None else watching
        self.stopping = threading.Event()
        self._wake = threading.Event()
        self._build_lock = threading.Lock()
        self.clock = clock
        self._builder = Builder(settings, clock=clock)
        # The end of the soonest embargo the last build found; None when nothing is embargoed
        # (or nothing was built yet: then a planned job from the store is left as it is).
        self.next_embargo: datetime | None = None
        self._built = False
        self._threads: list[threading.Thread] = []
        self.scheduler: BackgroundScheduler | None = None
        ttl = timedelta(seconds=max(30.0, settings.schedule.leader_check_seconds * 3))
        self.leadership = Leadership(engine, "scheduler", dispatch.worker_name(), ttl=ttl)
        self.last_build: dict[str, Any] = {}

    # ------------------------------------------------------------------------------ lifecycle

    def start(self) -> None:
        schedule.install(
            schedule.JobContext(
                self.settings,
                self.engine,
                refresh=self.rebuild,
                wake_senders=self._wake.set,
                send_owed_welcomes=self.send_owed_welcomes,
            )
        )
        loops: list[tuple[str, Callable[[], None]]] = [("send-loop", self._send_loop)]
        if self.scheduling:
            loops.append(("leader-loop", self._leader_loop))
        if self.watching:
            loops.append(("articles-watcher", self._watch_articles))
        for name, target in loops:
            thread = threading.Thread(target=target, name=name, daemon=True)
            thread.start()
            self._threads.append(thread)
        log.info("service started: %s", ", ".join(name for name, _ in loops))

    def stop(self) -> None:
        """Stop the scheduler, let the send loop finish its batch, give up the scheduler role."""
        self.stopping.set()
        self._wake.set()
        if self.scheduler is not None:
            self.scheduler.shutdown(wait=True)
            self.scheduler = None
        for thread in self._threads:
            thread.join(timeout=120)
        self.leadership.release()
        log.info("service stopped")

    # ------------------------------------------------------------------------------ the jobs

    def rebuild(self) -> None:
        """Refresh the sources and rebuild the feeds; tell the WebSub hub what changed."""
        with self._build_lock:
            report = self._builder.build()
            self.next_embargo, self._built = _ending(report.next_embargo), True
            self._plan_embargo()
        self.last_build = {
            "at": self.clock().isoformat(timespec="seconds"),
            "articles": report.articles,
            "written": len(report.written),
            "problems": len(report.problems),
            "embargoed": len(report.embargoed),
            "next_embargo": (
                self.next_embargo.astimezone(UTC).isoformat() if self.next_embargo else None
            ),
        }
        # speakerfeed.feeds.build logs the build's summary; its problems are logged one by one.
        for problem in report.problems:
            log.warning("build problem: %s", problem)
        changed = self._changed_feeds(report.written)
        if changed and self.settings.feeds.websub_hub:
            notify_hub(self.settings.feeds.websub_hub, changed)

    def send_owed_welcomes(self) -> None:
        """The welcome emails left owed by a failed try, through this service's transport."""
        welcomes.send_owed_welcomes(self.engine, self.settings, self.secret, self.transport)

    def _plan_embargo(self) -> None:
        """The scheduler's embargo job at the next embargo's end, when this process runs the
        scheduler and has built (the leader re-plans when it takes over)."""
        scheduler = self.scheduler
        if scheduler is None or not self._built:
            return
        try:
            schedule.plan_embargo(scheduler, self.next_embargo)
        except Exception:  # the scheduler stopped meanwhile, or the database is away
            log.exception("planning the next embargo's rebuild failed")

    def _changed_feeds(self, written: list[str]) -> list[str]:
        names = {fmt.filename for fmt in FORMATS.values()}
        base = self.settings.feeds.base_url
        return [base + path for path in written if path.rsplit("/", 1)[-1] in names]

    def _leader_loop(self) -> None:
        every = self.settings.schedule.leader_check_seconds
        while not self.stopping.is_set():
            try:
                leading = self.leadership.try_acquire()
            except Exception:  # the database is away: not leading, try again later
                log.exception("scheduler election failed")
                leading = False
            if leading and self.scheduler is None:
                log.info("this process runs the scheduler")
                self.scheduler = schedule.make_scheduler(self.settings, self.engine)
                # Not under the build lock: waiting for a long build must not cost the role.
                self._plan_embargo()
            elif not leading and self.scheduler is not None:
                log.warning("this process lost the scheduler role")
                self.scheduler.shutdown(wait=False)
                self.scheduler = None
            self.stopping.wait(every)

    def _send_loop(self) -> None:
        while not self.stopping.is_set():
            try:
                for send_id in active_send_ids(self.engine):
                    if self.stopping.is_set():
                        break
                    report = dispatch.run_send(
                        self.engine,
                        self.settings,
                        send_id,
                        self.transport(),
                        secret=self.secret,
                        should_stop=self.stopping.is_set,
                        # Never forked from here: a fork copies the web app's and scheduler's
                        # threads' locks as they stand. More senders: `speakerfeed worker`.
                        processes=1,
                    )
                    log.info("send %s", report.summary())
            except Exception:  # keep serving; the send is resumed on the next round
                log.exception("send loop error")
            self._wake.wait(self.settings.schedule.send_poll_seconds)
            self._wake.clear()

    def _watch_articles(self) -> None:
        from watchfiles import watch

        folder = self.settings.articles_dir
        folder.mkdir(parents=True, exist_ok=True)
        for changes in watch(folder, stop_event=self.stopping, debounce=400, rust_timeout=1000):
            log.info("articles changed (%s): rebuilding", counted(len(changes), "file"))
            try:
                self.rebuild()
            except Exception:
                log.exception("rebuild after a change failed")

    # ------------------------------------------------------------------------------- health

    def health(self) -> dict[str, Any]:
        try:
            check_connection(self.engine)
            database = "ok"
        except Exception as exc:
            database = f"error: {type(exc).__name__}"
        role = "leader" if self.scheduler is not None else "follower"
        return {
            "status": "ok" if database == "ok" else "degraded",
            "database": database,
            "scheduler": role if self.scheduling else "off",
            "last_build": self.last_build or None,
        }


def _ending(embargo: datetime | None) -> datetime | None:
    """The embargo's end, or None when it never ends: a date past year 9999 in UTC (an article
    dated 9999-12-31 west of UTC), which the status and the scheduler could not hold."""
    try:
        return None if embargo is None else embargo.astimezone(UTC)
    except OverflowError:
        return None
