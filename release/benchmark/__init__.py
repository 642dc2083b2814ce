"""`make bench`: the service side by side with the floor of its HTTP stack and with the
classic load-per-request app, on this machine, in one run (ratios, not absolute speeds,
are what carries from one machine to another)."""
