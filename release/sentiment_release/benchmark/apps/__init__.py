"""The reference apps the service is measured against, one module each: what a server's
processes import is part of what it measures (start to ready, memory), so each imports
only what it needs.

wsgi_floor: a constant answer from a plain WSGI function (the standard library only).
flask_floor: the same constant answer from Flask.
lecture: the lecture's way, `joblib.load` of the model on every request under Flask's
    development server; what this project exists to improve on.
"""
