"""Operations beside every layer, importing nothing of the service above them: settings, JSON
logs, Prometheus metrics, readiness, the SIGTERM drain, the container health check, memory,
the CPU level of the image's kernel cache."""
