"""The Kubernetes scheduler extender (``accelplan extender``): kube-scheduler's HTTP/JSON webhook over RankNodes."""
