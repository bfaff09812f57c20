"""Running it: Prometheus metrics (``metrics``) and garbage-collector pacing (``gcpacer``)."""
