"""The release tooling, in the order data flows through it: training (dataset -> bundle),
delivery (bundle -> image -> environment), gates (environment -> evidence), promotion
(evidence -> promotion), and the `sentiment` CLI over them all."""
