"""The dashboard's shared pieces: what every page of ``pages/`` uses, and nothing that computes a number.

model          the active model and its store (session state, loaded once per process)
pool           detectors loaded once per process and shared by sessions
widgets        the variant picker, thresholds, progress bars
session_files  per-session temporary folders and the janitor that removes them
report_sections the results each page puts into the session's report
navigation     sends every run through app.py's st.navigation
"""
