"""What the front ends (Streamlit pages, CLI, load tests) stand on: the Workbench, lattice sources, the demo."""
from core.service.demo import DEMO_DIR, DEMO_NAME, ensure_demo, load_demo_lattice, load_demo_records
from core.service.sources import DemoFileSource, LatticeSource, LatticeView, StoreSource, gem_titles
from core.service.workbench import StoreSink, Workbench

__all__ = ["DEMO_DIR", "DEMO_NAME", "ensure_demo", "load_demo_lattice", "load_demo_records", "DemoFileSource",
           "LatticeSource", "LatticeView", "StoreSource", "gem_titles", "StoreSink", "Workbench"]
