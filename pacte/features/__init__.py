"""The features behind the door: one module per concern, each a set of functions over
the session's primitives (`pacte.features.door.Door`).

`pacte.graph.session.Session` decides (admission, visibility under consent, field
gating, audit); every function here asks it, and binds as a `Session` method of the
same name, so users call `session.customer(...)`. A feature reaches the store, the
key vault and the trail only through those primitives (G10, checked by
`tests/test_g10_one_door.py`).
"""
