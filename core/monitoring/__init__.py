"""Monitoring: JSON log lines and the Prometheus exporter."""
from core.monitoring.logs import configure_logging
from core.monitoring.prometheus import WorkbenchCollector, metrics_port, start_exporter

__all__ = ["configure_logging", "WorkbenchCollector", "metrics_port", "start_exporter"]
