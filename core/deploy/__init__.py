"""From the decision to the deployment: gate a run in CI, ship what was measured, size a box.

- :mod:`core.deploy.gate` — pass / fail / inconclusive rules over ``eval`` and ``bench`` JSON, by their intervals.
- :mod:`core.deploy.bundle` — a zip with the exact model file, its settings, a standalone ``infer.py`` and
  ``verify.py`` that re-checks the recorded detections.
- :mod:`core.deploy.capacity` — how many concurrent streams at a frame rate one machine carries per variant.

Each is imported by its module path (``from core.deploy.gate import ...``): the room's parts are independent.
"""
