"""What an editor can do, one typed function each: the operations behind the `speakerfeed`
command.

Each takes the settings, a ``Store`` (``database``) where it needs the database, and the
command's inputs, and returns a typed result; whatever a user can get wrong is raised as a
``speakerfeed.errors.SpeakerfeedError``. Nothing here parses arguments, prints or exits: that is
the CLI's part.

- ``database``: the store an action works on (``open_store``), `db upgrade`, and what `serve`
  and `worker` set up before they start
- ``site``: build the feeds, check the articles
- ``subscribers``: add, remove, import, export, count, show, erase
- ``digests``: preview and lint a list's next digest; a send's dry run and test copy
- ``sends``: send now, list the sends, show one, resume one
- ``schedules``: the digest jobs and their next runs; pause and resume a list's
"""
