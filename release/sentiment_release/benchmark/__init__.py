"""`make bench`: the service side by side with the floors of its HTTP stack (a bare WSGI
app and a Flask app answering a constant, under plain gunicorn with the service's worker
settings) and with the lecture's load-per-request app, on this machine, in one run
(ratios, not absolute speeds, are what carries from one machine to another)."""
