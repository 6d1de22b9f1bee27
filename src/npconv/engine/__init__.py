"""The machinery under :class:`npconv.Model`: its graph and running (``graph``, ``plan``), its training
loop (``training``, ``fit_guards``, ``data_checks``) and its ``summary`` table."""
