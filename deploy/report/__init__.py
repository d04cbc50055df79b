"""``ripple report``: a period report of the results rows, as one self-contained HTML page.

``figures`` loads the rows and computes every figure (ratios from sums of counts, as the
dashboards do), ``charts`` turns the figures' series into SVG through Vega-Lite,
``page`` renders the HTML, ``pipeline`` asks Prometheus about the pipeline's health and
``pdf`` prints the page with headless Chromium.
"""
