"""What the front ends (Streamlit pages, REST API, CLI, load tests) stand on: the Workbench, rate limits, lattice
sources, the demo."""
from core.store.retention import RetentionPolicy
from core.service.demo import DEMO_DIR, DEMO_NAME, ensure_demo, load_demo_lattice, load_demo_records
from core.service.search import search, target_time
from core.service.rate_limits import Limiter, RateLimits, RateStore
from core.service.snapshot_scheduler import (RunReport, SnapshotSchedule, SnapshotScheduler, parse_every,
                                             scheduled_snapshot_status, scheduled_snapshots, snapshot_folder,
                                             snapshot_status_source, start_scheduled_snapshots)
from core.service.sources import DemoFileSource, LatticeSource, LatticeView, StoreSource, gem_titles
from core.service.workbench import StoreSink, Workbench

__all__ = ["DEMO_DIR", "DEMO_NAME", "ensure_demo", "load_demo_lattice", "load_demo_records", "DemoFileSource",
           "LatticeSource", "LatticeView", "StoreSource", "gem_titles", "StoreSink", "Workbench",
           "search", "target_time", "Limiter", "RateLimits", "RateStore",
           # scheduled snapshots (the retention policy is the store's, re-exported for the schedule)
           "SnapshotSchedule", "SnapshotScheduler", "RunReport", "RetentionPolicy", "parse_every", "snapshot_folder",
           "start_scheduled_snapshots", "scheduled_snapshot_status", "scheduled_snapshots", "snapshot_status_source"]
