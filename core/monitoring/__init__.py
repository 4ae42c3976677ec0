"""Monitoring: JSON log lines, latency series and the Prometheus exporter."""
from core.monitoring.latency import LatencySeries, percentile
from core.monitoring.logs import configure_logging
from core.monitoring.prometheus import WorkbenchCollector, metrics_port, start_exporter

__all__ = ["LatencySeries", "percentile", "configure_logging", "WorkbenchCollector", "metrics_port", "start_exporter"]
