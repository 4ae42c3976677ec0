"""Streamlit UI helpers of the workbench (pages stay thin; the engine is ``core``)."""
